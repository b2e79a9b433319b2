//! The model on the CPU (flex): one-hot encoding, the forward pass of the
//! paper's network at batch 64, and the ISM of one 110-bp sequence, whole and
//! incremental.
//!
//! `cargo bench -p promoscope --bench forward`

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promoscope_model::ModelConfig;
use promoscope_model::encoding::{BASES, one_hot};
use promoscope_model::ism::Mutagenesis;

const BATCH: usize = 64;

/// Deterministic pseudo-random sequences of `len` bases.
fn sequences(n: usize, len: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    BASES[(state % 4) as usize]
                })
                .collect()
        })
        .collect()
}

fn forward(c: &mut Criterion) {
    promoscope::keep_freed_memory();
    let config = ModelConfig::new();
    let device = Device::flex();
    let model = config.init(&device);
    let batch = sequences(BATCH, 110);

    let mut group = c.benchmark_group("model");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("one-hot encode 64 sequences", |b| {
        b.iter(|| one_hot(&batch, config.seq_len).expect("valid sequences"))
    });
    let x = Tensor::<3>::from_data(one_hot(&batch, config.seq_len).expect("valid"), &device);
    group.bench_function("forward, seed model, batch 64 (flex)", |b| {
        b.iter(|| model.forward(x.clone()).into_data())
    });

    let mutagenesis = Mutagenesis::new(&batch[0], config.seq_len).expect("valid sequence");
    let rows = mutagenesis.rows();
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("ISM of 110 bp, every row through the whole network", |b| {
        b.iter(|| {
            let x = mutagenesis.one_hot(config.seq_len).expect("fits");
            model.forward(Tensor::from_data(x, &device)).into_data()
        })
    });
    group.bench_function("ISM of 110 bp, incremental", |b| {
        b.iter(|| {
            let y = mutagenesis.predict_rows(&model, config.seq_len, 0..rows);
            y.expect("fits").into_data()
        })
    });
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
