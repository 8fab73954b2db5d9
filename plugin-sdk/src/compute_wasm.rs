//! The component backend of [`crate::compute`]: each call is the host's `compute`
//! import. The host checks every call and traps the job on a wrong one, so nothing here
//! can fail.
//!
//! `usize` is 32 bits on `wasm32`, so sizes convert to the interface's `u32` exactly.

use crate::bindings::sandscribe::plugin::compute as wit;
use crate::compute::{Activation, Device, FileDtype, Precision};

fn dims(shape: &[usize]) -> Vec<u32> {
    shape.iter().map(|&d| d as u32).collect()
}

fn sizes(shape: Vec<u32>) -> Vec<usize> {
    shape.into_iter().map(|d| d as usize).collect()
}

fn precision(p: Precision) -> wit::Precision {
    match p {
        Precision::Float32 => wit::Precision::Float32,
        Precision::BFloat16 => wit::Precision::Bfloat16,
        Precision::Int8 => wit::Precision::Int8,
    }
}

fn activation(a: Activation) -> wit::Activation {
    match a {
        Activation::None => wit::Activation::None,
        Activation::Gelu => wit::Activation::Gelu,
    }
}

pub struct Tensor(wit::Tensor);

impl Tensor {
    pub fn new(data: &[f32], shape: &[usize]) -> Self {
        Self(wit::Tensor::new(data, &dims(shape)))
    }

    pub fn shape(&self) -> Vec<usize> {
        sizes(self.0.shape())
    }

    pub fn read(&self) -> Vec<f32> {
        self.0.read()
    }

    pub fn reshape(&self, shape: &[usize]) -> Self {
        Self(self.0.reshape(&dims(shape)))
    }

    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Self {
        Self(self.0.narrow(axis as u32, start as u32, len as u32))
    }
}

pub struct Weights(wit::Weights);

impl Weights {
    pub fn from_asset(
        path: &str,
        offset: u64,
        dtype: FileDtype,
        shape: &[usize],
        p: Precision,
    ) -> Self {
        let dtype = match dtype {
            FileDtype::F32 => wit::FileDtype::Float32,
            FileDtype::F16 => wit::FileDtype::Float16,
            FileDtype::Bf16 => wit::FileDtype::Bfloat16,
        };
        Self(wit::Weights::from_asset(
            path,
            offset,
            dtype,
            &dims(shape),
            precision(p),
        ))
    }

    pub fn from_data(data: &[f32], shape: &[usize], p: Precision) -> Self {
        Self(wit::Weights::from_data(data, &dims(shape), precision(p)))
    }

    pub fn shape(&self) -> Vec<usize> {
        sizes(self.0.shape())
    }
}

pub struct KvCache(wit::KvCache);

impl KvCache {
    pub fn new(batch: usize, width: usize, capacity: usize) -> Self {
        Self(wit::KvCache::new(
            batch as u32,
            width as u32,
            capacity as u32,
        ))
    }

    pub fn len(&self) -> usize {
        self.0.len() as usize
    }

    pub fn batch(&self) -> usize {
        self.0.batch() as usize
    }

    pub fn append(&mut self, keys: &Tensor, values: &Tensor) {
        self.0.append(&keys.0, &values.0);
    }

    pub fn reorder(&mut self, sources: &[u32]) {
        self.0.reorder(sources);
    }

    pub fn reset(&mut self, batch: usize) {
        self.0.reset(batch as u32);
    }
}

pub fn linear(x: &Tensor, w: &Weights, bias: Option<&Weights>, act: Activation) -> Tensor {
    Tensor(wit::linear(&x.0, &w.0, bias.map(|b| &b.0), activation(act)))
}

pub fn layer_norm(x: &Tensor, gamma: &Weights, beta: &Weights, eps: f32) -> Tensor {
    Tensor(wit::layer_norm(&x.0, &gamma.0, &beta.0, eps))
}

pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
    Tensor(wit::add(&a.0, &b.0))
}

pub fn add_positions(x: &Tensor, w: &Weights, start: usize) -> Tensor {
    Tensor(wit::add_positions(&x.0, &w.0, start as u32))
}

pub fn embed(table: &Weights, ids: &[u32], batch: usize) -> Tensor {
    Tensor(wit::embed(&table.0, ids, batch as u32))
}

pub fn conv1d(
    x: &Tensor,
    w: &Weights,
    bias: Option<&Weights>,
    stride: usize,
    padding: usize,
    act: Activation,
) -> Tensor {
    Tensor(wit::conv1d(
        &x.0,
        &w.0,
        bias.map(|b| &b.0),
        stride as u32,
        padding as u32,
        activation(act),
    ))
}

pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Tensor {
    Tensor(wit::attention(&q.0, &k.0, &v.0, heads as u32, causal))
}

pub fn attention_cached(q: &Tensor, cache: &KvCache, heads: usize) -> Tensor {
    Tensor(wit::attention_cached(&q.0, &cache.0, heads as u32))
}

pub fn attention_weights(q: &Tensor, k: &Tensor, heads: usize, selected: &[u32]) -> Tensor {
    Tensor(wit::attention_weights(&q.0, &k.0, heads as u32, selected))
}

pub fn device() -> Device {
    let d = wit::device_info();
    Device {
        threads: d.threads as usize,
        kernels: d.kernels,
    }
}
