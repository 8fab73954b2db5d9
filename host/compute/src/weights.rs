//! Immutable parameters, converted once at creation into the form the kernels read:
//! matrices (2-D `[out, in]`, or 3-D `[out, in, kernel]` convolutions) are packed into
//! panels of `W^T` (see `kernels::pack`) in the chosen precision, so no product ever
//! transposes, converts or repacks them; vectors (biases, norms) stay plain `f32`.
//! Weights are shared across jobs, so load time and memory are spent here, once.

use crate::ctx::checked_product;
use crate::error::{ComputeError, invalid};
use crate::kernels::aligned::Aligned;
use crate::kernels::pack;

/// How numbers are stored in an asset file region (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileDtype {
    F32,
    F16,
    Bf16,
}

impl FileDtype {
    pub fn size(self) -> usize {
        match self {
            FileDtype::F32 => 4,
            FileDtype::F16 | FileDtype::Bf16 => 2,
        }
    }
}

/// How weights are kept for products. Vectors (rank 1) are rounded to the precision
/// but kept as `f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Exact `f32`.
    Float32,
    /// Each weight rounded to bfloat16 (nearest even); products accumulate in `f32`.
    BFloat16,
    /// Symmetric per-output-row int8 with an `f32` scale per row; activations are
    /// quantised per row on the fly.
    Int8,
}

/// Most input features an int8 row may have: its `i32` accumulators of `u8 x i8`
/// products cannot overflow below this.
pub const INT8_MAX_DEPTH: usize = 65_536;

/// Immutable weights (see the module doc for the stored forms).
pub struct Weights {
    shape: Vec<usize>,
    precision: Precision,
    store: Store,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("shape", &self.shape)
            .field("precision", &self.precision)
            .field("bytes", &self.bytes())
            .finish()
    }
}

pub(crate) enum Store {
    Vector(Vec<f32>),
    Matrix(Matrix),
}

/// A packed `n x k` matrix: column `j` of `B` is row `j` of the weights.
pub(crate) struct Matrix {
    /// Output features (rows of `W`).
    pub(crate) n: usize,
    /// Input features; for a convolution `kernel * in`, kernel-major (tap `t`, channel
    /// `c` at `t * in + c`), so im2col copies whole rows of the input.
    pub(crate) k: usize,
    /// `k` padded to the layout's depth group.
    pub(crate) kp: usize,
    pub(crate) data: Packed,
}

pub(crate) enum Packed {
    F32(Aligned),
    Bf16(Aligned),
    Int8 {
        q: Aligned,
        /// Per column (weights row), padded to whole panels.
        scales: Vec<f32>,
        /// `128 * sum(q)` per column: what `vpdpbusd`'s unsigned activations add.
        comp: Vec<i32>,
    },
}

fn refused(bytes: usize) -> ComputeError {
    ComputeError::OverBudget {
        needed: bytes as u64,
        allowed: 0,
    }
}

