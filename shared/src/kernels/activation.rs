//! The stem's `exp` and the attention pool's softmax-weighted window sums.
//!
//! burn's flex computes `exp` one value at a time through the C library
//! (~3 ns a value), and a softmax-weighted sum as six passes over memory.
//! Both run on as many values as a block-1 convolution has outputs. In
//! inference on flex they are loops here (a forward pass at batch 256 went
//! from 906–1,040 to 682–783 ms on a 2-core Xeon, docs/BENCHMARKS.md): `exp`
//! by range reduction and a polynomial that the compiler vectorises (within
//! 2 ulp of the C library's), the pool in one pass. In training and on GPUs
//! they are burn's operations, which autodiff differentiates.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::softmax;

use crate::device::is_flex;
use crate::kernels::flex_values::{contiguous, each_chunk, owned, slice};

/// Whether `device` takes the loops: flex, not training.
fn loops(device: &Device, dtype: DType) -> bool {
    is_flex(device) && !device.is_autodiff() && dtype == DType::F32
}

/// `eˣ` elementwise.
pub fn exp<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !loops(&x.device(), x.dtype()) {
        return x.exp();
    }
    let mut x = owned(x);
    let values = x
        .try_storage_mut::<f32>()
        .expect("owned, contiguous f32 values");
    each_chunk(values, 1 << 14, |_, chunk| {
        chunk.iter_mut().for_each(|v| *v = exp_f32(*v))
    });
    Tensor::from_primitive::<Flex>(x)
}

/// `Σ_p x[.., p, c] · softmax_p(logits)[.., p, c]` over dimension 2 (the
/// window): `[batch, windows, p, channels]` to `[batch, windows, channels]`.
pub fn softmax_pool(x: Tensor<4>, logits: Tensor<4>) -> Tensor<3> {
    let [batch, windows, pool, channels] = x.dims();
    if !loops(&x.device(), x.dtype()) {
        let weights = softmax(logits, 2);
        return (x * weights).sum_dim(2).reshape([batch, windows, channels]);
    }
    let device = x.device();
    let (x, logits) = (contiguous(x), contiguous(logits));
    let (x, logits) = (slice(&x), slice(&logits));
    let mut y = vec![0.0f32; batch * windows * channels];
    let window = pool * channels;
    // Windows in chunks of about 4,096 outputs, one chunk a task.
    let per_chunk = (4096 / channels).max(1);
    each_chunk(&mut y, per_chunk * channels, |i, y| {
        let (mut top, mut total) = (vec![0.0f32; channels], vec![0.0f32; channels]);
        for (w, y) in y.chunks_exact_mut(channels).enumerate() {
            let w = i * per_chunk + w;
            let x = &x[w * window..][..window];
            let logits = &logits[w * window..][..window];
            // The largest logit, then Σ e^(l − max) and Σ x e^(l − max), by channel.
            top.copy_from_slice(&logits[..channels]);
            for row in logits.chunks_exact(channels).skip(1) {
                for (t, &l) in top.iter_mut().zip(row) {
                    *t = t.max(l);
                }
            }
            total.fill(0.0);
            for (x_row, l_row) in x.chunks_exact(channels).zip(logits.chunks_exact(channels)) {
                for (((y, total), (&x, &l)), &t) in y
                    .iter_mut()
                    .zip(total.iter_mut())
                    .zip(x_row.iter().zip(l_row))
                    .zip(top.iter())
                {
                    let e = exp_f32(l - t);
                    *total += e;
                    *y += x * e;
                }
            }
            for (y, total) in y.iter_mut().zip(total.iter()) {
                *y /= total;
            }
        }
    });
    Tensor::from_data(TensorData::new(y, [batch, windows, channels]), &device)
}

/// `eˣ` in f32 operations that vectorise on any x86-64 and in wasm's SIMD:
/// `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, `eʳ` by its Taylor series to the
/// seventh power (relative error below 1e-8 on that range), `2ⁿ` in the
/// exponent bits. Below e⁻⁸⁷ (1.6·10⁻³⁸) it returns 0, above the largest
/// finite result infinity, and NaN for NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that n · LN2_HIGH is exact for |n| < 2⁹.
    const LN2_HIGH: f32 = 0.693_145_75;
    const LN2_LOW: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest whole number.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.0, 88.75);
    let n = (clamped * LOG2_E + ROUND) - ROUND;
    let r = (clamped - n * LN2_HIGH) - n * LN2_LOW;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // 2ⁿ as two halves, each a normal number for n in [−126, 128].
    let n = n as i32;
    let half = n >> 1;
    let power = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = p * power(half) * power(n - half);
    if x > 88.75 {
        f32::INFINITY
    } else if x < -87.0 {
        0.0
    } else {
        // NaN stays NaN through the clamp and the polynomial.
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_c_library() {
        let mut worst = 0u32;
        let mut x = -87.0f32;
        while x < 88.7 {
            let (ours, libm) = (exp_f32(x), x.exp());
            let ulps = ours.to_bits().abs_diff(libm.to_bits());
            assert!(ulps <= 2, "exp({x}) = {ours}, libm {libm}");
            worst = worst.max(ulps);
            x += 0.000_37;
        }
        assert!(worst > 0, "a different function from the library's");
    }

    #[test]
    fn exp_keeps_the_edges() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    /// The loops against burn's operations on the autodiff device (which
    /// takes burn's path), on the same values.
    #[test]
    fn loops_match_burns_operations() {
        let device = Device::flex();
        device.seed(5);
        let x = Tensor::<4>::random([3, 7, 4, 40], Distribution::Normal(0.0, 3.0), &device);
        let logits = Tensor::<4>::random([3, 7, 4, 40], Distribution::Normal(0.0, 3.0), &device);
        let training = device.clone().autodiff();
        let on = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &training);
        let pairs = [
            (values(exp(x.clone())), values(exp(on(&x)))),
            (
                values(softmax_pool(x.clone(), logits.clone())),
                values(softmax_pool(on(&x), on(&logits))),
            ),
        ];
        for (loops, burn) in pairs {
            assert_eq!(loops.len(), burn.len());
            for (a, b) in loops.iter().zip(&burn) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
        // exp of a shared tensor leaves the other holder's values alone.
        let kept = values(x.clone());
        let _ = exp(x.clone());
        assert_eq!(values(x), kept);
    }
}
