//! The data path's hot spots: parsing and encoding DREAM lines, and
//! assembling a one-hot training batch.
//!
//! `cargo bench -p promoscope --bench data`

use burn::prelude::Device;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promoscope::{data, simulate};
use promoscope_model::ModelConfig;

const LINES: usize = 100_000;
const BATCH: usize = 1024;

fn data_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("sim.txt");
    simulate::write(LINES, 1, &path, &dir.path().join("sim.truth.txt")).expect("simulate");
    let seq_len = ModelConfig::new().seq_len;

    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("parse + encode 100k DREAM lines", |b| {
        b.iter(|| data::read(&path, seq_len, false).expect("valid file"))
    });

    let (dataset, _) = data::read(&path, seq_len, false).expect("valid file");
    let device = Device::flex();
    // Scattered rows, like a shuffled epoch.
    let indices: Vec<usize> = (0..BATCH).map(|i| (i * 7919) % LINES).collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("one-hot batch of 1024 rows (flex)", |b| {
        b.iter(|| dataset.batch(&indices, &device))
    });
    group.finish();
}

criterion_group!(benches, data_path);
criterion_main!(benches);
