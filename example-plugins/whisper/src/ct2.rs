//! Where the weights are in a CTranslate2 `model.bin`, without reading them.
//!
//! The file is a flat list of named variables (version 6 layout, verified byte by byte
//! against the Whisper conversions this plugin ships with):
//!
//! ```text
//! u32 version (6) | string spec name ("WhisperSpec") | u32 spec revision | u32 count
//! count × { string name | u8 rank | rank × u32 dim | u8 dtype | u32 byte count | bytes }
//! u32 alias count | alias count × { string alias | string target }
//! ```
//!
//! A string is a little-endian u16 length followed by that many bytes, the last one NUL.
//! dtype codes: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16.
//!
//! [`Index::read`] reads the names, shapes and types and seeks past every float
//! variable's data, keeping only where it is ([`Region`]): the host reads the weights
//! itself (`compute::Weights::from_asset`), so they never pass through plugin memory.
//! Small integer scalars (head counts, flags) are read as values.
//!
//! CTranslate2 fuses some projections; [`Index::split_fused_attention`] cuts their
//! regions back into the separate query/key/value matrices the model uses. Rows are
//! contiguous, so each part is a region of its own.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// Why a `model.bin` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("cannot read the model file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the model file is not a CTranslate2 model this plugin understands: {0}")]
    Format(String),
    #[error("the model has no variable `{0}` (is it a Whisper model?)")]
    Missing(String),
}

/// How the numbers of a float variable are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    /// Bytes per element.
    pub fn width(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }
}

/// The place of one float variable in the file: `shape` elements of `dtype` from byte
/// `offset`, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl Region {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn byte_len(&self) -> u64 {
        (self.elements() * self.dtype.width()) as u64
    }

    /// Rows `start..start + len` along the first axis (rows are contiguous).
    pub fn rows(&self, start: usize, len: usize) -> Region {
        let row_elements: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = len;
        Region {
            offset: self.offset + (start * row_elements * self.dtype.width()) as u64,
            dtype: self.dtype,
            shape,
        }
    }
}

/// The variables of one CTranslate2 model, by name.
pub struct Index {
    /// The spec name, e.g. "WhisperSpec".
    pub spec: String,
    regions: HashMap<String, Region>,
    integers: HashMap<String, i64>,
}