impl Weights {
    /// `bytes` is the raw little-endian region of `dtype` holding `shape` elements.
    pub fn from_bytes(
        bytes: &[u8],
        dtype: FileDtype,
        shape: &[usize],
        precision: Precision,
    ) -> Result<Weights, ComputeError> {
        let n = check_weights_shape(shape)?;
        let need = n.checked_mul(dtype.size());
        if need != Some(bytes.len()) {
            return invalid!(
                "weights of shape {shape:?} as {dtype:?} need {} bytes, the region has {}",
                need.map_or("too many".to_string(), |b| b.to_string()),
                bytes.len()
            );
        }
        let src = |i: usize| -> f32 {
            match dtype {
                FileDtype::F32 => {
                    let b = &bytes[4 * i..4 * i + 4];
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                }
                FileDtype::F16 => {
                    half::f16::from_bits(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
                        .to_f32()
                }
                FileDtype::Bf16 => {
                    let bits = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
                    f32::from_bits(u32::from(bits) << 16)
                }
            }
        };
        Weights::build(shape, precision, &src)
    }

    /// Weights from values the caller computed, row-major in `shape`.
    pub fn from_f32(
        data: Vec<f32>,
        shape: &[usize],
        precision: Precision,
    ) -> Result<Weights, ComputeError> {
        let n = check_weights_shape(shape)?;
        if n != data.len() {
            return invalid!(
                "weights of shape {shape:?} need {n} values, {} given",
                data.len()
            );
        }
        if shape.len() == 1 && precision == Precision::Float32 {
            return Ok(Weights {
                shape: shape.to_vec(),
                precision,
                store: Store::Vector(data),
            });
        }
        Weights::build(shape, precision, &|i| data[i])
    }

    fn build(
        shape: &[usize],
        precision: Precision,
        src: &dyn Fn(usize) -> f32,
    ) -> Result<Weights, ComputeError> {
        let store = if let [len] = *shape {
            let mut v: Vec<f32> = (0..len).map(src).collect();
            round_vector(&mut v, precision)?;
            Store::Vector(v)
        } else {
            Store::Matrix(Matrix::pack(shape, precision, src)?)
        };
        Ok(Weights {
            shape: shape.to_vec(),
            precision,
            store,
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Memory the stored form holds (packed panels with their padding, scales).
    pub fn bytes(&self) -> u64 {
        let b = match &self.store {
            Store::Vector(v) => v.len() * 4,
            Store::Matrix(m) => match &m.data {
                Packed::F32(a) | Packed::Bf16(a) => a.capacity_bytes(),
                Packed::Int8 { q, scales, comp } => {
                    q.capacity_bytes() + scales.len() * 4 + comp.len() * 4
                }
            },
        };
        b as u64
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Rank-1 weights as plain values.
    pub(crate) fn vector(&self) -> Option<&[f32]> {
        match &self.store {
            Store::Vector(v) => Some(v),
            Store::Matrix(_) => None,
        }
    }

    pub(crate) fn matrix(&self) -> Option<&Matrix> {
        match &self.store {
            Store::Matrix(m) => Some(m),
            Store::Vector(_) => None,
        }
    }
}

fn check_weights_shape(shape: &[usize]) -> Result<usize, ComputeError> {
    if shape.is_empty() || shape.len() > 3 {
        return invalid!("weights shape {shape:?} must have 1 to 3 axes");
    }
    crate::tensor::check_shape(shape, "weights")
}

/// Rounds a vector's values as `precision` would store them.
fn round_vector(v: &mut [f32], precision: Precision) -> Result<(), ComputeError> {
    match precision {
        Precision::Float32 => {}
        Precision::BFloat16 => v.iter_mut().for_each(|x| *x = round_bf16(*x)),
        Precision::Int8 => {
            let (scale, _) = int8_scale(v, 0)?;
            v.iter_mut()
                .for_each(|x| *x = f32::from(quantize(*x, scale)) * scale);
        }
    }
    Ok(())
}

pub(crate) fn round_bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

/// The symmetric scale of one row (`max |x| / 127`, 1 for an all-zero row) and its
/// reciprocal; `Invalid` for non-finite values, which int8 cannot represent.
pub(crate) fn int8_scale(row: &[f32], j: usize) -> Result<(f32, f32), ComputeError> {
    let mut amax = 0f32;
    for &x in row {
        if !x.is_finite() {
            return invalid!("int8 weights row {j} holds a non-finite value ({x})");
        }
        amax = amax.max(x.abs());
    }
    let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
    Ok((scale, 1.0 / scale))
}

pub(crate) fn quantize(x: f32, scale: f32) -> i8 {
    // Round to nearest even by the magic-number trick (`round_ties_even` is a libm
    // call on baseline x86_64, a tenth of an int8 model's load time).
    let y = (x / scale).clamp(-127.0, 127.0);
    let m = crate::kernels::elementwise::ROUND_MAGIC;
    (y + m).to_bits().wrapping_sub(m.to_bits()) as i32 as i8
}

impl Matrix {
    fn pack(
        shape: &[usize],
        precision: Precision,
        src: &dyn Fn(usize) -> f32,
    ) -> Result<Matrix, ComputeError> {
        let n = shape[0];
        let k = checked_product(&shape[1..], "weights")?;
        // Row `j` of the matrix, in the kernels' depth order.
        let row = |j: usize, out: &mut [f32]| match *shape {
            [_, cin, kernel] => {
                for t in 0..kernel {
                    for c in 0..cin {
                        out[t * cin + c] = src(j * k + c * kernel + t);
                    }
                }
            }
            _ => {
                for (kk, o) in out.iter_mut().enumerate() {
                    *o = src(j * k + kk);
                }
            }
        };
        let group = match precision {
            Precision::Float32 => 1,
            Precision::BFloat16 => 2,
            Precision::Int8 => 4,
        };
        let kp = pack::padded_depth(k, group);
        let len = pack::packed_len(n, kp)
            .filter(|&l| l <= isize::MAX as usize / 4)
            .ok_or_else(|| {
                ComputeError::Invalid(format!("weights shape {shape:?} is too large"))
            })?;
        let data = match precision {
            Precision::Float32 => {
                Packed::F32(pack::f32_panels(n, k, row).ok_or_else(|| refused(len * 4))?)
            }
            Precision::BFloat16 => {
                let mut a = Aligned::zeroed(len * 2).ok_or_else(|| refused(len * 2))?;
                pack::pack(
                    a.as_u16_mut(),
                    n,
                    k,
                    2,
                    row,
                    |v| half::bf16::from_f32(v).to_bits(),
                    0.0,
                );
                Packed::Bf16(a)
            }
            Precision::Int8 => {
                if k > INT8_MAX_DEPTH {
                    return invalid!(
                        "int8 weights of shape {shape:?} have more than {INT8_MAX_DEPTH} inputs per row"
                    );
                }
                let mut q = Aligned::zeroed(len).ok_or_else(|| refused(len))?;
                let padded_n = len / kp;
                let mut scales = vec![1f32; padded_n];
                let mut comp = vec![0i32; padded_n];
                let mut buf = vec![0f32; k];
                let out = q.as_i8_mut();
                for j in 0..n {
                    row(j, &mut buf);
                    let (scale, _) = int8_scale(&buf, j)?;
                    scales[j] = scale;
                    let mut sum = 0i32;
                    for (kk, &v) in buf.iter().enumerate() {
                        let qv = quantize(v, scale);
                        sum += i32::from(qv);
                        out[pack::index(j, kk, n, kp, 4)] = qv;
                    }
                    comp[j] = 128 * sum;
                }
                Packed::Int8 { q, scales, comp }
            }
        };
        Ok(Matrix { n, k, kp, data })
    }

    /// Row `j` of the weights (column `j` of `B`) as `f32`, `k` values in depth order.
    pub(crate) fn row_into(&self, j: usize, out: &mut [f32]) {
        let (kp, k, n) = (self.kp, self.k, self.n);
        // Depth `kk` of column `j` sits at `base + (kk / depth) * step + kk % depth`.
        let place = |depth: usize| {
            let g0 = j / pack::NR / pack::GROUP * pack::GROUP;
            let step = pack::group_panels(g0, n.div_ceil(pack::NR)) * pack::NR * depth;
            (pack::index(j, 0, n, kp, depth), step)
        };
        match &self.data {
            Packed::F32(a) => {
                let (a, (base, step)) = (a.as_f32(), place(1));
                for (kk, o) in out[..k].iter_mut().enumerate() {
                    *o = a[base + kk * step];
                }
            }
            Packed::Bf16(a) => {
                let (a, (base, step)) = (a.as_u16(), place(2));
                for (kk, o) in out[..k].iter_mut().enumerate() {
                    *o = f32::from_bits(u32::from(a[base + kk / 2 * step + kk % 2]) << 16);
                }
            }
            Packed::Int8 { q, scales, .. } => {
                let (q, s, (base, step)) = (q.as_i8(), scales[j], place(4));
                for (kk, o) in out[..k].iter_mut().enumerate() {
                    *o = f32::from(q[base + kk / 4 * step + kk % 4]) * s;
                }
            }
        }
    }
}
