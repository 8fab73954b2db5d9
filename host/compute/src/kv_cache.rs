//! A decoder's self-attention keys and values, preallocated `[slots, capacity, width]`
//! so a step appends in place; beam-search reordering copies only the sequences that
//! change and only their filled positions.

use crate::ctx::{Ctx, f32_bytes, mul, zeroed};
use crate::error::{ComputeError, invalid};
use crate::ops::units;
use crate::tensor::Tensor;

pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    /// Sequences the buffers hold room for (>= batch).
    slots: usize,
    batch: usize,
    len: usize,
    width: usize,
    capacity: usize,
}

impl std::fmt::Debug for KvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCache")
            .field("batch", &self.batch)
            .field("len", &self.len)
            .field("width", &self.width)
            .field("capacity", &self.capacity)
            .field("bytes", &self.bytes())
            .finish()
    }
}

fn buffers(
    ctx: &Ctx,
    slots: usize,
    width: usize,
    capacity: usize,
) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
    let n = mul(mul(slots, capacity, "kv cache")?, width, "kv cache")?;
    ctx.reserve(f32_bytes(n).saturating_mul(2))?;
    ctx.charge(units(&[n, 2]));
    Ok((zeroed(n)?, zeroed(n)?))
}

impl KvCache {
    /// Room for `capacity` positions of `batch` sequences of `width` (heads x head
    /// size) values.
    pub fn new(
        ctx: &Ctx,
        batch: usize,
        width: usize,
        capacity: usize,
    ) -> Result<KvCache, ComputeError> {
        if batch == 0 || width == 0 || capacity == 0 {
            return invalid!(
                "kv cache batch {batch}, width {width}, capacity {capacity}: each must be at least 1"
            );
        }
        let (keys, values) = buffers(ctx, batch, width, capacity)?;
        Ok(KvCache {
            keys,
            values,
            slots: batch,
            batch,
            len: 0,
            width,
            capacity,
        })
    }

    /// Positions held per sequence.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Memory held by both buffers.
    pub fn bytes(&self) -> u64 {
        f32_bytes(self.keys.len()).saturating_add(f32_bytes(self.values.len()))
    }

    /// Distance between sequences in `keys()` / `values()`.
    pub(crate) fn seq_stride(&self) -> usize {
        self.capacity * self.width
    }

    pub(crate) fn keys(&self) -> &[f32] {
        &self.keys
    }

    pub(crate) fn values(&self) -> &[f32] {
        &self.values
    }

    /// Appends `keys` and `values`, both `[batch, t, width]`.
    pub fn append(
        &mut self,
        ctx: &Ctx,
        keys: &Tensor,
        values: &Tensor,
    ) -> Result<(), ComputeError> {
        let (ks, vs) = (keys.shape(), values.shape());
        let t = match *ks {
            [b, t, w] if b == self.batch && w == self.width && ks == vs => t,
            _ => {
                return invalid!(
                    "kv cache append of keys {ks:?} and values {vs:?}: both must be [{}, t, {}]",
                    self.batch,
                    self.width
                );
            }
        };
        if t > self.capacity - self.len {
            return invalid!(
                "kv cache append of {t} positions to {} of capacity {}",
                self.len,
                self.capacity
            );
        }
        ctx.charge(units(&[keys.len(), 2]));
        let (w, stride, row) = (self.width, self.seq_stride(), t * self.width);
        for b in 0..self.batch {
            let at = b * stride + self.len * w;
            self.keys[at..at + row].copy_from_slice(&keys.data()[b * row..(b + 1) * row]);
            self.values[at..at + row].copy_from_slice(&values.data()[b * row..(b + 1) * row]);
        }
        self.len += t;
        Ok(())
    }

    /// Sequence `i` continues former sequence `sources[i]`; the batch becomes
    /// `sources.len()`.
    pub fn reorder(&mut self, ctx: &Ctx, sources: &[u32]) -> Result<(), ComputeError> {
        let batch = self.batch;
        if sources.is_empty() {
            return invalid!("kv cache reorder needs at least one source");
        }
        if let Some(&s) = sources.iter().find(|&&s| s as usize >= batch) {
            return invalid!("kv cache reorder source {s} is outside the batch of {batch}");
        }
        let filled = self.len * self.width;
        let stride = self.seq_stride();
        let new_batch = sources.len();
        if new_batch > self.slots {
            // More sequences than room: build new buffers from the sources.
            let (mut keys, mut values) = buffers(ctx, new_batch, self.width, self.capacity)?;
            ctx.charge(units(&[new_batch, filled, 2]));
            for (i, &s) in sources.iter().enumerate() {
                let (from, to) = (s as usize * stride, i * stride);
                keys[to..to + filled].copy_from_slice(&self.keys[from..from + filled]);
                values[to..to + filled].copy_from_slice(&self.values[from..from + filled]);
            }
            (self.keys, self.values, self.slots) = (keys, values, new_batch);
        } else {
            // In place: first save the sources that a move would overwrite.
            let moved = |i: usize| sources[i] as usize != i;
            let overwritten = |s: usize| s < new_batch && moved(s);
            let mut saved: Vec<usize> = sources
                .iter()
                .enumerate()
                .filter(|&(i, &s)| moved(i) && overwritten(s as usize))
                .map(|(_, &s)| s as usize)
                .collect();
            saved.sort_unstable();
            saved.dedup();
            let scratch = mul(saved.len(), filled, "kv cache reorder")?;
            ctx.reserve(f32_bytes(scratch).saturating_mul(2))?;
            ctx.charge(units(&[new_batch, filled, 2]));
            let mut keep_k = zeroed(scratch)?;
            let mut keep_v = zeroed(scratch)?;
            for (n, &s) in saved.iter().enumerate() {
                keep_k[n * filled..(n + 1) * filled]
                    .copy_from_slice(&self.keys[s * stride..s * stride + filled]);
                keep_v[n * filled..(n + 1) * filled]
                    .copy_from_slice(&self.values[s * stride..s * stride + filled]);
            }
            for (i, &s) in sources.iter().enumerate() {
                if !moved(i) {
                    continue;
                }
                let s = s as usize;
                let to = i * stride;
                if let Ok(n) = saved.binary_search(&s) {
                    self.keys[to..to + filled]
                        .copy_from_slice(&keep_k[n * filled..(n + 1) * filled]);
                    self.values[to..to + filled]
                        .copy_from_slice(&keep_v[n * filled..(n + 1) * filled]);
                } else {
                    self.keys.copy_within(s * stride..s * stride + filled, to);
                    self.values.copy_within(s * stride..s * stride + filled, to);
                }
            }
        }
        self.batch = new_batch;
        Ok(())
    }

    /// Forgets every position; the batch becomes `batch`.
    pub fn reset(&mut self, ctx: &Ctx, batch: usize) -> Result<(), ComputeError> {
        if batch == 0 {
            return invalid!("kv cache reset to a batch of 0");
        }
        if batch > self.slots {
            let (keys, values) = buffers(ctx, batch, self.width, self.capacity)?;
            (self.keys, self.values, self.slots) = (keys, values, batch);
        }
        ctx.charge(1);
        self.batch = batch;
        self.len = 0;
        Ok(())
    }
}
