//! Where each tensor of a PyTorch checkpoint is in the file, without reading the weights.
//!
//! Resemblyzer's `pretrained.pt` is in torch's legacy format (before torch 1.6, not a
//! zip): five pickles, then the storages one after another. The pickles are a magic
//! number, the protocol version (1001), a dict of the writer's system (endianness), the
//! object (here `{"step", "model_state": OrderedDict}`; each tensor is
//! `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, the storage a persistent id
//! `("storage", FloatStorage, key, device, numel, None)`), and the list of storage keys.
//! Each storage is then a little-endian u64 element count and its raw bytes. The index
//! records each tensor's byte offset in the file, so the host can read the weights itself
//! ([`sandscribe_plugin_sdk::compute::Weights::from_asset`]).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};

use crate::pickle::{PickleError, Value, read_pickle};

/// torch's legacy-format magic number, the first pickle of the file.
const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The only legacy protocol version torch ever wrote.
const PROTOCOL_VERSION: i128 = 1001;

/// One float32 tensor, contiguous in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    pub shape: Vec<usize>,
    /// Byte offset of the first element in the file.
    pub offset: u64,
}

/// Why a checkpoint could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read the checkpoint: {0}")]
    Io(#[from] std::io::Error),
    #[error("the checkpoint's pickle is broken: {0}")]
    Pickle(#[from] PickleError),
    #[error(
        "not a legacy-format PyTorch checkpoint ({0}); a zip-format one (torch >= 1.6) is not supported"
    )]
    NotLegacy(&'static str),
    #[error("tensor `{name}`: {what}")]
    Tensor { name: String, what: String },
}

/// The tensors of a checkpoint's state dict by name.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, TensorEntry>,
}

/// A tensor as the pickle describes it, before its storage is placed in the file.
struct Pending {
    name: String,
    key: String,
    storage_offset: usize,
    shape: Vec<usize>,
}

