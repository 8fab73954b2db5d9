//! `x · W^T + bias`, then an activation, blocked for threads and stop polling; the
//! same driver runs convolutions (their im2col rows are views of the input).

use crate::ctx::{Ctx, SharedMut, f32_bytes, mul, zeroed};
use crate::error::{ComputeError, invalid};
use crate::kernels::pack::NR;
use crate::kernels::{self, bf16, erf, gemm, int8};
use crate::ops::{Activation, units, vector};
use crate::scratch;
use crate::tensor::Tensor;
use crate::weights::{Matrix, Packed, Weights};

/// `x @ w^T + bias`, then `act`: `x` is `[..., in]`, `w` is `[out, in]`, `bias` is
/// `[out]`; the result is `[..., out]`.
pub fn linear(
    ctx: &Ctx,
    x: &Tensor,
    w: &Weights,
    bias: Option<&Weights>,
    act: Activation,
) -> Result<Tensor, ComputeError> {
    let (xs, ws) = (x.shape(), w.shape());
    let matrix = match (w.matrix(), ws.len()) {
        (Some(m), 2) => m,
        _ => return invalid!("linear weights must be [out, in], they are {ws:?}"),
    };
    let (n, k) = (matrix.n, matrix.k);
    if xs.last() != Some(&k) {
        return invalid!("linear of x {xs:?} by weights {ws:?}: x's last axis must be {k}");
    }
    let bias = match bias {
        Some(b) => Some(vector(b, n, "linear bias")?),
        None => None,
    };
    let m = x.len() / k;
    let mut shape = xs.to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    let out_len = mul(m, n, "linear output")?;
    ctx.reserve(f32_bytes(out_len).saturating_add(scratch_bytes(matrix, m)))?;
    ctx.charge(units(&[m, n, k]).saturating_add(units(&[m, n])));
    let mut out = zeroed(out_len)?;
    product(
        ctx,
        Rows::dense(x.data(), m, k),
        matrix,
        bias,
        act,
        &mut out,
    )?;
    Ok(Tensor::from_parts(out, shape))
}

/// The `A` operand: `m` rows of `k` values, `lda` apart (rows may overlap, as a
/// convolution's do).
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) lda: usize,
}

impl<'a> Rows<'a> {
    pub(crate) fn dense(data: &'a [f32], m: usize, k: usize) -> Rows<'a> {
        Rows { data, m, k, lda: k }
    }
}

/// Scratch a product needs beyond its output: int8 quantises `A` first, bf16 with
/// many rows rounds it.
pub(crate) fn scratch_bytes(w: &Matrix, m: usize) -> u64 {
    match w.data {
        Packed::Int8 { .. } => (m as u64).saturating_mul(w.kp as u64 + 4),
        Packed::Bf16(_) if m >= bf16::DOT_MIN_ROWS => (m as u64).saturating_mul(w.kp as u64 * 2),
        _ => 0,
    }
}

/// `A` as the kernels read it.
#[derive(Clone, Copy)]
enum Prepared<'a> {
    F32,
    /// Quantised rows (`q + 128`, `kp` each) and their scales.
    Int8(&'a [u8], &'a [f32]),
    /// bf16 rows (`kp` each).
    Bf16(&'a [u16]),
}

/// Work per block: about a millisecond at AVX-512 speed, so a stop request is seen
/// within a few milliseconds even on one thread.
const BLOCK_MACS: usize = 1 << 24;
/// Products smaller than this run as one block (threads cost more than they give).
const SMALL_MACS: usize = 1 << 22;
/// Blocks a large product is cut into at least, so threads balance.
const MIN_BLOCKS: usize = 8;

/// A tiling of `m x n` output into blocks, from the shape alone (never the thread
/// count), so results are the same for every thread count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tiling {
    pub(crate) mb: usize,
    pub(crate) nb: usize,
    pub(crate) row_blocks: usize,
    pub(crate) col_blocks: usize,
}

impl Tiling {
    pub(crate) fn new(m: usize, n: usize, k: usize) -> Tiling {
        let macs = m.saturating_mul(n).saturating_mul(k);
        if macs <= SMALL_MACS {
            return Tiling {
                mb: m,
                nb: n,
                row_blocks: 1,
                col_blocks: 1,
            };
        }
        // Rows of A per block: about 192 KiB of them, so they stay in L2 while the
        // block's panels stream past.
        let mr = gemm::MR;
        let want_mb = ((48 * 1024 / k.max(1)) / mr * mr).clamp(mr, 240);
        let row_blocks = m.div_ceil(want_mb);
        let mb = m.div_ceil(row_blocks).div_ceil(mr) * mr;
        let row_blocks = m.div_ceil(mb);
        let blocks = macs.div_ceil(BLOCK_MACS).max(MIN_BLOCKS);
        let col_blocks = blocks.div_ceil(row_blocks).clamp(1, n.div_ceil(64));
        let nb = n.div_ceil(col_blocks).div_ceil(64) * 64;
        let col_blocks = n.div_ceil(nb);
        Tiling {
            mb,
            nb,
            row_blocks,
            col_blocks,
        }
    }

