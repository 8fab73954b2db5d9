//! The ops of the compute interface (semantics as in `wit/v0.2.0/compute.wit`). Each
//! validates everything first, then checks the allowance, then charges its work, then
//! computes: a failed call costs nothing and allocates nothing.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod linear;
pub(crate) mod norm;

use crate::error::{ComputeError, invalid};
use crate::weights::Weights;

pub use attention::{attention, attention_cached, attention_weights};
pub use conv::conv1d;
pub use elementwise::{add, add_positions, embed};
pub use linear::linear;
pub use norm::layer_norm;

/// What is applied to a product before it is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    None,
    /// GELU with the exact `erf`, as Whisper and BERT use it.
    Gelu,
}

/// A rank-1 weights' values, checked to have `len` of them.
pub(crate) fn vector<'w>(
    w: &'w Weights,
    len: usize,
    what: &str,
) -> Result<&'w [f32], ComputeError> {
    match w.vector() {
        Some(v) if v.len() == len => Ok(v),
        _ => invalid!("{what} must have shape [{len}], it has {:?}", w.shape()),
    }
}

/// The product of `parts` as a work count (saturating: only compared and summed).
pub(crate) fn units(parts: &[usize]) -> u64 {
    parts
        .iter()
        .fold(1u64, |acc, &p| acc.saturating_mul(p as u64))
}
