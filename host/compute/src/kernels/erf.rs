//! `erf` and exact-erf GELU, as branch-free arithmetic that LLVM vectorises inside the
//! multiversioned loops (libm's `erff` is a scalar call with branches).
//!
//! A rational approximation `x P(x^2) / Q(x^2)` on [-4, 4] (the coefficients XLA and
//! Eigen use for f32); beyond 4 `erf` is 1 in f32. Max abs error vs libm `erff` is
//! tested below 1e-6.

const ALPHA: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_600_2e-3,
    -1.609_603_3e-2,
];
const BETA: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329_5e-3,
    -1.426_474e-2,
];

#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[0];
    for &a in &ALPHA[1..] {
        p = p.mul_add(x2, a);
    }
    let mut q = BETA[0];
    for &b in &BETA[1..] {
        q = q.mul_add(x2, b);
    }
    x * p / q
}

/// `0.5 x (1 + erf(x / sqrt 2))`.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

super::multiversion! {
    /// GELU of every value, in place.
    pub(crate) fn gelu_in_place(v: &mut [f32]) {
        for x in v.iter_mut() {
            *x = gelu(*x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::levels;

    #[test]
    fn erf_within_1e6_of_libm() {
        let mut worst = (0f32, 0f32);
        let n = 2_000_000;
        for i in 0..=n {
            let x = -8.0 + 16.0 * i as f32 / n as f32;
            let err = (erf(x) - libm::erff(x)).abs();
            if err > worst.1 {
                worst = (x, err);
            }
        }
        assert!(
            worst.1 <= 1e-6,
            "max |erf - erff| = {} at {}",
            worst.1,
            worst.0
        );
        assert!((erf(f32::INFINITY) - 1.0).abs() <= 1e-6);
        assert!((erf(f32::NEG_INFINITY) + 1.0).abs() <= 1e-6);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_matches_reference_at_every_level() {
        let xs: Vec<f32> = (0..1001).map(|i| -10.0 + 0.02 * i as f32).collect();
        for level in levels() {
            let mut v = xs.clone();
            gelu_in_place(level, &mut v);
            for (&x, &g) in xs.iter().zip(&v) {
                let r = 0.5 * f64::from(x) * (1.0 + libm::erf(f64::from(x) / 2f64.sqrt()));
                assert!(
                    (f64::from(g) - r).abs() <= 1e-6 * (1.0 + r.abs()),
                    "{level:?} gelu({x}) = {g}, want {r}"
                );
            }
        }
    }
}