    pub(crate) fn blocks(&self) -> usize {
        self.row_blocks * self.col_blocks
    }
}

/// `out = A · W^T (+ bias) (then act)`, `out` being `m x n` row-major.
pub(crate) fn product(
    ctx: &Ctx,
    a: Rows,
    w: &Matrix,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<(), ComputeError> {
    let (m, n, k) = (a.m, w.n, w.k);
    debug_assert_eq!(a.k, k);
    debug_assert_eq!(out.len(), m * n);
    debug_assert!(a.data.len() >= (m - 1) * a.lda + k);
    let level = kernels::level();
    match &w.data {
        // int8: quantise every row once, into per-thread scratch (scales first).
        Packed::Int8 { .. } => scratch::with_f32(m + (m * w.kp).div_ceil(4), |buf| {
            let (scales, q) = buf.split_at_mut(m);
            // SAFETY: f32 storage viewed as bytes, within its length.
            let q =
                unsafe { std::slice::from_raw_parts_mut(q.as_mut_ptr().cast::<u8>(), m * w.kp) };
            int8::quantize_rows(level, a.data, a.lda, m, k, w.kp, q, scales);
            blocks(ctx, a, w, bias, act, out, Prepared::Int8(q, scales))
        })?,
        Packed::Bf16(_) if m >= bf16::DOT_MIN_ROWS => {
            scratch::with_f32((m * w.kp).div_ceil(2), |buf| {
                // SAFETY: f32 storage viewed as u16, within its length.
                let r = unsafe {
                    std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u16>(), m * w.kp)
                };
                bf16::round_rows(level, a.data, a.lda, m, k, w.kp, r);
                blocks(ctx, a, w, bias, act, out, Prepared::Bf16(r))
            })?
        }
        _ => blocks(ctx, a, w, bias, act, out, Prepared::F32),
    }
}

/// The blocked product, `A` prepared.
fn blocks(
    ctx: &Ctx,
    a: Rows,
    w: &Matrix,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
    prepared: Prepared,
) -> Result<(), ComputeError> {
    let (m, n, k) = (a.m, w.n, w.k);
    let cpu = kernels::cpu();
    let level = cpu.level;
    let tiling = Tiling::new(m, n, k);
    let c = SharedMut::new(out);
    ctx.run_blocks(true, tiling.blocks(), |blk| {
        let (rb, cb) = (blk / tiling.col_blocks, blk % tiling.col_blocks);
        let (r0, c0) = (rb * tiling.mb, cb * tiling.nb);
        let (rows, cols) = ((m - r0).min(tiling.mb), (n - c0).min(tiling.nb));
        let p0 = c0 / NR;
        // SAFETY: blocks cover disjoint (rows, cols) rectangles of `out`; `Rows` and
        // `Matrix` bounds were checked when they were built.
        unsafe {
            let cptr = c.ptr().add(r0 * n + c0);
            match (&w.data, prepared) {
                (Packed::F32(b), _) => gemm::gemm_f32(
                    level,
                    rows,
                    k,
                    a.data.as_ptr().add(r0 * a.lda),
                    a.lda,
                    b.as_f32().as_ptr().add(p0 * NR * w.kp),
                    cols,
                    cptr,
                    n,
                ),
                (Packed::Bf16(b), Prepared::Bf16(ra)) => bf16::gemm_bf16_dot(
                    level,
                    cpu.bf16,
                    rows,
                    w.kp,
                    ra.as_ptr().add(r0 * w.kp),
                    w.kp,
                    b.as_u16().as_ptr().add(p0 * NR * w.kp),
                    cols,
                    cptr,
                    n,
                ),
                (Packed::Bf16(b), _) => bf16::gemm_bf16(
                    level,
                    rows,
                    k,
                    a.data.as_ptr().add(r0 * a.lda),
                    a.lda,
                    b.as_u16().as_ptr().add(p0 * NR * w.kp),
                    cols,
                    cptr,
                    n,
                ),
                (Packed::Int8 { q, scales, comp }, Prepared::Int8(qa, sa)) => int8::gemm_i8(
                    level,
                    cpu.vnni,
                    rows,
                    w.kp,
                    qa.as_ptr().add(r0 * w.kp),
                    w.kp,
                    sa.as_ptr().add(r0),
                    q.as_i8().as_ptr().add(p0 * NR * w.kp),
                    comp.as_ptr().add(c0),
                    scales.as_ptr().add(c0),
                    cols,
                    cptr,
                    n,
                ),
                (Packed::Int8 { .. }, _) => unreachable!("int8 products always quantise A"),
            }
            for r in r0..r0 + rows {
                let seg = c.slice(r * n + c0, cols);
                epilogue(level, seg, bias.map(|b| &b[c0..c0 + cols]), act);
            }
        }
        Ok(())
    })
}

/// Bias and activation on a block's row segment while it is still in cache.
pub(crate) fn epilogue(
    level: kernels::Level,
    seg: &mut [f32],
    bias: Option<&[f32]>,
    act: Activation,
) {
    if let Some(b) = bias {
        kernels::elementwise::add_rows_in_place(level, seg, b);
    }
    if act == Activation::Gelu {
        erf::gelu_in_place(level, seg);
    }
}