impl Index {
    /// Reads the variable list of a model from `reader` (normally a buffered
    /// `model.bin`), seeking past the data.
    pub fn read(reader: impl Read + Seek) -> Result<Self, Ct2Error> {
        let mut r = Reader {
            inner: reader,
            pos: 0,
        };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(Ct2Error::Format(format!(
                "binary version {version} (expected 5 or 6)"
            )));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let count = r.u32()?;
        let mut regions = HashMap::new();
        let mut integers = HashMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()?;
            let shape = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = r.u8()?;
            let byte_count = u64::from(r.u32()?);
            let elements = shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
                .ok_or_else(|| Ct2Error::Format(format!("`{name}` has a huge shape")))?;
            let width = dtype_width(code)
                .ok_or_else(|| Ct2Error::Format(format!("`{name}` has unknown dtype {code}")))?;
            if elements.checked_mul(width) != Some(byte_count) {
                return Err(Ct2Error::Format(format!(
                    "`{name}`: {byte_count} bytes for shape {shape:?} of dtype {code}"
                )));
            }
            let dtype = match code {
                0 => Some(Dtype::F32),
                4 => Some(Dtype::F16),
                5 => Some(Dtype::Bf16),
                _ => None,
            };
            match dtype {
                Some(dtype) => {
                    let offset = r.pos;
                    r.skip(byte_count)?;
                    regions.insert(
                        name,
                        Region {
                            offset,
                            dtype,
                            shape,
                        },
                    );
                }
                None if elements == 1 => {
                    let bytes = r.bytes(byte_count as usize)?;
                    integers.insert(name, integer(code, &bytes));
                }
                None => {
                    // Quantised (int8) weights would need their scales; not supported.
                    return Err(Ct2Error::Format(format!(
                        "`{name}` is an integer tensor (quantised models are not supported)"
                    )));
                }
            }
        }
        let aliases = r.u32()?;
        for _ in 0..aliases {
            let alias = r.string()?;
            let target = r.string()?;
            if let Some(region) = regions.get(&target).cloned() {
                regions.insert(alias, region);
            } else if let Some(v) = integers.get(&target).copied() {
                integers.insert(alias, v);
            }
        }
        // Seeking past the end succeeds silently: check the data is all there.
        let len = r.inner.seek(SeekFrom::End(0))?;
        if regions.values().any(|v| v.offset + v.byte_len() > len) {
            return Err(Ct2Error::Format(
                "the file ends early (truncated download?)".into(),
            ));
        }
        Ok(Self {
            spec,
            regions,
            integers,
        })
    }

    /// Where the float variable called `name` is.
    pub fn get(&self, name: &str) -> Result<&Region, Ct2Error> {
        self.regions
            .get(name)
            .ok_or_else(|| Ct2Error::Missing(name.to_owned()))
    }

    /// Whether a float variable called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.regions.contains_key(name)
    }

    /// The integer scalar called `name` (e.g. `encoder/num_heads`).
    pub fn integer(&self, name: &str) -> Option<i64> {
        self.integers.get(name).copied()
    }

    /// Splits the fused attention projections CTranslate2 stores:
    /// `…/self_attention/linear_0` (query, key, value stacked on the output dimension)
    /// becomes `…/self_attention/{query,key,value}`, and the cross-attention
    /// `…/attention/linear_1` (key, value) becomes `…/attention/{key,value}`.
    pub fn split_fused_attention(&mut self) -> Result<(), Ct2Error> {
        let fused: Vec<String> = self
            .regions
            .keys()
            .filter(|n| {
                n.ends_with("/self_attention/linear_0/weight")
                    || n.ends_with("/self_attention/linear_0/bias")
                    || (n.starts_with("decoder/")
                        && (n.ends_with("/attention/linear_1/weight")
                            || n.ends_with("/attention/linear_1/bias")))
            })
            .cloned()
            .collect();
        for name in fused {
            let Some(region) = self.regions.remove(&name) else {
                continue;
            };
            let (prefix, parts): (&str, &[&str]) =
                if let Some(p) = name.strip_suffix("/linear_0/weight") {
                    (p, &["query/weight", "key/weight", "value/weight"])
                } else if let Some(p) = name.strip_suffix("/linear_0/bias") {
                    (p, &["query/bias", "key/bias", "value/bias"])
                } else if let Some(p) = name.strip_suffix("/linear_1/weight") {
                    (p, &["key/weight", "value/weight"])
                } else if let Some(p) = name.strip_suffix("/linear_1/bias") {
                    (p, &["key/bias", "value/bias"])
                } else {
                    unreachable!("filtered above")
                };
            let rows = region.shape.first().copied().unwrap_or(0);
            if rows == 0 || rows % parts.len() != 0 {
                return Err(Ct2Error::Format(format!(
                    "`{name}` has {rows} rows, not divisible into {} parts",
                    parts.len()
                )));
            }
            let step = rows / parts.len();
            for (i, part) in parts.iter().enumerate() {
                self.regions
                    .insert(format!("{prefix}/{part}"), region.rows(i * step, step));
            }
        }
        Ok(())
    }

    /// Number of `prefix/layer_N` blocks (N counted from 0 without gaps).
    pub fn layer_count(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| {
                let p = format!("{prefix}/layer_{i}/");
                self.regions.keys().any(|k| k.starts_with(&p))
            })
            .count()
    }
}

fn dtype_width(code: u8) -> Option<u64> {
    match code {
        0 | 3 => Some(4),
        1 => Some(1),
        2 | 4 | 5 => Some(2),
        _ => None,
    }
}

fn integer(code: u8, bytes: &[u8]) -> i64 {
    match code {
        1 => i64::from(bytes[0] as i8),
        2 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
        _ => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
    }
}

