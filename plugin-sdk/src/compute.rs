//! Native-speed math for plugins: tensors held by the host, weights shared between jobs,
//! and the few fused operations a transformer needs (the `compute` interface of
//! `sandscribe:plugin@0.2.0` and later).
//!
//! Inside the sandbox a WebAssembly component has 128-bit SIMD, one thread and its own
//! copy of every weight. With this module the heavy kernels run in the host, with the
//! CPU's full instruction set and the job's thread budget, while the plugin keeps its
//! logic (features, decoding, search). Activations stay in the host between calls as
//! [`Tensor`] handles; only [`Tensor::read`] copies numbers back. [`Weights`] read from
//! the plugin's assets are one copy in the host, whatever the number of jobs.
//!
//! Calls are infallible: a wrong one (mismatched shapes, a region outside the file, too
//! much memory) stops the job with `invalid_compute_call` and the reason; the host is
//! never at risk and the plugin has nothing to handle.
//!
//! ```ignore
//! use sandscribe_plugin_sdk::compute::{self, Activation, FileDtype, Precision, Tensor, Weights};
//!
//! // A [1, 4] input through a 4 → 2 layer read from the plugin's assets.
//! let w = Weights::from_asset("model.bin", 1024, FileDtype::F16, &[2, 4], Precision::Float32);
//! let x = Tensor::new(&[0.5, -1.0, 2.0, 0.0], &[1, 4]);
//! let y = compute::linear(&x, &w, None, Activation::Gelu);
//! assert_eq!(y.shape(), vec![1, 2]);
//! let values: Vec<f32> = y.read();
//! ```
//!
//! **Two backends, one API.** Compiled for `wasm32`, every call goes to the host.
//! Compiled natively (plugin unit tests, benches), the same calls run the host's kernels
//! (`sandscribe-compute`) in-process: a mock host with the same checks, where a wrong
//! call panics with the `invalid_compute_call` message. See [`native`] for where
//! [`Weights::from_asset`] reads files from and how many threads are used natively.

#[cfg(not(target_arch = "wasm32"))]
#[path = "compute_native.rs"]
mod backend;
#[cfg(target_arch = "wasm32")]
#[path = "compute_wasm.rs"]
mod backend;

/// Settings of the native backend (tests and benches; not in the component).
#[cfg(not(target_arch = "wasm32"))]
pub mod native {
    pub use super::backend::{configure, shared_weight_bytes, threads, with_assets_dir};
}

/// How numbers are stored in an asset file region (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileDtype {
    F32,
    F16,
    Bf16,
}

impl FileDtype {
    /// Bytes per element.
    pub fn width(self) -> usize {
        match self {
            FileDtype::F32 => 4,
            FileDtype::F16 | FileDtype::Bf16 => 2,
        }
    }
}

/// How the host keeps weights for [`linear`]. Reduced precisions are faster and smaller
/// and change results slightly: `Int8` is per-row symmetric quantisation with f32
/// scales, `BFloat16` rounds each weight to bfloat16. Weights used for anything but
/// `linear` (norms, biases, positions, embeddings) should be `Float32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    #[default]
    Float32,
    BFloat16,
    Int8,
}

/// What is applied to a product before it is returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    #[default]
    None,
    /// GELU with the exact `erf`, as Whisper and BERT use it.
    Gelu,
}

/// What the host gives this job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Threads one call may use.
    pub threads: usize,
    /// The instruction set the kernels run with ("avx512", "avx2", "neon", "scalar").
    pub kernels: String,
}

/// An `f32` tensor held by the host for this job, row-major, shape outermost first
/// (`[batch, time, features]` for activations). Dropping it frees the host's memory.
pub struct Tensor(backend::Tensor);

impl Tensor {
    /// A tensor of `data`, which has exactly the product of `shape` elements.
    pub fn new(data: &[f32], shape: &[usize]) -> Self {
        Self(backend::Tensor::new(data, shape))
    }

    pub fn shape(&self) -> Vec<usize> {
        self.0.shape()
    }

    /// Copies every element out of the host, row-major.
    pub fn read(&self) -> Vec<f32> {
        self.0.read()
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        Self(self.0.reshape(shape))
    }

    /// `len` positions starting at `start` along `axis`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        Self(self.0.narrow(axis, start, len))
    }
}

/// Immutable parameters (`[out, in]` for [`linear`], `[out, in, kernel]` for
/// [`conv1d`], `[features]` for norms and biases).
pub struct Weights(backend::Weights);

impl Weights {
    /// The region of `path` (relative to the plugin's assets folder) that starts at
    /// byte `offset` and holds `shape` elements of `dtype`, converted to `precision`.
    /// The host reads the file itself, and every job of this plugin build that asks for
    /// the same region and precision shares one copy.
    pub fn from_asset(
        path: &str,
        offset: u64,
        dtype: FileDtype,
        shape: &[usize],
        precision: Precision,
    ) -> Self {
        Self(backend::Weights::from_asset(
            path, offset, dtype, shape, precision,
        ))
    }

