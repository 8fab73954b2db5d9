//! Plain reference implementations (f64 accumulation, no blocking) and test data.

/// xorshift64*: reproducible data without a dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [-1, 1).
    pub(crate) fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (v as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub(crate) fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

pub(crate) fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt()))
}

/// `x [m, k] · w[n, k]^T + bias`, then GELU if asked.
pub(crate) fn linear(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    gelu_: bool,
) -> Vec<f64> {
    let mut out = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s: f64 = (0..k)
                .map(|kk| f64::from(x[i * k + kk]) * f64::from(w[j * k + kk]))
                .sum();
            if let Some(b) = bias {
                s += f64::from(b[j]);
            }
            out[i * n + j] = if gelu_ { gelu(s) } else { s };
        }
    }
    out
}

/// `x [time, cin]`, `w [cout, cin, kernel]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv1d(
    x: &[f32],
    time: usize,
    cin: usize,
    w: &[f32],
    cout: usize,
    kernel: usize,
    bias: Option<&[f32]>,
    stride: usize,
    pad: usize,
    gelu_: bool,
) -> Vec<f64> {
    let steps = (time + 2 * pad - kernel) / stride + 1;
    let mut out = vec![0f64; steps * cout];
    for t in 0..steps {
        for o in 0..cout {
            let mut s = bias.map_or(0.0, |b| f64::from(b[o]));
            for c in 0..cin {
                for j in 0..kernel {
                    let src = (t * stride + j) as isize - pad as isize;
                    if src >= 0 && (src as usize) < time {
                        s += f64::from(x[src as usize * cin + c])
                            * f64::from(w[(o * cin + c) * kernel + j]);
                    }
                }
            }
            out[t * cout + o] = if gelu_ { gelu(s) } else { s };
        }
    }
    out
}

pub(crate) fn layer_norm(x: &[f32], n: usize, g: &[f32], b: &[f32], eps: f32) -> Vec<f64> {
    let mut out = Vec::new();
    for row in x.chunks(n) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let rstd = 1.0 / (var + f64::from(eps)).sqrt();
        for (i, &v) in row.iter().enumerate() {
            out.push((f64::from(v) - mean) * rstd * f64::from(g[i]) + f64::from(b[i]));
        }
    }
    out
}

/// Softmax-normalised scores `[batch, heads, tq, tk]` and outputs `[batch, tq, width]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    batch: usize,
    tq: usize,
    kb: usize,
    tk: usize,
    width: usize,
    heads: usize,
    causal: bool,
) -> (Vec<f64>, Vec<f64>) {
    let d = width / heads;
    let scale = 1.0 / (d as f64).sqrt();
    let mut probs = vec![0f64; batch * heads * tq * tk];
    let mut out = vec![0f64; batch * tq * width];
    for b in 0..batch {
        let kbase = if kb == 1 { 0 } else { b * tk * width };
        for h in 0..heads {
            for i in 0..tq {
                let visible = if causal { tk - tq + i + 1 } else { tk };
                let mut s: Vec<f64> = (0..visible)
                    .map(|j| {
                        (0..d)
                            .map(|c| {
                                f64::from(q[(b * tq + i) * width + h * d + c])
                                    * f64::from(k[kbase + j * width + h * d + c])
                            })
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                s.iter_mut().for_each(|x| *x = (*x - m).exp());
                let sum: f64 = s.iter().sum();
                for (j, &e) in s.iter().enumerate() {
                    let p = e / sum;
                    probs[((b * heads + h) * tq + i) * tk + j] = p;
                    for c in 0..d {
                        out[(b * tq + i) * width + h * d + c] +=
                            p * f64::from(v[kbase + j * width + h * d + c]);
                    }
                }
            }
        }
    }
    (probs, out)
}

/// Asserts `|got - want| <= atol + rtol |want|` everywhere.
#[track_caller]
pub(crate) fn assert_close(got: &[f32], want: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{what}: [{i}] = {g}, want {w} (err {err})"
        );
    }
}

/// `||got - want|| / ||want||` (Frobenius).
pub(crate) fn rel_error(got: &[f32], want: &[f64]) -> f64 {
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - w).powi(2))
        .sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den.max(1e-300)).sqrt()
}