impl Checkpoint {
    /// Indexes a legacy-format checkpoint: reads the pickles and the storages' headers
    /// and seeks over their data.
    pub fn read(file: &mut (impl Read + Seek)) -> Result<Self, CheckpointError> {
        let mut input = std::io::BufReader::new(file);
        if read_pickle(&mut input).ok().and_then(|v| v.as_int()) != Some(MAGIC) {
            return Err(CheckpointError::NotLegacy("no torch magic number"));
        }
        if read_pickle(&mut input)?.as_int() != Some(PROTOCOL_VERSION) {
            return Err(CheckpointError::NotLegacy("protocol version is not 1001"));
        }
        let system = read_pickle(&mut input)?;
        if system.get("little_endian") != Some(&Value::Bool(true)) {
            return Err(CheckpointError::NotLegacy("not written little-endian"));
        }
        let object = read_pickle(&mut input)?;
        let state = object.get("model_state").unwrap_or(&object);
        let Value::Dict(items) = state else {
            return Err(CheckpointError::NotLegacy("the object is not a state dict"));
        };
        let pending = items
            .iter()
            .map(|(name, value)| {
                let name = name.as_str().unwrap_or("?");
                describe_tensor(value)
                    .map_err(|what| CheckpointError::Tensor {
                        name: name.to_owned(),
                        what,
                    })
                    .map(|(key, storage_offset, shape)| Pending {
                        name: name.to_owned(),
                        key,
                        storage_offset,
                        shape,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys = read_pickle(&mut input)?;
        let keys = keys
            .as_seq()
            .ok_or(CheckpointError::NotLegacy("no list of storage keys"))?;
        // Each storage: (byte offset of its data, element count).
        let mut storages = HashMap::new();
        for key in keys {
            let key = key.as_str().ok_or(CheckpointError::NotLegacy(
                "a storage key that is not a string",
            ))?;
            let mut count = [0u8; 8];
            input.read_exact(&mut count)?;
            let count = u64::from_le_bytes(count);
            let start = input.stream_position()?;
            let bytes = count
                .checked_mul(4)
                .and_then(|b| i64::try_from(b).ok())
                .ok_or(CheckpointError::NotLegacy("a storage larger than the file"))?;
            input.seek_relative(bytes)?;
            storages.insert(key.to_owned(), (start, count));
        }
        let end = input.seek(SeekFrom::End(0))?;
        let mut tensors = BTreeMap::new();
        for p in pending {
            let fail = |what: String| CheckpointError::Tensor {
                name: p.name.clone(),
                what,
            };
            let &(start, count) = storages
                .get(&p.key)
                .ok_or_else(|| fail(format!("its storage {} is not in the file", p.key)))?;
            let numel: usize = p.shape.iter().product();
            let last = (p.storage_offset + numel) as u64;
            if last > count || start + count * 4 > end {
                return Err(fail(format!(
                    "elements {}..{last} are outside its storage of {count} (or the file is cut short)",
                    p.storage_offset
                )));
            }
            let entry = TensorEntry {
                shape: p.shape,
                offset: start + p.storage_offset as u64 * 4,
            };
            tensors.insert(p.name, entry);
        }
        Ok(Self { tensors })
    }

    /// The tensor `name`, which must have `shape`.
    pub fn expect(&self, name: &str, shape: &[usize]) -> Result<&TensorEntry, CheckpointError> {
        let entry = self
            .tensors
            .get(name)
            .ok_or_else(|| CheckpointError::Tensor {
                name: name.to_owned(),
                what: "missing".to_owned(),
            })?;
        if entry.shape != shape {
            return Err(CheckpointError::Tensor {
                name: name.to_owned(),
                what: format!("shape {:?}, expected {shape:?}", entry.shape),
            });
        }
        Ok(entry)
    }
}

/// The storage key, element offset and shape of a `_rebuild_tensor_v2` call on a
/// contiguous float32 storage.
fn describe_tensor(value: &Value) -> Result<(String, usize, Vec<usize>), String> {
    let Value::Call(callable, args) = value else {
        return Err("not a tensor".to_owned());
    };
    if **callable != Value::Global("torch._utils._rebuild_tensor_v2".to_owned()) {
        return Err(format!("built by {callable:?}, not _rebuild_tensor_v2"));
    }
    let args = args.as_seq().ok_or("no arguments")?;
    let [Value::Persistent(id), offset, size, stride, ..] = args else {
        return Err("unexpected arguments".to_owned());
    };
    let id = id.as_seq().ok_or("a storage id that is not a tuple")?;
    let [tag, kind, key, ..] = id else {
        return Err("a storage id too short".to_owned());
    };
    if tag.as_str() != Some("storage") {
        return Err("a persistent id that is not a storage".to_owned());
    }
    if *kind != Value::Global("torch.FloatStorage".to_owned()) {
        return Err(format!("stored as {kind:?}; only float32 is supported"));
    }
    let key = key.as_str().ok_or("a storage key that is not a string")?;
    let ints = |v: &Value| -> Result<Vec<usize>, String> {
        v.as_seq()
            .ok_or("a size or stride that is not a tuple")?
            .iter()
            .map(|d| {
                d.as_int()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| "a negative or huge dimension".to_owned())
            })
            .collect()
    };
    let shape = ints(size)?;
    let stride = ints(stride)?;
    let mut expected = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        expected[i] = expected[i + 1] * shape[i + 1];
    }
    if stride != expected {
        return Err(format!(
            "strides {stride:?} are not row-major for {shape:?}"
        ));
    }
    let offset = offset
        .as_int()
        .and_then(|o| usize::try_from(o).ok())
        .ok_or("a negative storage offset")?;
    Ok((key.to_owned(), offset, shape))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// A pickle string (`BINUNICODE`).
    fn s(text: &str) -> Vec<u8> {
        let mut out = vec![b'X'];
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// A legacy checkpoint of named float32 tensors (all in one storage, as cuDNN's
    /// flattened LSTM weights are), in torch's layout.
    pub(crate) fn legacy_checkpoint(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
        let mut out = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
        out.extend_from_slice(b"\x80\x02M\xe9\x03.");
        out.extend_from_slice(b"\x80\x02}(");
        out.extend(s("little_endian"));
        out.extend_from_slice(b"\x88u.");
        out.extend_from_slice(b"\x80\x02}(");
        out.extend(s("model_state"));
        out.extend_from_slice(b"ccollections\nOrderedDict\n)R(");
        let mut offset = 0usize;
        for (name, shape, _) in tensors {
            out.extend(s(name));
            out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
            out.extend(s("storage"));
            out.extend_from_slice(b"ctorch\nFloatStorage\n");
            out.extend(s("7"));
            out.extend(s("cpu"));
            out.extend_from_slice(b"J\x00\x00\x00\x00Nt"); // numel (unused)
            out.extend_from_slice(b"QJ");
            out.extend_from_slice(&(offset as i32).to_le_bytes());
            out.push(b'(');
            for d in shape {
                out.push(b'J');
                out.extend_from_slice(&(*d as i32).to_le_bytes());
            }
            out.extend_from_slice(b"t(");
            let mut stride = 1usize;
            let mut strides = Vec::new();
            for d in shape.iter().rev() {
                strides.push(stride);
                stride *= d;
            }
            for st in strides.iter().rev() {
                out.push(b'J');
                out.extend_from_slice(&(*st as i32).to_le_bytes());
            }
            out.extend_from_slice(b"t\x89ccollections\nOrderedDict\n)RtR");
            offset += shape.iter().product::<usize>();
        }
        out.extend_from_slice(b"uu.");
        out.extend_from_slice(b"\x80\x02]q\x00");
        out.extend(s("7"));
        out.extend_from_slice(b"a.");
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        for (_, _, data) in tensors {
            for v in data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn indexes_tensors_sharing_one_storage_at_their_byte_offsets() {
        let bytes = legacy_checkpoint(&[
            ("w", vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
            ("b", vec![2], vec![7., 8.]),
        ]);
        let checkpoint = Checkpoint::read(&mut Cursor::new(&bytes)).unwrap();
        let w = checkpoint.expect("w", &[2, 3]).unwrap();
        let b = checkpoint.expect("b", &[2]).unwrap();
        assert_eq!(b.offset - w.offset, 24);
        let at = |offset: u64| {
            let o = offset as usize;
            f32::from_le_bytes(bytes[o..o + 4].try_into().unwrap())
        };
        assert_eq!(at(w.offset), 1.0);
        assert_eq!(at(w.offset + 20), 6.0);
        assert_eq!(at(b.offset + 4), 8.0);
        let wrong = checkpoint.expect("w", &[3, 2]).unwrap_err().to_string();
        assert!(wrong.contains("shape [2, 3], expected [3, 2]"), "{wrong}");
        assert!(checkpoint.expect("nope", &[1]).is_err());
    }

    #[test]
    fn a_cut_file_or_a_zip_is_refused_with_a_reason() {
        let bytes = legacy_checkpoint(&[("w", vec![4], vec![1., 2., 3., 4.])]);
        let cut = &bytes[..bytes.len() - 4];
        let err = Checkpoint::read(&mut Cursor::new(cut)).unwrap_err();
        assert!(matches!(err, CheckpointError::Tensor { .. }), "{err}");
        let zip = b"PK\x03\x04 rest of a zip";
        let err = Checkpoint::read(&mut Cursor::new(&zip[..])).unwrap_err();
        assert!(err.to_string().contains("zip-format"), "{err}");
    }
}