    /// Weights from values the plugin computed (e.g. mel filters), owned by this job.
    pub fn from_data(data: &[f32], shape: &[usize], precision: Precision) -> Self {
        Self(backend::Weights::from_data(data, shape, precision))
    }

    pub fn shape(&self) -> Vec<usize> {
        self.0.shape()
    }
}

/// The self-attention keys and values of a decoder for `batch` sequences that grow a
/// step at a time, up to `capacity` positions, held by the host. Use it with
/// [`attention_cached`]; reorder it for beam search.
pub struct KvCache(backend::KvCache);

impl KvCache {
    /// `width` is the model width (heads × head size).
    pub fn new(batch: usize, width: usize, capacity: usize) -> Self {
        Self(backend::KvCache::new(batch, width, capacity))
    }

    /// Positions held per sequence.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn batch(&self) -> usize {
        self.0.batch()
    }

    /// Appends `keys` and `values`, both `[batch, t, width]`.
    pub fn append(&mut self, keys: &Tensor, values: &Tensor) {
        self.0.append(&keys.0, &values.0);
    }

    /// Sequence `i` continues former sequence `sources[i]`; the batch becomes
    /// `sources.len()`.
    pub fn reorder(&mut self, sources: &[u32]) {
        self.0.reorder(sources);
    }

    /// Forgets every position; the batch becomes `batch`.
    pub fn reset(&mut self, batch: usize) {
        self.0.reset(batch);
    }
}

/// `x @ w^T + bias`, then `act`: `x` is `[..., in]`, `w` is `[out, in]`, `bias` is
/// `[out]`; the result is `[..., out]`.
pub fn linear(x: &Tensor, w: &Weights, bias: Option<&Weights>, act: Activation) -> Tensor {
    Tensor(backend::linear(&x.0, &w.0, bias.map(|b| &b.0), act))
}

/// Layer normalisation over the last axis, then `* gamma + beta` (both `[features]`).
pub fn layer_norm(x: &Tensor, gamma: &Weights, beta: &Weights, eps: f32) -> Tensor {
    Tensor(backend::layer_norm(&x.0, &gamma.0, &beta.0, eps))
}

/// `a + b`, element by element; `b` has the shape of `a` or of `a`'s last axes
/// (broadcast over the leading ones).
pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
    Tensor(backend::add(&a.0, &b.0))
}

/// `x + rows start..start + t of w` for `x` of `[batch, t, features]` and `w` of
/// `[positions, features]` (learned or sinusoidal position embeddings).
pub fn add_positions(x: &Tensor, w: &Weights, start: usize) -> Tensor {
    Tensor(backend::add_positions(&x.0, &w.0, start))
}

/// Rows `ids` of `table` (`[vocabulary, features]`) as
/// `[batch, ids.len() / batch, features]`.
pub fn embed(table: &Weights, ids: &[u32], batch: usize) -> Tensor {
    Tensor(backend::embed(&table.0, ids, batch))
}

/// 1-D convolution over time, channels last: `x` is `[time, in]`, `w` is
/// `[out, in, kernel]`, `bias` `[out]`, zero `padding` at both ends; the result is
/// `[(time + 2 padding - kernel) / stride + 1, out]`, then `act`.
pub fn conv1d(
    x: &Tensor,
    w: &Weights,
    bias: Option<&Weights>,
    stride: usize,
    padding: usize,
    act: Activation,
) -> Tensor {
    Tensor(backend::conv1d(
        &x.0,
        &w.0,
        bias.map(|b| &b.0),
        stride,
        padding,
        act,
    ))
}

/// Scaled dot-product attention with `heads` heads: `q` is `[batch, tq, width]`, `k` and
/// `v` are `[batch, tk, width]` or `[1, tk, width]` (shared by every sequence, as
/// cross-attention keys are). `causal` hides later key positions from each query
/// (query `i` sees keys up to `tk - tq + i`). The result is `[batch, tq, width]`.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Tensor {
    Tensor(backend::attention(&q.0, &k.0, &v.0, heads, causal))
}

/// Causal self-attention of `q` (`[batch, tq, width]`) over every position in `cache`
/// (append this step's keys and values first).
pub fn attention_cached(q: &Tensor, cache: &KvCache, heads: usize) -> Tensor {
    Tensor(backend::attention_cached(&q.0, &cache.0, heads))
}

/// The softmax-normalised attention weights of the `selected` heads,
/// `[batch, selected.len(), tq, tk]` (for word timings from alignment heads).
pub fn attention_weights(q: &Tensor, k: &Tensor, heads: usize, selected: &[u32]) -> Tensor {
    Tensor(backend::attention_weights(&q.0, &k.0, heads, selected))
}

/// The threads and kernels the host gives this job (for logs and tuning).
pub fn device() -> Device {
    backend::device()
}
