//! Weights read from a plugin's assets, one copy for every job of the same plugin build.
//!
//! A region is keyed by the plugin's sha256, its assets folder, the file, the byte range,
//! the stored type, the shape and the precision asked for, so two jobs (or a job and the
//! next) asking for the same region get the same `Arc`. A loaded plugin pins what its
//! jobs created ([`PluginWeights`]), so the weights stay while the plugin is loaded and
//! are freed when the last loaded version that used them is gone. The total is held to
//! the operator's `shared_model_bytes`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use sandscribe_compute::{FileDtype, Precision, Weights};

/// Why shared weights could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsCacheError {
    /// The plugin asked for something wrong (a path outside its assets, a region past
    /// the end of the file, a partial overlap, a bad shape).
    #[error("{0}")]
    Invalid(String),
    /// Loading would pass the operator's budget for shared model memory.
    #[error(
        "shared model memory would reach {wanted} bytes, more than shared_model_bytes = {budget}"
    )]
    Budget { wanted: u64, budget: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RegionKey {
    plugin: String,
    file: PathBuf,
    offset: u64,
    len: u64,
    dtype: u8,
    shape: Vec<usize>,
    precision: u8,
}

/// One shared copy; its bytes leave the total when the last holder drops it.
struct Entry {
    weights: Arc<Weights>,
    bytes: u64,
    used: Arc<AtomicU64>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Every shared weight of the server, under one budget.
pub struct WeightsCache {
    budget: u64,
    used: Arc<AtomicU64>,
    entries: Mutex<HashMap<RegionKey, Weak<Entry>>>,
}

impl std::fmt::Debug for WeightsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightsCache")
            .field("budget", &self.budget)
            .field("used", &self.used_bytes())
            .finish()
    }
}

