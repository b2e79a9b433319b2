//! Enformer's relative-position basis: "exponential, central-mask and gamma
//! features of the distance, and each times its sign".

/// The basis `[2L-1, features]` for offsets `-(L-1) ..= L-1`, row-major.
///
/// Six groups of `features / 6`: `[exp, exp·sign, mask, mask·sign, gamma, gamma·sign]`,
/// computed in `f64` then cast (as the reference), so it matches to float precision.
///
/// # Panics
/// If `features` is not a multiple of 6 or `length` is 0.
pub fn relative_position_basis(length: usize, features: usize) -> Vec<f32> {
    assert!(length > 0, "relative positions need a length");
    assert!(
        features.is_multiple_of(6),
        "relative-position features must be a multiple of 6, got {features}"
    );
    let f = features / 6;
    let l = length as f64;
    let linspace = |a: f64, b: f64, i: usize| {
        if f == 1 {
            a
        } else {
            a + (b - a) * i as f64 / (f - 1) as f64
        }
    };
    let max_range = l.log2();
    let stdv = l / (2 * f) as f64;

    let positions: Vec<f64> = (0..2 * length - 1)
        .map(|i| i as f64 - (length - 1) as f64)
        .collect();
    // Gamma pdf of |pos| per feature, normalised by the largest value of all.
    let gamma: Vec<Vec<f64>> = positions
        .iter()
        .map(|p| {
            (0..f)
                .map(|i| {
                    let mean = linspace(l / f as f64, l, i);
                    let concentration = (mean / stdv).powi(2);
                    let rate = mean / (stdv * stdv);
                    let log_norm = libm::lgamma(concentration) - concentration * rate.ln();
                    ((concentration - 1.0) * p.abs().ln() - rate * p.abs() - log_norm).exp()
                })
                .collect()
        })
        .collect();
    let gamma_max = gamma.iter().flatten().cloned().fold(f64::MIN, f64::max);

    let mut basis = Vec::with_capacity((2 * length - 1) * features);
    for (p, gamma_row) in positions.iter().zip(&gamma) {
        let apos = p.abs();
        let sign = if *p == 0.0 { 0.0 } else { p.signum() };
        let exp: Vec<f64> = (0..f)
            .map(|i| {
                let half_life = 2f64.powf(linspace(3.0, max_range, i));
                (-std::f64::consts::LN_2 / half_life * apos).exp()
            })
            .collect();
        let mask: Vec<f64> = (0..f)
            .map(|i| f64::from(2f64.powi(i as i32 + 1) - 1.0 > apos))
            .collect();
        let gamma: Vec<f64> = gamma_row.iter().map(|g| g / gamma_max).collect();
        for group in [&exp, &mask, &gamma] {
            basis.extend(group.iter().map(|v| *v as f32));
            basis.extend(group.iter().map(|v| (v * sign) as f32));
        }
    }
    basis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_row_has_no_gamma_and_no_signed_features() {
        let basis = relative_position_basis(3, 192);
        assert_eq!(basis.len(), 5 * 192);
        let centre = &basis[2 * 192..3 * 192];
        assert!(centre[..32].iter().all(|v| *v == 1.0), "exp(0) = 1");
        assert!(centre[32..64].iter().all(|v| *v == 0.0), "sign(0) = 0");
        assert!(centre[64..96].iter().all(|v| *v == 1.0), "2^k - 1 > 0");
        assert!(centre[128..].iter().all(|v| *v == 0.0), "gamma(0) = 0");
    }

    #[test]
    fn signed_groups_are_odd_in_the_offset() {
        let basis = relative_position_basis(4, 12);
        let row = |i: usize| &basis[i * 12..(i + 1) * 12];
        for (a, b) in row(0).iter().zip(row(6)) {
            assert!((a.abs() - b.abs()).abs() < 1e-7);
        }
        assert!((row(0)[2] + row(6)[2]).abs() < 1e-7);
    }
}
