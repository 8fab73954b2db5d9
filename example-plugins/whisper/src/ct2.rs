//! Reading a CTranslate2 `model.bin` straight into candle tensors.
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
//! dtype codes: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16. Float weights become f32
//! tensors; small integer scalars (head counts, flags) are kept as integers.
//!
//! CTranslate2 fuses some projections; [`Weights::split_fused_attention`] cuts them back
//! into the separate query/key/value matrices the model code uses.

use std::collections::HashMap;
use std::io::Read;

use candle_core::{Device, Tensor};

/// Why a `model.bin` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("cannot read the model file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the model file is not a CTranslate2 model this plugin understands: {0}")]
    Format(String),
    #[error("the model has no variable `{0}` (is it a Whisper model?)")]
    Missing(String),
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// The variables of one CTranslate2 model, by name.
pub struct Weights {
    /// The spec name, e.g. "WhisperSpec".
    pub spec: String,
    tensors: HashMap<String, Tensor>,
    integers: HashMap<String, i64>,
}

impl Weights {
    /// Reads a whole model from `reader` (normally a buffered `model.bin`).
    pub fn read(reader: impl Read) -> Result<Self, Ct2Error> {
        let mut r = Reader { inner: reader };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(Ct2Error::Format(format!(
                "binary version {version} (expected 5 or 6)"
            )));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let count = r.u32()?;
        let mut tensors = HashMap::new();
        let mut integers = HashMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()?;
            let dims = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let dtype = r.u8()?;
            let byte_count = r.u32()? as usize;
            let elements: usize = dims.iter().product();
            let width = dtype_width(dtype)
                .ok_or_else(|| Ct2Error::Format(format!("`{name}` has unknown dtype {dtype}")))?;
            if elements * width != byte_count {
                return Err(Ct2Error::Format(format!(
                    "`{name}`: {byte_count} bytes for shape {dims:?} of dtype {dtype}"
                )));
            }
            let bytes = r.bytes(byte_count)?;
            match dtype {
                0 | 4 | 5 => {
                    let values = floats(dtype, &bytes);
                    tensors.insert(name, Tensor::from_vec(values, dims, &Device::Cpu)?);
                }
                _ if elements == 1 => {
                    integers.insert(name, integer(dtype, &bytes));
                }
                _ => {
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
            if let Some(t) = tensors.get(&target).cloned() {
                tensors.insert(alias, t);
            } else if let Some(v) = integers.get(&target).copied() {
                integers.insert(alias, v);
            }
        }
        Ok(Self {
            spec,
            tensors,
            integers,
        })
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Result<Tensor, Ct2Error> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| Ct2Error::Missing(name.to_owned()))
    }

    /// Whether a tensor called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The integer scalar called `name` (e.g. `encoder/num_heads`).
    pub fn integer(&self, name: &str) -> Option<i64> {
        self.integers.get(name).copied()
    }

    /// Splits the fused attention projections CTranslate2 stores:
    /// `…/self_attention/linear_0` (query, key, value stacked on the output dimension)
    /// becomes `…/self_attention/{query,key,value}`, and the cross-attention
    /// `…/attention/linear_1` (key, value) becomes `…/attention/{key,value}`. The
    /// originals are removed so their memory is freed.
    pub fn split_fused_attention(&mut self) -> Result<(), Ct2Error> {
        let fused: Vec<String> = self
            .tensors
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
            let Some(tensor) = self.tensors.remove(&name) else {
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
            let rows = tensor.dim(0)?;
            if rows % parts.len() != 0 {
                return Err(Ct2Error::Format(format!(
                    "`{name}` has {rows} rows, not divisible into {} parts",
                    parts.len()
                )));
            }
            let step = rows / parts.len();
            for (i, part) in parts.iter().enumerate() {
                let piece = tensor.narrow(0, i * step, step)?.contiguous()?;
                self.tensors.insert(format!("{prefix}/{part}"), piece);
            }
        }
        Ok(())
    }

    /// Number of `prefix/layer_N` blocks (N counted from 0 without gaps).
    pub fn layer_count(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| {
                let p = format!("{prefix}/layer_{i}/");
                self.tensors.keys().any(|k| k.starts_with(&p))
            })
            .count()
    }
}

fn dtype_width(dtype: u8) -> Option<usize> {
    match dtype {
        0 | 3 => Some(4),
        1 => Some(1),
        2 | 4 | 5 => Some(2),
        _ => None,
    }
}

fn floats(dtype: u8, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        0 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        4 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    }
}

fn integer(dtype: u8, bytes: &[u8]) -> i64 {
    match dtype {
        1 => i64::from(bytes[0] as i8),
        2 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
        _ => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
    }
}

struct Reader<R> {
    inner: R,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Ct2Error> {
        let mut buf = vec![0; n];
        self.inner.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ct2Error::Format("the file ends early (truncated download?)".into())
            } else {
                Ct2Error::Io(e)
            }
        })?;
        Ok(buf)
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

    fn f16_bytes(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect()
    }

    #[test]
    fn reads_fp16_tensors_integer_scalars_and_aliases() {
        let bytes = file(
            &[
                ("decoder/num_heads", &[], 2, 6i16.to_le_bytes().to_vec()),
                (
                    "decoder/embeddings/weight",
                    &[2, 2],
                    4,
                    f16_bytes(&[1.0, 2.0, 3.0, 4.0]),
                ),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        );
        let w = Weights::read(bytes.as_slice()).unwrap();
        assert_eq!(w.spec, "WhisperSpec");
        assert_eq!(w.integer("decoder/num_heads"), Some(6));
        let t = w.get("decoder/projection/weight").unwrap();
        assert_eq!(
            t.to_vec2::<f32>().unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
    }

    #[test]
    fn splits_fused_self_and_cross_attention() {
        let qkv: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let kv: Vec<f32> = (0..4).map(|v| v as f32).collect();
        let bytes = file(
            &[
                (
                    "encoder/layer_0/self_attention/linear_0/weight",
                    &[3, 2],
                    4,
                    f16_bytes(&qkv),
                ),
                (
                    "decoder/layer_0/attention/linear_1/weight",
                    &[2, 2],
                    4,
                    f16_bytes(&kv),
                ),
            ],
            &[],
        );
        let mut w = Weights::read(bytes.as_slice()).unwrap();
        w.split_fused_attention().unwrap();
        let v = w
            .get("encoder/layer_0/self_attention/value/weight")
            .unwrap();
        assert_eq!(v.to_vec2::<f32>().unwrap(), vec![vec![4.0, 5.0]]);
        let k = w.get("decoder/layer_0/attention/key/weight").unwrap();
        assert_eq!(k.to_vec2::<f32>().unwrap(), vec![vec![0.0, 1.0]]);
        assert!(!w.contains("decoder/layer_0/attention/linear_1/weight"));
        assert_eq!(w.layer_count("encoder"), 1);
    }

    #[test]
    fn truncated_file_is_a_format_error() {
        let bytes = file(&[("x", &[4], 4, f16_bytes(&[1.0; 4]))], &[]);
        let err = Weights::read(&bytes[..bytes.len() - 6]).err().unwrap();
        assert!(matches!(err, Ct2Error::Format(_)), "{err}");
    }
}
