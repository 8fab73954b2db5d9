//! Native kernels behind sandscribe's `compute` interface (`wit/v0.2.0/compute.wit`):
//! the heavy math of sandboxed plugins (matrix products, attention, convolutions,
//! norms), run natively with the SIMD the CPU has and up to a job's thread budget.
//!
//! Every op checks shapes, ids and sizes first and fails with
//! [`ComputeError::Invalid`] (never a panic or an out-of-bounds access), checks what
//! it will allocate against [`Ctx::allowance_bytes`], charges a work count that
//! depends on shapes only ([`Ctx::work`]), and polls [`Ctx::stop`] between blocks of a
//! millisecond or so. Results do not depend on the thread count.

mod ctx;
mod error;
mod kernels;
mod kv_cache;
mod ops;
mod scratch;
mod tensor;
mod weights;

#[cfg(test)]
mod tests;

pub use ctx::Ctx;
pub use error::ComputeError;
pub use kernels::{kernel_details, kernels};
pub use kv_cache::KvCache;
pub use ops::{
    Activation, add, add_positions, attention, attention_cached, attention_weights, conv1d, embed,
    layer_norm, linear,
};
pub use tensor::{MAX_RANK, Tensor};
pub use weights::{FileDtype, INT8_MAX_DEPTH, Precision, Weights};
