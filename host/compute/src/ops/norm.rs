//! Layer normalisation over the last axis.

use crate::ctx::{Ctx, SharedMut, f32_bytes, zeroed};
use crate::error::{ComputeError, invalid};
use crate::kernels::{self, elementwise};
use crate::ops::{units, vector};
use crate::tensor::Tensor;
use crate::weights::Weights;

/// Values per block: a fraction of a millisecond each.
const BLOCK_VALUES: usize = 1 << 16;

/// Layer normalisation over the last axis, then `* gamma + beta` (both `[features]`).
pub fn layer_norm(
    ctx: &Ctx,
    x: &Tensor,
    gamma: &Weights,
    beta: &Weights,
    eps: f32,
) -> Result<Tensor, ComputeError> {
    let xs = x.shape();
    let n = *xs.last().unwrap_or(&0);
    let gamma = vector(gamma, n, &format!("layer_norm gamma for x {xs:?}"))?;
    let beta = vector(beta, n, &format!("layer_norm beta for x {xs:?}"))?;
    if !(eps.is_finite() && eps >= 0.0) {
        return invalid!("layer_norm eps must be finite and >= 0, it is {eps}");
    }
    let len = x.len();
    ctx.reserve(f32_bytes(len))?;
    ctx.charge(units(&[len, 5]));
    let mut out = zeroed(len)?;
    let rows = len / n;
    let per_block = (BLOCK_VALUES / n).max(1);
    let blocks = rows.div_ceil(per_block);
    let level = kernels::level();
    let dst = SharedMut::new(&mut out);
    ctx.run_blocks(true, blocks, |b| {
        let r0 = b * per_block;
        let r1 = (r0 + per_block).min(rows);
        // SAFETY: blocks own disjoint row ranges.
        let seg = unsafe { dst.slice(r0 * n, (r1 - r0) * n) };
        elementwise::layer_norm_rows(level, &x.data()[r0 * n..r1 * n], seg, gamma, beta, eps);
        Ok(())
    })?;
    Ok(Tensor::from_parts(out, xs.to_vec()))
}
