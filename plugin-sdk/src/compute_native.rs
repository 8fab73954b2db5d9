//! The native backend of [`crate::compute`]: the host's own kernels
//! (`sandscribe-compute`) called in-process, so a plugin's unit tests and benches run
//! the same math, with the same checks, as the component in the server.
//!
//! It stands in for the host: [`Weights::from_asset`] reads regions of files under the
//! folder given to [`configure`] (or [`with_assets_dir`]), shares weights read from the
//! same region by reference counting (as the host shares them between jobs), and a wrong
//! call panics with the message the host's `invalid_compute_call` trap would carry.
//! Calls use [`threads`] threads (a global rayon pool when more than one), are never
//! cancelled and have no memory cap.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock, Weak};

use sandscribe_compute as kernels;

use crate::compute::{Activation, Device, FileDtype, Precision};

/// What [`configure`] set.
struct Settings {
    assets_dir: PathBuf,
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

static SETTINGS: LazyLock<RwLock<Settings>> = LazyLock::new(|| {
    RwLock::new(Settings {
        assets_dir: PathBuf::from("."),
        threads: 1,
        pool: None,
    })
});

thread_local! {
    /// A folder [`with_assets_dir`] set for this thread, before the global one.
    static ASSETS_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Where [`Weights::from_asset`] paths resolve from (default: the current directory) and
/// how many threads each call may use (default 1; more runs calls on a global rayon pool
/// of that size, built here).
pub fn configure(assets_dir: &Path, threads: usize) {
    let threads = threads.max(1);
    let mut settings = SETTINGS.write().unwrap_or_else(PoisonError::into_inner);
    if threads != settings.threads {
        settings.pool = (threads > 1).then(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("compute-{i}"))
                    .build()
                    .expect("the operating system starts the compute threads"),
            )
        });
        settings.threads = threads;
    }
    settings.assets_dir = assets_dir.to_owned();
}

/// Threads each call may use (see [`configure`]).
pub fn threads() -> usize {
    SETTINGS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .threads
}

/// Runs `f` with [`Weights::from_asset`] paths resolving from `dir` on this thread, so
/// code that loads models from different folders can run side by side (tests).
pub fn with_assets_dir<R>(dir: &Path, f: impl FnOnce() -> R) -> R {
    /// Puts the previous folder back, also when `f` panics.
    struct Restore(Option<PathBuf>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ASSETS_DIR.with(|d| *d.borrow_mut() = previous);
        }
    }
    let previous = ASSETS_DIR.with(|d| d.borrow_mut().replace(dir.to_owned()));
    let _restore = Restore(previous);
    f()
}

/// Bytes held by weights read with [`Weights::from_asset`] that are still in use: one
/// copy per region and precision, however many times it was asked for.
pub fn shared_weight_bytes() -> u64 {
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .filter_map(Weak::upgrade)
        .map(|w| w.bytes())
        .sum()
}

#[track_caller]
fn invalid(reason: impl Display) -> ! {
    panic!("invalid_compute_call: {reason}")
}

/// Runs one kernel call with the configured threads.
fn run<R>(call: impl FnOnce(&kernels::Ctx) -> Result<R, kernels::ComputeError>) -> R {
    let (threads, pool) = {
        let settings = SETTINGS.read().unwrap_or_else(PoisonError::into_inner);
        (settings.threads, settings.pool.clone())
    };
    let never_stop = || false;
    let ctx = kernels::Ctx::new(threads, pool.as_deref(), &never_stop, u64::MAX);
    call(&ctx).unwrap_or_else(|e| invalid(e))
}

fn precision(p: Precision) -> kernels::Precision {
    match p {
        Precision::Float32 => kernels::Precision::Float32,
        Precision::BFloat16 => kernels::Precision::BFloat16,
        Precision::Int8 => kernels::Precision::Int8,
    }
}

fn activation(a: Activation) -> kernels::Activation {
    match a {
        Activation::None => kernels::Activation::None,
        Activation::Gelu => kernels::Activation::Gelu,
    }
}

pub struct Tensor(kernels::Tensor);

impl Tensor {
    pub fn new(data: &[f32], shape: &[usize]) -> Self {
        Self(kernels::Tensor::new(data.to_vec(), shape).unwrap_or_else(|e| invalid(e)))
    }

    pub fn shape(&self) -> Vec<usize> {
        self.0.shape().to_vec()
    }

