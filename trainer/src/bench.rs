//! `promoscope bench`: sequences per second of inference and training steps,
//! and the time of one ISM, on a backend, as a Markdown table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use promoscope_model::encoding::{BASES, one_hot};
use promoscope_model::ism::Mutagenesis;
use promoscope_model::kernels::conv::conv1d_same;
use promoscope_model::training::Stepper;
use promoscope_model::{Model, ModelConfig, SelectedDevice, metrics, weights};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::SafeTensors;

/// What to measure.
pub struct BenchSettings {
    /// The network (fresh weights: speed does not depend on their values).
    pub model: ModelConfig,
    /// Batch sizes of inference.
    pub infer_batches: Vec<usize>,
    /// Batch sizes of training steps.
    pub train_batches: Vec<usize>,
    /// Timed repetitions of each figure (after three untimed warm-ups).
    pub repeats: usize,
    /// A training file to read (parse + encode) once, timed.
    pub data: Option<PathBuf>,
    /// Also time each stage alone: inference at the first inference batch,
    /// forward + backward at the first training batch.
    pub stages: bool,
    /// The training step's loss scale (`training::loss_scale`).
    pub loss_scale: f32,
}

/// One measured figure.
#[derive(serde::Serialize)]
pub struct Figure {
    /// `data`, `inference`, `stage`, `training`, `train_stage`, `ism` or
    /// `ism_whole`: the name in JSON and in `scripts/bench_table.py`.
    pub key: &'static str,
    /// What was timed.
    pub what: String,
    /// Sequences per forward pass.
    pub batch: usize,
    /// Median seconds per repetition.
    pub seconds: f64,
}

impl Figure {
    /// Sequences (forward passes' rows) per second.
    pub fn seq_per_s(&self) -> f64 {
        self.batch as f64 / self.seconds
    }
}

/// Random sequences of `len` bases.
fn random_sequences(n: usize, len: usize, rng: &mut StdRng) -> Vec<String> {
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| BASES[rng.random_range(0..BASES.len())])
                .collect()
        })
        .collect()
}

/// Untimed runs before each figure's timed ones, as the team's `peer_bench.py`
/// does: on flex the first figure of a `bench` came out 7–10% slower after one
/// warm-up run than the same figure measured again later (the heap still
/// growing to its working size), and on a GPU the first runs compile kernels.
const WARM_UPS: usize = 3;