impl WeightsCache {
    pub fn new(budget_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            budget: budget_bytes,
            used: Arc::new(AtomicU64::new(0)),
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Bytes of shared weights held now (the `sandscribe_shared_model_bytes` metric).
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// The shared weights of one loaded plugin build with the given assets folder.
    pub fn for_plugin(self: &Arc<Self>, sha256: &str, assets: Option<&Path>) -> Arc<PluginWeights> {
        let assets = assets.and_then(|a| a.canonicalize().ok());
        Arc::new(PluginWeights {
            cache: self.clone(),
            plugin: format!(
                "{sha256}:{}",
                assets
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
            assets,
            pins: Mutex::new(Vec::new()),
        })
    }
}

/// The file regions one job has loaded: (file, offset, length).
#[derive(Debug, Default)]
pub struct JobRegions(Vec<(PathBuf, u64, u64)>);

/// The regions one loaded plugin has asked for, pinned while it is loaded.
pub struct PluginWeights {
    cache: Arc<WeightsCache>,
    plugin: String,
    /// The canonical assets folder (`None`: the plugin has none, so it cannot load any).
    assets: Option<PathBuf>,
    pins: Mutex<Vec<(RegionKey, Arc<Entry>)>>,
}

impl PluginWeights {
    /// Bytes pinned by this plugin (for its usage figures).
    pub fn pinned_bytes(&self) -> u64 {
        lock(&self.pins).iter().map(|(_, e)| e.bytes).sum()
    }

    /// The weights in `path` (relative to the assets folder) at `offset`, shared.
    /// `seen` is the regions the asking job loaded so far: two different regions of one
    /// file may touch but not overlap, as an overlap means the plugin misread its own
    /// file's layout.
    pub fn get(
        &self,
        seen: &mut JobRegions,
        path: &str,
        offset: u64,
        dtype: FileDtype,
        shape: &[usize],
        precision: Precision,
    ) -> Result<Arc<Weights>, WeightsCacheError> {
        let file = self.resolve(path)?;
        let width = match dtype {
            FileDtype::F32 => 4u64,
            FileDtype::F16 | FileDtype::Bf16 => 2,
        };
        let elements = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .filter(|&n| n > 0)
            .ok_or_else(|| invalid(format!("weights shape {shape:?} is empty or too large")))?;
        let len = elements
            .checked_mul(width)
            .ok_or_else(|| invalid(format!("weights shape {shape:?} is too large")))?;
        let file_len = std::fs::metadata(&file)
            .map_err(|e| invalid(format!("cannot read {path}: {e}")))?
            .len();
        let end = offset.checked_add(len).filter(|&end| end <= file_len).ok_or_else(|| {
            invalid(format!(
                "the region {offset}..{} of {path} ({elements} values of {dtype:?}) goes past the end of the file ({file_len} bytes)",
                offset.saturating_add(len)
            ))
        })?;
        let key = RegionKey {
            plugin: self.plugin.clone(),
            file,
            offset,
            len,
            dtype: dtype as u8,
            shape: shape.to_vec(),
            precision: precision as u8,
        };
        if let Some((_, other_offset, other_len)) = seen.0.iter().find(|(file, o, l)| {
            *file == key.file && (*o, *l) != (offset, len) && *o < end && offset < o + l
        }) {
            return Err(invalid(format!(
                "the region {offset}..{end} of {path} overlaps the region {other_offset}..{} this job loaded",
                other_offset + other_len
            )));
        }
        seen.0.push((key.file.clone(), offset, len));
        let mut pins = lock(&self.pins);
        if let Some((_, entry)) = pins.iter().find(|(k, _)| *k == key) {
            return Ok(entry.weights.clone());
        }
        let entry = self.shared_entry(&key, path, dtype, precision)?;
        pins.push((key, entry.clone()));
        Ok(entry.weights.clone())
    }

    /// The server-wide copy of a region, read now if no one holds it.
    fn shared_entry(
        &self,
        key: &RegionKey,
        path: &str,
        dtype: FileDtype,
        precision: Precision,
    ) -> Result<Arc<Entry>, WeightsCacheError> {
        let cache = &self.cache;
        let mut entries = lock(&cache.entries);
        entries.retain(|_, e| e.strong_count() > 0);
        if let Some(entry) = entries.get(key).and_then(Weak::upgrade) {
            return Ok(entry);
        }
        let elements = key.shape.iter().product::<usize>() as u64;
        let estimate = match precision {
            Precision::Float32 => elements * 4,
            Precision::BFloat16 => elements * 2,
            Precision::Int8 => elements,
        };
        let wanted = cache.used_bytes().saturating_add(estimate);
        if wanted > cache.budget {
            return Err(WeightsCacheError::Budget {
                wanted,
                budget: cache.budget,
            });
        }
        let bytes = read_region(&key.file, key.offset, key.len)
            .map_err(|e| invalid(format!("cannot read {path}: {e}")))?;
        let weights = Weights::from_bytes(&bytes, dtype, &key.shape, precision)
            .map_err(|e| invalid(e.to_string()))?;
        let held = weights.bytes();
        cache.used.fetch_add(held, Ordering::SeqCst);
        let entry = Arc::new(Entry {
            weights: Arc::new(weights),
            bytes: held,
            used: cache.used.clone(),
        });
        entries.insert(key.clone(), Arc::downgrade(&entry));
        Ok(entry)
    }

    /// `path` inside the assets folder: relative, no `..`, and still inside after
    /// symlinks are followed.
    fn resolve(&self, path: &str) -> Result<PathBuf, WeightsCacheError> {
        let assets = self
            .assets
            .as_deref()
            .ok_or_else(|| invalid("the plugin has no assets folder to read weights from"))?;
        let relative = Path::new(path);
        if path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(invalid(format!(
                "weights path \"{path}\" must be relative to the assets folder, without \"..\""
            )));
        }
        let file = assets
            .join(relative)
            .canonicalize()
            .map_err(|e| invalid(format!("cannot open {path} in the assets folder: {e}")))?;
        if !file.starts_with(assets) || !file.is_file() {
            return Err(invalid(format!(
                "weights path \"{path}\" is not a file inside the assets folder"
            )));
        }
        Ok(file)
    }
}

fn read_region(file: &Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(file)?;
    f.seek(SeekFrom::Start(offset))?;
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    let mut bytes = vec![0u8; len];
    f.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn invalid(message: impl Into<String>) -> WeightsCacheError {
    WeightsCacheError::Invalid(message.into())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets_with(bytes: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("w.bin"), bytes).expect("write");
        dir
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn two_plugin_loads_of_one_build_share_one_copy() {
        let dir = assets_with(&floats(&[1.0, 2.0, 3.0, 4.0]));
        let cache = WeightsCache::new(1 << 20);
        let a = cache.for_plugin("abc", Some(dir.path()));
        let b = cache.for_plugin("abc", Some(dir.path()));
        let wa = a
            .get(
                &mut JobRegions::default(),
                "w.bin",
                0,
                FileDtype::F32,
                &[2, 2],
                Precision::Float32,
            )
            .expect("a");
        let wb = b
            .get(
                &mut JobRegions::default(),
                "w.bin",
                0,
                FileDtype::F32,
                &[2, 2],
                Precision::Float32,
            )
            .expect("b");
        assert!(Arc::ptr_eq(&wa, &wb));
        assert_eq!(cache.used_bytes(), wa.bytes());
        drop((wa, wb, a));
        assert!(cache.used_bytes() > 0, "b still pins the weights");
        drop(b);
        assert_eq!(
            cache.used_bytes(),
            0,
            "freed with the last plugin that used them"
        );
    }

    #[test]
    fn another_build_gets_its_own_copy() {
        let dir = assets_with(&floats(&[1.0, 2.0]));
        let cache = WeightsCache::new(1 << 20);
        let a = cache.for_plugin("abc", Some(dir.path()));
        let b = cache.for_plugin("def", Some(dir.path()));
        let wa = a
            .get(
                &mut JobRegions::default(),
                "w.bin",
                0,
                FileDtype::F32,
                &[2],
                Precision::Float32,
            )
            .expect("a");
        let wb = b
            .get(
                &mut JobRegions::default(),
                "w.bin",
                0,
                FileDtype::F32,
                &[2],
                Precision::Float32,
            )
            .expect("b");
        assert!(!Arc::ptr_eq(&wa, &wb));
    }

    #[test]
    fn regions_past_the_end_outside_the_folder_or_overlapping_are_refused() {
        let dir = assets_with(&floats(&[0.0; 8]));
        let cache = WeightsCache::new(1 << 20);
        let p = cache.for_plugin("abc", Some(dir.path()));
        let mut seen = JobRegions::default();
        let past = p.get(
            &mut seen,
            "w.bin",
            16,
            FileDtype::F32,
            &[5],
            Precision::Float32,
        );
        assert!(matches!(past, Err(WeightsCacheError::Invalid(m)) if m.contains("past the end")));
        for path in ["../w.bin", "/etc/passwd", ""] {
            let outside = p.get(&mut seen, path, 0, FileDtype::F32, &[1], Precision::Float32);
            assert!(
                matches!(outside, Err(WeightsCacheError::Invalid(_))),
                "{path}"
            );
        }
        p.get(
            &mut seen,
            "w.bin",
            0,
            FileDtype::F32,
            &[4],
            Precision::Float32,
        )
        .expect("first");
        p.get(
            &mut seen,
            "w.bin",
            16,
            FileDtype::F32,
            &[4],
            Precision::Float32,
        )
        .expect("adjacent");
        let overlap = p.get(
            &mut seen,
            "w.bin",
            8,
            FileDtype::F32,
            &[4],
            Precision::Float32,
        );
        assert!(matches!(overlap, Err(WeightsCacheError::Invalid(m)) if m.contains("overlaps")));
        let next_job = p.get(
            &mut JobRegions::default(),
            "w.bin",
            8,
            FileDtype::F32,
            &[4],
            Precision::Float32,
        );
        assert!(
            next_job.is_ok(),
            "another job may read its own layout: {next_job:?}"
        );
        let huge = p.get(
            &mut seen,
            "w.bin",
            0,
            FileDtype::F32,
            &[usize::MAX, 4],
            Precision::Float32,
        );
        assert!(matches!(huge, Err(WeightsCacheError::Invalid(_))));
    }

    #[test]
    fn the_shared_budget_holds() {
        let dir = assets_with(&floats(&[0.0; 64]));
        let cache = WeightsCache::new(128);
        let p = cache.for_plugin("abc", Some(dir.path()));
        let mut seen = JobRegions::default();
        p.get(
            &mut seen,
            "w.bin",
            0,
            FileDtype::F32,
            &[16],
            Precision::Float32,
        )
        .expect("fits");
        let over = p.get(
            &mut seen,
            "w.bin",
            64,
            FileDtype::F32,
            &[48],
            Precision::Float32,
        );
        assert!(matches!(over, Err(WeightsCacheError::Budget { .. })));
    }
}