    pub fn read(&self) -> Vec<f32> {
        self.0.data().to_vec()
    }

    pub fn reshape(&self, shape: &[usize]) -> Self {
        Self(run(|ctx| self.0.reshape(ctx, shape)))
    }

    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Self {
        Self(run(|ctx| self.0.narrow(ctx, axis, start, len)))
    }
}

/// Weights read from one region of one file at one precision: what the host shares.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Region {
    path: PathBuf,
    offset: u64,
    dtype: FileDtype,
    shape: Vec<usize>,
    precision: Precision,
}

/// Weights read from files and still alive somewhere, by region.
static SHARED: LazyLock<Mutex<HashMap<Region, Weak<kernels::Weights>>>> =
    LazyLock::new(Default::default);

pub struct Weights(Arc<kernels::Weights>);

impl Weights {
    pub fn from_asset(
        path: &str,
        offset: u64,
        dtype: FileDtype,
        shape: &[usize],
        p: Precision,
    ) -> Self {
        let region = Region {
            path: resolve(path),
            offset,
            dtype,
            shape: shape.to_vec(),
            precision: p,
        };
        let cached = SHARED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&region)
            .and_then(Weak::upgrade);
        if let Some(weights) = cached {
            return Self(weights);
        }
        let bytes = read_region(&region).unwrap_or_else(|reason| invalid(reason));
        let file_dtype = match dtype {
            FileDtype::F32 => kernels::FileDtype::F32,
            FileDtype::F16 => kernels::FileDtype::F16,
            FileDtype::Bf16 => kernels::FileDtype::Bf16,
        };
        let weights = Arc::new(
            kernels::Weights::from_bytes(&bytes, file_dtype, shape, precision(p))
                .unwrap_or_else(|e| invalid(e)),
        );
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        shared.retain(|_, w| w.strong_count() > 0);
        shared.insert(region, Arc::downgrade(&weights));
        Self(weights)
    }

    pub fn from_data(data: &[f32], shape: &[usize], p: Precision) -> Self {
        Self(Arc::new(
            kernels::Weights::from_f32(data.to_vec(), shape, precision(p))
                .unwrap_or_else(|e| invalid(e)),
        ))
    }

    pub fn shape(&self) -> Vec<usize> {
        self.0.shape().to_vec()
    }

    /// Whether both are the same copy in memory (tests of the sharing).
    #[cfg(test)]
    pub(crate) fn is_shared_with(&self, other: &Weights) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// `path` under the assets folder; like the host, refuses paths that leave it.
fn resolve(path: &str) -> PathBuf {
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        invalid(format!(
            "asset path {path:?} must be relative to the assets folder, without `..`"
        ));
    }
    let dir = ASSETS_DIR.with(|d| d.borrow().clone()).unwrap_or_else(|| {
        SETTINGS
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .assets_dir
            .clone()
    });
    dir.join(relative)
}