/// Times `f` and records it as a figure: the median seconds of `repeats` runs
/// after [`WARM_UPS`] untimed ones, each until `device` has finished all its
/// work. Reading a result back is not enough: on wgpu, timings that ended at a
/// read came out faster than the sum of their parts (docs/BENCHMARKS.md,
/// "Timing to the device's end"). Every run's time goes to stderr as soon as
/// the figure is done, so a run cut short by a time cap still tells what it
/// measured, and warm-ups far slower than the runs (kernels compiled or tuned
/// on first use) show.
fn measure(
    figures: &mut Vec<Figure>,
    (key, what, batch): (&'static str, String, usize),
    repeats: usize,
    device: &Device,
    mut f: impl FnMut(),
) {
    let mut run = || {
        let start = Instant::now();
        f();
        device.sync().expect("the device finishes its work");
        start.elapsed().as_secs_f64()
    };
    let seconds = |times: &[f64]| {
        let times: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
        times.join(" ")
    };
    let warm_ups: Vec<f64> = (0..WARM_UPS).map(|_| run()).collect();
    let mut times: Vec<f64> = (0..repeats.max(1)).map(|_| run()).collect();
    eprintln!(
        "bench: {what}, batch {batch}: warm-ups {} s, runs {} s",
        seconds(&warm_ups),
        seconds(&times)
    );
    times.sort_by(f64::total_cmp);
    figures.push(Figure {
        key,
        what,
        batch,
        seconds: times[times.len() / 2],
    });
}

/// Runs every figure on `selected`, in the order of the table.
pub fn run(settings: &BenchSettings, selected: &SelectedDevice) -> Result<Vec<Figure>> {
    let config = &settings.model;
    let device = &selected.device;
    let mut rng = StdRng::seed_from_u64(0);
    let mut figures = Vec::new();

    if let Some(path) = &settings.data {
        // Once, no warm-up: the file is large, and the first read is the one users wait for.
        let start = Instant::now();
        let (data, _) = crate::data::read(path, config.seq_len, false)?;
        figures.push(Figure {
            key: "data",
            what: format!("parse + encode {} (one run)", path.display()),
            batch: data.len(),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    let model = config.init(device);
    inference_figures(settings, (&model, device), &mut rng, &mut figures)?;
    training_figures(settings, device, &mut rng, &mut figures)?;
    ism_figures(settings, (&model, device), &mut rng, &mut figures)?;
    Ok(figures)
}

/// A batch of `batch` random sequences of the model's length, one-hot on `device`.
fn random_batch(
    config: &ModelConfig,
    batch: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Result<Tensor<3>> {
    let sequences = random_sequences(batch, config.seq_len, rng);
    Ok(Tensor::from_data(
        one_hot(&sequences, config.seq_len)?,
        device,
    ))
}

/// Inference at each batch size, then (`--stages`) each stage at the first.
fn inference_figures(
    settings: &BenchSettings,
    (model, device): (&Model, &Device),
    rng: &mut StdRng,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    for &batch in &settings.infer_batches {
        let x = random_batch(&settings.model, batch, rng, device)?;
        let figure = ("inference", "inference".into(), batch);
        measure(figures, figure, settings.repeats, device, || {
            model.forward(x.clone()).into_data();
        });
    }
    if let (true, Some(&batch)) = (settings.stages, settings.infer_batches.first()) {
        let x = random_batch(&settings.model, batch, rng, device)?;
        figures.extend(stage_figures(model, x, settings.repeats, false));
    }
    Ok(())
}

/// The training step `promoscope train` runs (its loss scale, a seed for
/// dropout per step) at each batch size, then (`--stages`) forward and
/// backward without Adam, whole and by stage, at the first.
fn training_figures(
    settings: &BenchSettings,
    device: &Device,
    rng: &mut StdRng,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let autodiff = device.clone().autodiff();
    let mut trained = Some(settings.model.init(&autodiff));
    let mut stepper = Stepper::new(settings.loss_scale, 0);
    let mut step = 0;
    for &batch in &settings.train_batches {
        let x = random_batch(&settings.model, batch, rng, &autodiff)?;
        let y = Tensor::<2>::random([batch, 1], burn::tensor::Distribution::Default, &autodiff);
        let figure = ("training", "training step (Adam, MSE)".into(), batch);
        measure(figures, figure, settings.repeats, &autodiff, || {
            let model = trained.take().expect("model is put back after each step");
            let (model, _) = stepper.step(model, (x.clone(), y.clone()), 1e-4, step);
            step += 1;
            model.head.out.weight.val().into_data();
            trained = Some(model);
        });
    }
    if let (true, Some(&batch), Some(model)) = (
        settings.stages,
        settings.train_batches.first(),
        trained.as_ref(),
    ) {
        let x = random_batch(&settings.model, batch, rng, &autodiff)?;
        // The step without Adam: what the optimizer's update costs is the rest.
        let figure = (
            "train_stage",
            "forward + backward: whole network, MSE".into(),
            batch,
        );
        measure(figures, figure, settings.repeats, &autodiff, || {
            let loss = model.forward(x.clone()).powi_scalar(2).mean();
            drop(loss.backward());
        });
        figures.extend(stage_figures(model, x, settings.repeats, true));
    }
    Ok(())
}

/// ISM of a random 110-bp sequence: incremental, and each row through the
/// whole network as the peer computes it.
fn ism_figures(
    settings: &BenchSettings,
    (model, device): (&Model, &Device),
    rng: &mut StdRng,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let seq_len = settings.model.seq_len;
    let sequence = random_sequences(1, 110.min(seq_len), rng).remove(0);
    let mutagenesis = Mutagenesis::new(&sequence, seq_len)?;
    let rows = mutagenesis.substitutions.len() + 1;
    let what = format!("ISM, {}-bp sequence (all substitutions)", sequence.len());
    measure(
        figures,
        ("ism", what, rows),
        settings.repeats,
        device,
        || {
            let y = mutagenesis.predict_rows(model, seq_len, 0..rows);
            y.expect("sequence fits").into_data();
        },
    );
    let what = format!(
        "ISM, {}-bp sequence, every row through the whole network",
        sequence.len()
    );
    measure(
        figures,
        ("ism_whole", what, rows),
        settings.repeats,
        device,
        || {
            let x = mutagenesis.one_hot(seq_len).expect("sequence fits");
            model.forward(Tensor::from_data(x, device)).into_data();
        },
    );
    Ok(())
}

/// Each stage of the forward pass timed alone, on the previous stage's
/// output: where the time goes. With `backward`, each stage's forward and
/// backward (from the sum of its output to its weights; its input is a
/// constant), on the autodiff device in training mode.
fn stage_figures(model: &Model, x: Tensor<3>, repeats: usize, backward: bool) -> Vec<Figure> {
    let batch = x.dims()[0];
    let device = x.device();
    let (key, label) = match backward {
        false => ("stage", "inference"),
        true => ("train_stage", "forward + backward"),
    };
    let stages: [(&str, &dyn Fn(Tensor<3>) -> Tensor<3>); 5] = [
        ("stem", &|h| model.stem.forward(h)),
        ("block 1", &|h| model.block1.forward(h)),
        ("block 2", &|h| model.block2.forward(h)),
        ("block 3", &|h| model.block3.forward(h)),
        ("transformer", &|h| model.transformer.forward(h)),
    ];
    let run = |output: Tensor<3>| {
        if backward {
            drop(output.sum().backward());
        }
    };
    let mut figures = Vec::new();
    let mut timed = |what: &str, f: &dyn Fn()| {
        let figure = (key, format!("{label}: {what}"), batch);
        measure(&mut figures, figure, repeats, &device, f);
    };
    let mut h = x;
    for (what, stage) in stages {
        timed(what, &|| run(stage(h.clone())));
        h = stage(h).detach();
    }
    timed("head", &|| {
        run(model.head.forward(h.clone()).unsqueeze_dim(2))
    });
    figures
}

/// The largest difference between the golden file's output and the model's,
/// with the file's weights, on `device`: the check that a backend computes the
/// model (TOLERANCE 1e-4 in `tests/tests/golden.rs`), where the tests cannot run.
pub fn golden_max_diff(path: &Path, device: &Device) -> Result<f32> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (model, _) = weights::load(&bytes, device).with_context(|| path.display().to_string())?;
    let file = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not safetensors", path.display()))?;
    let tensor = |name: &str| -> Result<TensorData> {
        let view = file
            .tensor(name)
            .with_context(|| format!("{}: no tensor {name}", path.display()))?;
        Ok(TensorData::from_bytes_vec(
            view.data().to_vec(),
            view.shape().to_vec(),
            burn::tensor::DType::F32,
        ))
    };
    let output = model.forward(Tensor::<3>::from_data(tensor("input.onehot")?, device));
    let output = output.into_data().convert::<f32>();
    let values = |data: TensorData| {
        data.try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    };
    Ok(metrics::max_abs_diff(
        &values(output)?,
        &values(tensor("trace.output")?)?,
    ))
}

/// The convolution's kernels on `device` against flex's, at block 1's shape
/// (384 → 384 channels, kernel 3, dilation 2, length 111) and block 2's entry
/// (384 → 256, kernel 9), batch 8, through [`conv1d_same`] as the model calls
/// it (so mixed precision applies to both sides): the
/// largest difference of the output, the input's gradient and the weight's,
/// each relative to the largest flex value, worst of the two shapes.
///
/// The golden output checks a backend's forward pass; this checks the
/// backward's convolution kernels, which no golden trace covers. (A whole
/// model's gradients would not do: on the golden batch one ReLU input lies
/// within f32 rounding of zero, 4.6e-6 on flex and −6.3e-6 on wgpu, and that
/// one switch moves the gradients by 3% in norm.)
pub fn conv_gradient_diff(device: &Device) -> [f32; 3] {
    let flex = Device::flex();
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let mut worst = [0f32; 3];
    for (channels_out, kernel, dilation) in [(384, 3, 2), (256, 9, 1)] {
        let x = Tensor::<3>::random([8, 111, 384], normal, &flex).into_data();
        let w = Tensor::<3>::random([channels_out, 384, kernel], normal, &flex) / 20.0;
        let w = w.into_data();
        let r = Tensor::<3>::random([8, 111, channels_out], normal, &flex).into_data();
        let run = |device: &Device| -> [Vec<f32>; 3] {
            let x = Tensor::<3>::from_data(x.clone(), device).require_grad();
            let w = Tensor::<3>::from_data(w.clone(), device).require_grad();
            let y = conv1d_same(x.clone(), w.clone(), None, dilation);
            let grads = (y.clone() * Tensor::from_data(r.clone(), device))
                .sum()
                .backward();
            let values = |t: Tensor<3>| t.into_data().convert::<f32>().try_to_vec::<f32>();
            [
                values(y),
                values(x.grad(&grads).expect("x is tracked")),
                values(w.grad(&grads).expect("w is tracked")),
            ]
            .map(|v| v.expect("f32 after convert"))
        };
        let (want, got) = (
            run(&flex.clone().autodiff()),
            run(&device.clone().autodiff()),
        );
        for ((worst, want), got) in worst.iter_mut().zip(&want).zip(&got) {
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            *worst = worst.max(metrics::max_abs_diff(want, got) / scale);
        }
    }
    worst
}

/// The optional cargo features of this build that change GPU kernels: the
/// same command is a different measurement with each.
pub fn build_features() -> Vec<&'static str> {
    [
        ("vulkan", cfg!(feature = "vulkan")),
        ("fusion", cfg!(feature = "fusion")),
        ("autotune", cfg!(feature = "autotune")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The CPU's vector extensions that flex's kernels can use, as `lscpu` names
/// them, with the x86-64 level they make (`v3`: AVX2 and FMA; `v4`: AVX-512 F,
/// BW, CD, DQ and VL, the set flex's matrix products take their AVX-512 kernels
/// for). Every CPU figure depends on them, so `bench` prints them.
pub fn cpu_vector_extensions() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let detected = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            ("avx512cd", std::arch::is_x86_feature_detected!("avx512cd")),
            ("avx512dq", std::arch::is_x86_feature_detected!("avx512dq")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
        ];
        let has = |names: &[&str]| {
            names
                .iter()
                .all(|n| detected.iter().any(|d| d == &(*n, true)))
        };
        let level = if has(&[
            "avx2", "fma", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
        ]) {
            "x86-64-v4"
        } else if has(&["avx2", "fma"]) {
            "x86-64-v3"
        } else {
            "x86-64 below v3"
        };
        let names: Vec<&str> = detected.iter().filter(|d| d.1).map(|d| d.0).collect();
        format!("{level} ({})", names.join(" "))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// The figures as a Markdown table.
pub fn table(figures: &[Figure], selected: &SelectedDevice) -> String {
    let features = match build_features() {
        f if f.is_empty() => "none".to_string(),
        f => f.join(", "),
    };
    let mut out = format!(
        "backend: {selected}; build features: {features}; CPU: {}\n\n| figure | batch | median s | seq/s |\n|---|---:|---:|---:|\n",
        cpu_vector_extensions()
    );
    for f in figures {
        writeln!(
            out,
            "| {} | {} | {:.4} | {:.1} |",
            f.what,
            f.batch,
            f.seconds,
            f.seq_per_s()
        )
        .expect("writing to a String");
    }
    out
}

/// The figures as JSON, with the backend: what `scripts/bench_table.py` reads.
pub fn json(figures: &[Figure], selected: &SelectedDevice) -> serde_json::Value {
    let figures: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| {
            let mut value = serde_json::to_value(f).expect("figures serialize");
            value["seq_per_s"] = f.seq_per_s().into();
            value
        })
        .collect();
    serde_json::json!({
        "backend": selected.to_string(),
        "promoscope": env!("CARGO_PKG_VERSION"),
        "features": build_features(),
        "cpu": cpu_vector_extensions(),
        "figures": figures,
    })
}
