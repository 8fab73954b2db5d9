//! Adds and table lookups: memory-bound, one pass each.

use crate::ctx::{Ctx, SharedMut, f32_bytes, mul, zeroed};
use crate::error::{ComputeError, invalid};
use crate::kernels::{self, elementwise};
use crate::ops::units;
use crate::tensor::Tensor;
use crate::weights::Weights;

/// Values per block of an add (a fraction of a millisecond).
const BLOCK_VALUES: usize = 1 << 18;

/// `out = a + b` (`b` repeated), in blocks of whole repeats of `b`, polling stop.
fn add_blocked(ctx: &Ctx, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ComputeError> {
    let per = (BLOCK_VALUES / b.len()).max(1) * b.len();
    let level = kernels::level();
    let blocks = a.len().div_ceil(per);
    let dst = SharedMut::new(out);
    ctx.run_blocks(blocks > 2, blocks, |i| {
        let (from, to) = (i * per, ((i + 1) * per).min(a.len()));
        // SAFETY: blocks own disjoint ranges.
        let o = unsafe { dst.slice(from, to - from) };
        elementwise::add_broadcast(level, &a[from..to], b, o);
        Ok(())
    })
}

/// `a + b`; `b` has `a`'s shape or that of `a`'s last axes (broadcast over the
/// leading ones).
pub fn add(ctx: &Ctx, a: &Tensor, b: &Tensor) -> Result<Tensor, ComputeError> {
    let (sa, sb) = (a.shape(), b.shape());
    if sb.len() > sa.len() || sa[sa.len() - sb.len()..] != *sb {
        return invalid!("add of {sa:?} and {sb:?}: b must have a's shape or its last axes");
    }
    ctx.reserve(f32_bytes(a.len()))?;
    ctx.charge(units(&[a.len()]));
    let mut out = zeroed(a.len())?;
    add_blocked(ctx, a.data(), b.data(), &mut out)?;
    Ok(Tensor::from_parts(out, sa.to_vec()))
}

/// `x + rows start..start + t of w` for `x` `[batch, t, features]` and `w`
/// `[positions, features]`.
pub fn add_positions(
    ctx: &Ctx,
    x: &Tensor,
    w: &Weights,
    start: usize,
) -> Result<Tensor, ComputeError> {
    let (xs, ws) = (x.shape(), w.shape());
    let (t, features) = match *xs {
        [_, t, f] => (t, f),
        _ => return invalid!("add_positions input must be [batch, t, features], it is {xs:?}"),
    };
    let matrix = match (w.matrix(), ws) {
        (Some(m), &[positions, f])
            if f == features && start.checked_add(t).is_some_and(|e| e <= positions) =>
        {
            m
        }
        _ => {
            return invalid!(
                "add_positions of x {xs:?} from position {start} needs weights [>= {}, {features}], they are {ws:?}",
                start.saturating_add(t)
            );
        }
    };
    let rows_len = mul(t, features, "add_positions rows")?;
    ctx.reserve(f32_bytes(x.len()).saturating_add(f32_bytes(rows_len)))?;
    ctx.charge(units(&[x.len()]).saturating_add(rows_len as u64));
    let mut rows = zeroed(rows_len)?;
    for (i, row) in rows.chunks_exact_mut(features).enumerate() {
        matrix.row_into(start + i, row);
    }
    let mut out = zeroed(x.len())?;
    add_blocked(ctx, x.data(), &rows, &mut out)?;
    Ok(Tensor::from_parts(out, xs.to_vec()))
}

/// Rows `ids` of `table` (`[vocabulary, features]`) as `[batch, ids.len() / batch,
/// features]`.
pub fn embed(
    ctx: &Ctx,
    table: &Weights,
    ids: &[u32],
    batch: usize,
) -> Result<Tensor, ComputeError> {
    let ts = table.shape();
    let (matrix, vocab, features) = match (table.matrix(), ts) {
        (Some(m), &[v, f]) => (m, v, f),
        _ => return invalid!("embed table must be [vocabulary, features], it is {ts:?}"),
    };
    if batch == 0 || ids.is_empty() || !ids.len().is_multiple_of(batch) {
        return invalid!(
            "embed of {} ids in a batch of {batch}: the batch must divide a non-zero count",
            ids.len()
        );
    }
    if let Some((i, &id)) = ids
        .iter()
        .enumerate()
        .find(|&(_, &id)| id as usize >= vocab)
    {
        return invalid!("embed id {id} (at {i}) is outside the table {ts:?}");
    }
    let len = mul(ids.len(), features, "embed output")?;
    ctx.reserve(f32_bytes(len))?;
    ctx.charge(len as u64);
    let mut out = zeroed(len)?;
    for (n, (row, &id)) in out.chunks_exact_mut(features).zip(ids).enumerate() {
        if n % 1024 == 1023 {
            ctx.check_stop()?;
        }
        matrix.row_into(id as usize, row);
    }
    Ok(Tensor::from_parts(
        out,
        vec![batch, ids.len() / batch, features],
    ))
}
