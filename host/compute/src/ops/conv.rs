//! 1-D convolution over time, channels last. The weights are packed kernel-major
//! (`[out, kernel, in]`), so the im2col row of output step `t` is the contiguous run
//! of input rows `t * stride - padding ..` of a zero-padded copy: the product reads
//! those rows in place (`lda = stride * in`), and no im2col matrix is ever built.

use crate::ctx::{Ctx, f32_bytes, mul, zeroed};
use crate::error::{ComputeError, invalid};
use crate::ops::linear::{Rows, product, scratch_bytes};
use crate::ops::{Activation, units, vector};
use crate::tensor::Tensor;
use crate::weights::Weights;

/// `x` `[time, in]` (or `[1, time, in]`), `w` `[out, in, kernel]`, `bias` `[out]`:
/// the result is `[(time + 2 padding - kernel) / stride + 1, out]` (with the same
/// leading 1 if `x` had it), then `act`.
pub fn conv1d(
    ctx: &Ctx,
    x: &Tensor,
    w: &Weights,
    bias: Option<&Weights>,
    stride: usize,
    padding: usize,
    act: Activation,
) -> Result<Tensor, ComputeError> {
    let (xs, ws) = (x.shape(), w.shape());
    let (time, cin) = match *xs {
        [t, c] | [1, t, c] => (t, c),
        _ => return invalid!("conv1d input must be [time, in] or [1, time, in], it is {xs:?}"),
    };
    let (matrix, (cout, kernel)) = match (w.matrix(), ws) {
        (Some(m), &[o, i, kern]) if i == cin => (m, (o, kern)),
        _ => {
            return invalid!(
                "conv1d weights must be [out, {cin}, kernel] for input {xs:?}, they are {ws:?}"
            );
        }
    };
    if stride == 0 {
        return invalid!("conv1d stride must be at least 1");
    }
    let padded = padding
        .checked_mul(2)
        .and_then(|p| p.checked_add(time))
        .ok_or_else(|| ComputeError::Invalid(format!("conv1d padding {padding} is too large")))?;
    if padded < kernel {
        return invalid!(
            "conv1d kernel {kernel} is longer than input {xs:?} with padding {padding}"
        );
    }
    let bias = match bias {
        Some(b) => Some(vector(b, cout, "conv1d bias")?),
        None => None,
    };
    let steps = (padded - kernel) / stride + 1;
    // Distance between the im2col rows (unused with one output step).
    let lda = if steps == 1 {
        cin
    } else {
        mul(stride, cin, "conv1d stride")?
    };
    let out_len = mul(steps, cout, "conv1d output")?;
    let xp_len = mul(padded, cin, "conv1d padded input")?;
    let needed = f32_bytes(out_len)
        .saturating_add(f32_bytes(xp_len))
        .saturating_add(scratch_bytes(matrix, steps));
    ctx.reserve(needed)?;
    ctx.charge(units(&[steps, cout, matrix.k]).saturating_add(units(&[steps, cout])));
    // The zero-padded input: rows `padding..padding + time` are `x`.
    let mut xp = zeroed(xp_len)?;
    xp[padding * cin..(padding + time) * cin].copy_from_slice(x.data());
    let mut out = zeroed(out_len)?;
    let rows = Rows {
        data: &xp,
        m: steps,
        k: matrix.k,
        lda,
    };
    product(ctx, rows, matrix, bias, act, &mut out)?;
    let shape = if xs.len() == 3 {
        vec![1, steps, cout]
    } else {
        vec![steps, cout]
    };
    Ok(Tensor::from_parts(out, shape))
}
