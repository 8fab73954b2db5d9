//! Native kernels behind sandscribe's `compute` interface (`wit/v0.2.0/compute.wit`):
//! the heavy math of sandboxed plugins (matrix products, attention, convolutions,
//! norms), run natively with the SIMD the CPU has and up to a job's thread budget.
//!
//! Every op checks shapes, ids and sizes first and fails with
//! [`ComputeError::Invalid`] (never a panic or an out-of-bounds access), checks what
//! it will allocate against [`Ctx::allowance_bytes`], charges a work count that
//! depends on shapes only ([`Ctx::work`]), and polls [`Ctx::stop`] between blocks of a
//! millisecond or so. Results do not depend on the thread count, bit for bit.
//!
//! How it is fast:
//! - [`Weights`] are packed once, at creation, into the panel layout the microkernels
//!   stream (`W^T` in 64-column groups, depth-major), in the chosen [`Precision`]; no
//!   call transposes, converts or repacks them.
//! - One register-tiled microkernel per precision (6 rows x 64 columns): f32 FMA,
//!   bf16 (`vdpbf16ps` for many rows, widen-and-FMA with exact activations for few),
//!   int8 (`vpdpbusd`, activations quantised per row). Encoder shapes run near the FMA
//!   peak; decoder shapes (5 rows) read each weight once, at memory speed.
//! - Attention packs a head's keys and values for many queries and reads them in
//!   place for few (decoder steps), reading shared cross-attention keys once for every
//!   sequence.
//! - Runtime dispatch (`is_x86_feature_detected!`) picks AVX-512 / AVX2 / portable
//!   code ([`kernels()`]); the portable code is the reference every level is tested
//!   against, and what aarch64 runs (autovectorised NEON).
//! - Blocks of a call are cut from its shape alone and run on the calling thread
//!   (one thread) or on at most `Ctx::threads` threads of `Ctx::pool`.
//!
//! A block's work is at most ~16 M multiply-adds (about a millisecond), except for
//! products whose rows are longer than ~43 000 values, where a block is 6 rows x 64
//! columns of them (bounded by the size of the weights it reads).

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
