//! Host-held `f32` activations. Data sits behind an `Arc` so handles, reshapes and
//! clones share one buffer; every op makes a new tensor, none mutates one.

use std::sync::Arc;

use crate::ctx::{Ctx, checked_product, f32_bytes, zeroed};
use crate::error::{ComputeError, invalid};

/// Most axes a tensor may have (activations here have at most 4).
pub const MAX_RANK: usize = 8;

/// A row-major `f32` tensor; every axis has at least one element.
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Arc<Vec<f32>>,
}

/// Checks a shape for tensors and weights: 1..=MAX_RANK axes, none empty, and a
/// product that fits; returns the product.
pub(crate) fn check_shape(shape: &[usize], what: &str) -> Result<usize, ComputeError> {
    if shape.is_empty() || shape.len() > MAX_RANK {
        return invalid!("{what} shape {shape:?} must have 1 to {MAX_RANK} axes");
    }
    if shape.contains(&0) {
        return invalid!("{what} shape {shape:?} has an empty axis");
    }
    let n = checked_product(shape, &format!("{what} shape"))?;
    if n > isize::MAX as usize / 4 {
        return invalid!("{what} shape {shape:?} is too large");
    }
    Ok(n)
}

impl Tensor {
    /// `data` must hold exactly the product of `shape` values.
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Result<Tensor, ComputeError> {
        let n = check_shape(shape, "tensor")?;
        if n != data.len() {
            return invalid!(
                "tensor shape {shape:?} needs {n} values, {} given",
                data.len()
            );
        }
        Ok(Tensor::from_parts(data, shape.to_vec()))
    }

    /// For ops, whose outputs are correct by construction.
    pub(crate) fn from_parts(data: Vec<f32>, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            data: Arc::new(data),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Elements (the product of the shape).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Always false: tensors have no empty axis (for clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes of the buffer this tensor keeps alive. Reshapes share it, so a host that
    /// adds this up per handle over-counts a shared buffer, never under-counts one.
    pub fn bytes(&self) -> u64 {
        f32_bytes(self.data.len())
    }

    /// Shares this tensor's buffer (no copy, no allocation).
    pub fn reshape(&self, ctx: &Ctx, shape: &[usize]) -> Result<Tensor, ComputeError> {
        let n = check_shape(shape, "reshape")?;
        if n != self.len() {
            return invalid!(
                "cannot reshape {:?} ({} values) to {shape:?} ({n} values)",
                self.shape,
                self.len()
            );
        }
        ctx.charge(1);
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Arc::clone(&self.data),
        })
    }

    /// `len` positions from `start` along `axis`, copied into a new buffer (so a small
    /// slice never keeps a big buffer alive unaccounted).
    pub fn narrow(
        &self,
        ctx: &Ctx,
        axis: usize,
        start: usize,
        len: usize,
    ) -> Result<Tensor, ComputeError> {
        let shape = &self.shape;
        let Some(&size) = shape.get(axis) else {
            return invalid!("narrow axis {axis} of a tensor of shape {shape:?}");
        };
        if len == 0 || start >= size || len > size - start {
            return invalid!(
                "narrow {start}..{} of axis {axis} (size {size}) of shape {shape:?}",
                start.saturating_add(len)
            );
        }
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let mut out_shape = shape.clone();
        out_shape[axis] = len;
        let n = outer * len * inner;
        ctx.reserve(f32_bytes(n))?;
        ctx.charge(n as u64);
        let mut out = zeroed(n)?;
        let (src_rows, dst_rows) = (size * inner, len * inner);
        for (o, dst) in out.chunks_exact_mut(dst_rows).enumerate() {
            let from = o * src_rows + start * inner;
            dst.copy_from_slice(&self.data[from..from + dst_rows]);
        }
        Ok(Tensor::from_parts(out, out_shape))
    }
}