/// The raw bytes of a region, checked to lie inside the file.
fn read_region(region: &Region) -> Result<Vec<u8>, String> {
    let shown = region.path.display();
    let len = region
        .shape
        .iter()
        .try_fold(region.dtype.width() as u64, |n, &d| n.checked_mul(d as u64))
        .ok_or_else(|| format!("shape {:?} is too large", region.shape))?;
    let mut file = File::open(&region.path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .len();
    let end = region.offset.checked_add(len);
    if end.is_none_or(|end| end > file_len) {
        return Err(format!(
            "the region of {len} bytes at offset {} of {shown} ends past the file's \
             {file_len} bytes",
            region.offset
        ));
    }
    let mut bytes = vec![0; len as usize];
    file.seek(SeekFrom::Start(region.offset))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(bytes)
}

pub struct KvCache(kernels::KvCache);

impl KvCache {
    pub fn new(batch: usize, width: usize, capacity: usize) -> Self {
        Self(run(|ctx| {
            kernels::KvCache::new(ctx, batch, width, capacity)
        }))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn batch(&self) -> usize {
        self.0.batch()
    }

    pub fn append(&mut self, keys: &Tensor, values: &Tensor) {
        run(|ctx| self.0.append(ctx, &keys.0, &values.0));
    }

    pub fn reorder(&mut self, sources: &[u32]) {
        run(|ctx| self.0.reorder(ctx, sources));
    }

    pub fn reset(&mut self, batch: usize) {
        run(|ctx| self.0.reset(ctx, batch));
    }
}

pub fn linear(x: &Tensor, w: &Weights, bias: Option<&Weights>, act: Activation) -> Tensor {
    Tensor(run(|ctx| {
        kernels::linear(ctx, &x.0, &w.0, bias.map(|b| &*b.0), activation(act))
    }))
}

pub fn layer_norm(x: &Tensor, gamma: &Weights, beta: &Weights, eps: f32) -> Tensor {
    Tensor(run(|ctx| {
        kernels::layer_norm(ctx, &x.0, &gamma.0, &beta.0, eps)
    }))
}

pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
    Tensor(run(|ctx| kernels::add(ctx, &a.0, &b.0)))
}

pub fn add_positions(x: &Tensor, w: &Weights, start: usize) -> Tensor {
    Tensor(run(|ctx| kernels::add_positions(ctx, &x.0, &w.0, start)))
}

pub fn embed(table: &Weights, ids: &[u32], batch: usize) -> Tensor {
    Tensor(run(|ctx| kernels::embed(ctx, &table.0, ids, batch)))
}

pub fn conv1d(
    x: &Tensor,
    w: &Weights,
    bias: Option<&Weights>,
    stride: usize,
    padding: usize,
    act: Activation,
) -> Tensor {
    Tensor(run(|ctx| {
        kernels::conv1d(
            ctx,
            &x.0,
            &w.0,
            bias.map(|b| &*b.0),
            stride,
            padding,
            activation(act),
        )
    }))
}

pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Tensor {
    Tensor(run(|ctx| {
        kernels::attention(ctx, &q.0, &k.0, &v.0, heads, causal)
    }))
}

pub fn attention_cached(q: &Tensor, cache: &KvCache, heads: usize) -> Tensor {
    Tensor(run(|ctx| {
        kernels::attention_cached(ctx, &q.0, &cache.0, heads)
    }))
}

pub fn attention_weights(q: &Tensor, k: &Tensor, heads: usize, selected: &[u32]) -> Tensor {
    Tensor(run(|ctx| {
        kernels::attention_weights(ctx, &q.0, &k.0, heads, selected)
    }))
}

pub fn device() -> Device {
    Device {
        threads: threads(),
        kernels: kernels::kernels().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::with_assets_dir;
    use crate::compute::{self, Activation, FileDtype, KvCache, Precision, Tensor, Weights};

    fn weights(data: &[f32], shape: &[usize]) -> Weights {
        Weights::from_data(data, shape, Precision::Float32)
    }

    fn assert_close(got: &[f32], want: &[f32], tolerance: f32) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tolerance, "[{i}] {g} vs {w}");
        }
    }

    /// A folder of its own for one test, with `name` holding `bytes`.
    fn asset(test: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sandscribe-sdk-compute-{}-{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        dir
    }

    #[test]
    fn linear_is_x_times_w_transposed_plus_bias_then_gelu() {
        let x = Tensor::new(&[1.0, 2.0, 3.0, -1.0, 0.0, 1.0], &[1, 2, 3]);
        let w = weights(&[1.0, 0.0, 1.0, 0.5, 0.5, 0.5], &[2, 3]);
        let b = weights(&[0.5, -1.0], &[2]);
        let y = compute::linear(&x, &w, Some(&b), Activation::None);
        assert_eq!(y.shape(), vec![1, 2, 2]);
        assert_close(&y.read(), &[4.5, 2.0, 0.5, -1.0], 1e-6);
        let gelu = compute::linear(&x, &w, Some(&b), Activation::Gelu).read();
        // gelu(x) = x Φ(x): gelu(-1) = -0.158655, gelu(0.5) = 0.345731.
        assert_close(&gelu, &[4.5, 1.954_5, 0.345_731, -0.158_655], 1e-4);
    }

    #[test]
    fn layer_norm_normalises_the_last_axis() {
        let x = Tensor::new(&[1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0], &[2, 4]);
        let gamma = weights(&[1.0, 1.0, 2.0, 2.0], &[4]);
        let beta = weights(&[0.0, 0.0, 0.0, 1.0], &[4]);
        let y = compute::layer_norm(&x, &gamma, &beta, 1e-5).read();
        let s = 1.0 / 1.25f32.sqrt();
        assert_close(
            &y,
            &[-1.5 * s, -0.5 * s, s, 3.0 * s + 1.0, 0.0, 0.0, 0.0, 1.0],
            1e-4,
        );
    }

    #[test]
    fn add_broadcasts_over_leading_axes() {
        let a = Tensor::new(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let same = compute::add(&a, &Tensor::new(&[1.0; 4], &[2, 2])).read();
        assert_eq!(same, vec![2.0, 3.0, 4.0, 5.0]);
        let row = compute::add(&a, &Tensor::new(&[10.0, 20.0], &[2])).read();
        assert_eq!(row, vec![11.0, 22.0, 13.0, 24.0]);
    }

    #[test]
    fn embed_and_add_positions_pick_rows() {
        let table = weights(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], &[3, 2]);
        let x = compute::embed(&table, &[2, 1, 0, 2], 2);
        assert_eq!(x.shape(), vec![2, 2, 2]);
        assert_eq!(x.read(), vec![2.0, 2.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
        let positions = weights(&[0.0, 0.5, 10.0, 10.5, 20.0, 20.5], &[3, 2]);
        let y = compute::add_positions(&x, &positions, 1).read();
        assert_eq!(y, vec![12.0, 12.5, 21.0, 21.5, 10.0, 10.5, 22.0, 22.5]);
    }

    #[test]
    fn conv1d_matches_a_direct_convolution() {
        // x: [time 5, in 2]; w: [out 1, in 2, kernel 3]; stride 2, padding 1.
        let x: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let w = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
        let y = compute::conv1d(
            &Tensor::new(&x, &[5, 2]),
            &weights(&w, &[1, 2, 3]),
            Some(&weights(&[1.0], &[1])),
            2,
            1,
            Activation::None,
        );
        assert_eq!(y.shape(), vec![3, 1]);
        let at = |t: isize, c: usize| {
            if (0..5).contains(&t) {
                x[t as usize * 2 + c]
            } else {
                0.0
            }
        };
        let want: Vec<f32> = (0..3)
            .map(|o| {
                let mut sum = 1.0;
                for c in 0..2 {
                    for k in 0..3 {
                        sum += w[c * 3 + k] * at(o * 2 + k as isize - 1, c);
                    }
                }
                sum
            })
            .collect();
        assert_close(&y.read(), &want, 1e-5);
    }

    #[test]
    fn cached_attention_equals_causal_attention_over_the_same_keys() {
        let (width, heads, t) = (4, 2, 3);
        let values = |seed: f32| -> Vec<f32> {
            (0..t * width)
                .map(|i| ((i as f32 + seed) * 0.37).sin())
                .collect()
        };
        let (q, k, v) = (values(1.0), values(2.0), values(3.0));
        let shape = [1, t, width];
        let whole = compute::attention(
            &Tensor::new(&q, &shape),
            &Tensor::new(&k, &shape),
            &Tensor::new(&v, &shape),
            heads,
            true,
        )
        .read();
        // The same three positions fed one step at a time through a cache.
        let mut cache = KvCache::new(1, width, 8);
        let mut stepped = Vec::new();
        for i in 0..t {
            let row = |d: &[f32]| Tensor::new(&d[i * width..(i + 1) * width], &[1, 1, width]);
            cache.append(&row(&k), &row(&v));
            stepped.extend(compute::attention_cached(&row(&q), &cache, heads).read());
        }
        assert_eq!(cache.len(), t);
        assert_close(&stepped, &whole, 1e-5);
        // The first query sees only the first key: its output is that value.
        assert_close(&whole[..width], &v[..width], 1e-6);
    }

    #[test]
    fn kv_cache_reorder_continues_the_chosen_sequences() {
        let width = 2;
        let mut cache = KvCache::new(2, width, 4);
        let keys = Tensor::new(&[1.0, 1.0, 2.0, 2.0], &[2, 1, width]);
        cache.append(&keys, &keys);
        // Three beams, all continuing sequence 1.
        cache.reorder(&[1, 1, 1]);
        assert_eq!((cache.batch(), cache.len()), (3, 1));
        let q = Tensor::new(&[0.0; 6], &[3, 1, width]);
        let out = compute::attention_cached(&q, &cache, 1).read();
        assert_eq!(out, vec![2.0; 6]);
        cache.reset(1);
        assert!(cache.is_empty());
        assert_eq!(cache.batch(), 1);
    }

    #[test]
    fn weights_from_an_asset_region_are_read_once_and_shared() {
        // Four bytes of header, then [1.0, 2.0, -1.0, 0.5] as f16 and as bf16.
        let f16: [u16; 4] = [0x3C00, 0x4000, 0xBC00, 0x3800];
        let bf16: [u16; 4] = [0x3F80, 0x4000, 0xBF80, 0x3F00];
        let mut bytes = vec![0xAA; 4];
        bytes.extend(f16.iter().chain(&bf16).flat_map(|v| v.to_le_bytes()));
        let dir = asset("shared", "model.bin", &bytes);
        with_assets_dir(&dir, || {
            let load = |offset, dtype, precision| {
                Weights::from_asset("model.bin", offset, dtype, &[2, 2], precision)
            };
            let a = load(4, FileDtype::F16, Precision::Float32);
            let b = load(4, FileDtype::F16, Precision::Float32);
            let c = load(12, FileDtype::Bf16, Precision::Float32);
            let d = load(4, FileDtype::F16, Precision::Int8);
            assert!(a.0.is_shared_with(&b.0), "same region, one copy");
            assert!(!a.0.is_shared_with(&c.0) && !a.0.is_shared_with(&d.0));
            assert!(
                super::shared_weight_bytes() >= 3 * 16,
                "a, c and d are alive"
            );
            // Both regions hold the same numbers: identity rows pick them out.
            let x = Tensor::new(&[1.0, 0.0, 0.0, 1.0], &[2, 2]);
            for w in [&a, &c] {
                let y = compute::linear(&x, w, None, Activation::None).read();
                assert_eq!(y, vec![1.0, -1.0, 2.0, 0.5]);
            }
        });
    }

    #[test]
    #[should_panic(expected = "invalid_compute_call")]
    fn a_region_past_the_end_of_the_file_is_an_invalid_call() {
        let dir = asset("past-end", "model.bin", &[0; 16]);
        with_assets_dir(&dir, || {
            Weights::from_asset("model.bin", 12, FileDtype::F32, &[2], Precision::Float32)
        });
    }

    #[test]
    #[should_panic(expected = "invalid_compute_call")]
    fn an_asset_path_outside_the_assets_folder_is_an_invalid_call() {
        let dir = asset("escape", "model.bin", &[0; 16]);
        with_assets_dir(&dir, || {
            Weights::from_asset(
                "../x/model.bin",
                0,
                FileDtype::F32,
                &[2],
                Precision::Float32,
            )
        });
    }

    #[test]
    #[should_panic(expected = "invalid_compute_call")]
    fn mismatched_shapes_are_an_invalid_call() {
        let x = Tensor::new(&[1.0; 6], &[2, 3]);
        compute::linear(&x, &weights(&[1.0; 4], &[2, 2]), None, Activation::None);
    }

    #[test]
    #[should_panic(expected = "invalid_compute_call")]
    fn a_tensor_whose_data_does_not_fill_its_shape_is_an_invalid_call() {
        Tensor::new(&[1.0; 5], &[2, 3]);
    }

    #[test]
    fn reduced_precisions_stay_close_to_float32() {
        let (n, k) = (8, 64);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let x: Vec<f32> = (0..2 * k).map(|i| (i as f32 * 0.1).cos()).collect();
        let x = Tensor::new(&x, &[2, k]);
        let exact = compute::linear(&x, &weights(&w, &[n, k]), None, Activation::None).read();
        for (precision, tolerance) in [(Precision::BFloat16, 0.05), (Precision::Int8, 0.1)] {
            let reduced = Weights::from_data(&w, &[n, k], precision);
            let y = compute::linear(&x, &reduced, None, Activation::None).read();
            assert_close(&y, &exact, tolerance);
        }
    }

    #[test]
    fn reshape_and_narrow_view_the_same_numbers() {
        let t = Tensor::new(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[1, 3, 2]);
        assert_eq!(t.reshape(&[6]).read(), t.read());
        let last = t.narrow(1, 2, 1);
        assert_eq!((last.shape(), last.read()), (vec![1, 1, 2], vec![4.0, 5.0]));
    }

    #[test]
    fn device_reports_threads_and_kernels() {
        let device = compute::device();
        assert!(device.threads >= 1);
        assert!(!device.kernels.is_empty());
    }
}
