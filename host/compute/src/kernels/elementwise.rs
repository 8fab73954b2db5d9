//! Row-wise kernels (softmax, layer norm) and the fast `exp` they use, written as plain
//! Rust over 16-lane chunks: float reductions do not vectorise on their own (no
//! reassociation without fast-math), lane arrays make them vectorise, and the order of
//! additions is fixed by the row length only, never by threads.

const L: usize = 16;

/// `1.5 * 2^23`: adding it rounds an f32 of magnitude < 2^22 to the nearest integer
/// (ties to even) and leaves that integer in the low mantissa bits. Unlike `as i32`
/// (saturating, NaN-checking: LLVM scalarises it), this vectorises.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;

/// `2^x` to about 2 ulp: `x = n + r` with `n` the nearest integer, a degree-6
/// polynomial for `2^r` on [-1/2, 1/2] (Taylor; its error, 1e-7, is below an ulp of
/// the result), the power of two built in the exponent bits. Below -126 it returns
/// about 1e-38 rather than a denormal (softmax weights that small are zero).
#[inline(always)]
pub(crate) fn exp2(x: f32) -> f32 {
    let x = x.clamp(-126.0, 127.0);
    let t = x + ROUND_MAGIC;
    let r = x - (t - ROUND_MAGIC);
    let mut p = 1.540_353_e-4f32;
    p = p.mul_add(r, 1.333_355_8e-3);
    p = p.mul_add(r, 9.618_129e-3);
    p = p.mul_add(r, 5.550_411e-2);
    p = p.mul_add(r, 0.240_226_5);
    p = p.mul_add(r, std::f32::consts::LN_2);
    let y = p.mul_add(r, 1.0);
    // The integer n sits in t's low bits: add the bias and shift it into the exponent.
    let bits = t
        .to_bits()
        .wrapping_sub(ROUND_MAGIC.to_bits())
        .wrapping_add(127)
        << 23;
    y * f32::from_bits(bits)
}

/// `e^x` (as `2^(x log2 e)`), for tests and callers without a folded scale.
#[cfg(test)]
pub(crate) fn exp(x: f32) -> f32 {
    exp2(x * std::f32::consts::LOG2_E)
}

#[inline(always)]
fn lanes_sum(acc: &[f32; L]) -> f32 {
    // A fixed pairwise tree, the same at every level.
    let mut v = *acc;
    let mut w = L / 2;
    while w > 0 {
        for i in 0..w {
            v[i] += v[i + w];
        }
        w /= 2;
    }
    v[0]
}

#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; L];
    let chunks = x.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            acc[i] += c[i];
        }
    }
    for (i, &t) in tail.iter().enumerate() {
        acc[i] += t;
    }
    lanes_sum(&acc)
}

#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; L];
    let chunks = x.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            acc[i] = acc[i].max(c[i]);
        }
    }
    for (i, &t) in tail.iter().enumerate() {
        acc[i] = acc[i].max(t);
    }
    acc.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// `x := e^(scale (x - max))` over the row; returns the sum of the new values. The
/// scale and `log2 e` fold into one multiply-add before `exp2`.
#[inline(always)]
pub(crate) fn exp_shifted(x: &mut [f32], scale: f32) -> f32 {
    let m = max(x);
    let scale = scale * std::f32::consts::LOG2_E;
    let shift = -m * scale;
    let mut acc = [0f32; L];
    let mut chunks = x.chunks_exact_mut(L);
    for c in &mut chunks {
        for i in 0..L {
            c[i] = exp2(c[i].mul_add(scale, shift));
            acc[i] += c[i];
        }
    }
    for (i, t) in chunks.into_remainder().iter_mut().enumerate() {
        *t = exp2(t.mul_add(scale, shift));
        acc[i] += *t;
    }
    lanes_sum(&acc)
}

super::multiversion! {
    /// Numerically stable `softmax(scale * x)` of one row, in place (`scale > 0`).
    pub(crate) fn softmax_in_place(x: &mut [f32], scale: f32) {
        let s = exp_shifted(x, scale);
        let inv = 1.0 / s;
        for v in x.iter_mut() {
            *v *= inv;
        }
    }
}

super::multiversion! {
    /// Rows of `x` (each `gamma.len()` values) normalised to zero mean and unit
    /// variance (two passes, so large means lose nothing), then `* gamma + beta`.
    pub(crate) fn layer_norm_rows(x: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let n = gamma.len();
        for (row, dst) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let mean = sum(row) / n as f32;
            let mut acc = [0f32; L];
            let chunks = row.chunks_exact(L);
            let tail = chunks.remainder();
            for c in chunks {
                for i in 0..L {
                    let d = c[i] - mean;
                    acc[i] = d.mul_add(d, acc[i]);
                }
            }
            for (i, &t) in tail.iter().enumerate() {
                let d = t - mean;
                acc[i] = d.mul_add(d, acc[i]);
            }
            let var = lanes_sum(&acc) / n as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            for (((d, &v), &g), &b) in dst.iter_mut().zip(row).zip(gamma).zip(beta) {
                *d = ((v - mean) * rstd).mul_add(g, b);
            }
        }
    }
}

super::multiversion! {
    /// `x := e^(scale (x - max x))`, returning the sum (the caller divides later, on
    /// fewer values).
    pub(crate) fn softmax_unnormalised(x: &mut [f32], scale: f32) -> f32 {
        exp_shifted(x, scale)
    }
}

super::multiversion! {
    /// `x *= factor`.
    pub(crate) fn scale_in_place(x: &mut [f32], factor: f32) {
        for v in x.iter_mut() {
            *v *= factor;
        }
    }
}

super::multiversion! {
    /// `out = a + b`, `b` repeated over `a` (its length divides `a`'s).
    pub(crate) fn add_broadcast(a: &[f32], b: &[f32], out: &mut [f32]) {
        for (o, a) in out.chunks_exact_mut(b.len()).zip(a.chunks_exact(b.len())) {
            for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                *o = x + y;
            }
        }
    }
}

super::multiversion! {
    /// `x += b` for every row of `x` (each `b.len()` values).
    pub(crate) fn add_rows_in_place(x: &mut [f32], b: &[f32]) {
        for row in x.chunks_exact_mut(b.len()) {
            for (o, &y) in row.iter_mut().zip(b) {
                *o += y;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::levels;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -126.0 + 253.0 * i as f32 / 200_000.0;
            let want = f64::from(x).exp2();
            worst = worst.max((f64::from(exp2(x)) - want).abs() / want);
        }
        assert!(worst < 3e-7, "exp2: worst relative error {worst}");
        // e^x also rounds x log2 e: a relative error of about 6e-8 |x| on top.
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -20.0 + 40.0 * i as f32 / 200_000.0;
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - want).abs() / want);
        }
        assert!(worst < 2e-6, "exp: worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37);
        assert_eq!(exp2(3.0), 8.0);
        assert_eq!(exp2(-126.0), f32::MIN_POSITIVE);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        for level in levels() {
            for n in [1usize, 3, 16, 17, 1500] {
                let mut x: Vec<f32> = (0..n).map(|i| 1000.0 + (i % 7) as f32).collect();
                let want: Vec<f64> = {
                    let m = x.iter().fold(f32::MIN, |a, &b| a.max(b));
                    let e: Vec<f64> = x.iter().map(|&v| (0.5 * f64::from(v - m)).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.iter().map(|v| v / s).collect()
                };
                softmax_in_place(level, &mut x, 0.5);
                for (g, w) in x.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-6,
                        "{level:?} n={n}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