/// Reads the header fields and counts the bytes consumed, so each variable knows its
/// offset without asking the file.
struct Reader<R> {
    inner: R,
    pos: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Ct2Error> {
        let mut buf = vec![0; n];
        self.inner.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ct2Error::Format("the file ends early (truncated download?)".into())
            } else {
                Ct2Error::Io(e)
            }
        })?;
        self.pos += n as u64;
        Ok(buf)
    }

    fn skip(&mut self, n: u64) -> Result<(), Ct2Error> {
        let n = i64::try_from(n).map_err(|_| Ct2Error::Format("a huge variable".into()))?;
        self.inner.seek(SeekFrom::Current(n))?;
        self.pos += n as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Ct2Error> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Ct2Error> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Ct2Error> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, Ct2Error> {
        let len = self.u16()? as usize;
        let mut b = self.bytes(len)?;
        if b.last() == Some(&0) {
            b.pop();
        }
        String::from_utf8(b).map_err(|_| Ct2Error::Format("a name is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Builds a tiny model file in the documented layout.
    fn file(vars: &[(&str, &[u32], u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in vars {
            string(&mut out, name);
            out.push(dims.len() as u8);
            for d in *dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
        out
    }

    /// f32 little-endian bytes (the layout is the same for every float width).
    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The f32 values a region points at in `bytes`.
    fn values(bytes: &[u8], region: &Region) -> Vec<f32> {
        assert_eq!(region.dtype, Dtype::F32);
        let start = region.offset as usize;
        bytes[start..start + region.byte_len() as usize]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn finds_float_regions_integer_scalars_and_aliases() {
        let bytes = file(
            &[
                ("decoder/num_heads", &[], 2, 6i16.to_le_bytes().to_vec()),
                (
                    "decoder/embeddings/weight",
                    &[2, 2],
                    0,
                    f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
                ),
                ("encoder/scale", &[3], 4, vec![0; 6]),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        );
        let index = Index::read(Cursor::new(&bytes)).unwrap();
        assert_eq!(index.spec, "WhisperSpec");
        assert_eq!(index.integer("decoder/num_heads"), Some(6));
        let projection = index.get("decoder/projection/weight").unwrap();
        assert_eq!(projection.shape, vec![2, 2]);
        assert_eq!(values(&bytes, projection), vec![1.0, 2.0, 3.0, 4.0]);
        let scale = index.get("encoder/scale").unwrap();
        assert_eq!((scale.dtype, scale.byte_len()), (Dtype::F16, 6));
    }

    #[test]
    fn splits_fused_self_and_cross_attention_by_offset() {
        let qkv: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let kv: Vec<f32> = (10..14).map(|v| v as f32).collect();
        let bytes = file(
            &[
                (
                    "encoder/layer_0/self_attention/linear_0/weight",
                    &[3, 2],
                    0,
                    f32_bytes(&qkv),
                ),
                (
                    "decoder/layer_0/attention/linear_1/weight",
                    &[2, 2],
                    0,
                    f32_bytes(&kv),
                ),
                (
                    "decoder/layer_0/attention/linear_1/bias",
                    &[2],
                    0,
                    f32_bytes(&[7.0, 8.0]),
                ),
            ],
            &[],
        );
        let mut index = Index::read(Cursor::new(&bytes)).unwrap();
        index.split_fused_attention().unwrap();
        let v = index
            .get("encoder/layer_0/self_attention/value/weight")
            .unwrap();
        assert_eq!(v.shape, vec![1, 2]);
        assert_eq!(values(&bytes, v), vec![4.0, 5.0]);
        let k = index.get("decoder/layer_0/attention/key/weight").unwrap();
        assert_eq!(values(&bytes, k), vec![10.0, 11.0]);
        let vb = index.get("decoder/layer_0/attention/value/bias").unwrap();
        assert_eq!(values(&bytes, vb), vec![8.0]);
        assert!(!index.contains("decoder/layer_0/attention/linear_1/weight"));
        assert_eq!(index.layer_count("encoder"), 1);
    }

    #[test]
    fn truncated_file_is_a_format_error() {
        let bytes = file(&[("x", &[4], 4, vec![0; 8])], &[]);
        for cut in [6, 9] {
            let err = Index::read(Cursor::new(&bytes[..bytes.len() - cut]))
                .err()
                .unwrap();
            assert!(matches!(err, Ct2Error::Format(_)), "{err}");
        }
    }
}
