//! `sandscribe:plugin/compute` onto the host's compute calls
//! ([`crate::runtime::compute`]): enum conversions, and fuel charged for each call's work.
//!
//! The interface is the same in every version that has it (0.2.0, 0.3.0), but each
//! version's bindings are distinct Rust types, so each version module includes this file
//! as its own `compute` module (`#[path]`): `super::generated` is that version's bindings.

use wasmtime::component::{Access, HasSelf, Resource};
use wasmtime::{AsContextMut, Trap};

use super::generated::sandscribe::plugin::compute::{
    self as wit, Activation, Device, FileDtype, Precision,
};
use crate::runtime::compute::calls::Done;
use crate::runtime::compute::{CacheHandle, FUEL_PER_WORK, TensorHandle, WeightsHandle};
use crate::runtime::store::JobContext;

type Host<'a> = Access<'a, JobContext, HasSelf<JobContext>>;

/// Hands back a call's value after charging a metered store fuel for its work (a store
/// without fuel pays nothing). Work depends on shapes only, so the charge is the same on
/// every run.
fn charged<T>(mut host: Host<'_>, done: wasmtime::Result<Done<T>>) -> wasmtime::Result<T> {
    let Done { value, work } = done?;
    let cost = work / FUEL_PER_WORK;
    let mut store = host.as_context_mut();
    if cost > 0
        && let Ok(fuel) = store.get_fuel()
    {
        if cost > fuel {
            store.set_fuel(0)?;
            return Err(Trap::OutOfFuel.into());
        }
        store.set_fuel(fuel - cost)?;
    }
    Ok(value)
}

fn dtype(d: FileDtype) -> sandscribe_compute::FileDtype {
    match d {
        FileDtype::Float32 => sandscribe_compute::FileDtype::F32,
        FileDtype::Float16 => sandscribe_compute::FileDtype::F16,
        FileDtype::Bfloat16 => sandscribe_compute::FileDtype::Bf16,
    }
}

fn precision(p: Precision) -> sandscribe_compute::Precision {
    match p {
        Precision::Float32 => sandscribe_compute::Precision::Float32,
        Precision::Bfloat16 => sandscribe_compute::Precision::BFloat16,
        Precision::Int8 => sandscribe_compute::Precision::Int8,
    }
}

fn activation(a: Activation) -> sandscribe_compute::Activation {
    match a {
        Activation::None => sandscribe_compute::Activation::None,
        Activation::Gelu => sandscribe_compute::Activation::Gelu,
    }
}

impl wit::Host for JobContext {}
impl wit::HostWeights for JobContext {}
impl wit::HostTensor for JobContext {}
impl wit::HostKvCache for JobContext {}

impl wit::HostWeightsWithStore<JobContext> for HasSelf<JobContext> {
    fn drop(mut host: Host<'_>, rep: Resource<WeightsHandle>) -> wasmtime::Result<()> {
        host.get().weights_drop(rep)
    }

    fn from_asset(
        mut host: Host<'_>,
        path: String,
        offset: u64,
        d: FileDtype,
        shape: Vec<u32>,
        p: Precision,
    ) -> wasmtime::Result<Resource<WeightsHandle>> {
        let done = host
            .get()
            .weights_from_asset(&path, offset, dtype(d), shape, precision(p));
        charged(host, done)
    }

    fn from_data(
        mut host: Host<'_>,
        data: Vec<f32>,
        shape: Vec<u32>,
        p: Precision,
    ) -> wasmtime::Result<Resource<WeightsHandle>> {
        let done = host.get().weights_from_data(data, shape, precision(p));
        charged(host, done)
    }

    fn shape(mut host: Host<'_>, w: Resource<WeightsHandle>) -> wasmtime::Result<Vec<u32>> {
        host.get().weights_shape(&w)
    }
}

impl wit::HostTensorWithStore<JobContext> for HasSelf<JobContext> {
    fn drop(mut host: Host<'_>, rep: Resource<TensorHandle>) -> wasmtime::Result<()> {
        host.get().tensor_drop(rep)
    }

    fn new(
        mut host: Host<'_>,
        data: Vec<f32>,
        shape: Vec<u32>,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().tensor_new(data, shape);
        charged(host, done)
    }

    fn shape(mut host: Host<'_>, t: Resource<TensorHandle>) -> wasmtime::Result<Vec<u32>> {
        host.get().tensor_shape(&t)
    }

    fn read(mut host: Host<'_>, t: Resource<TensorHandle>) -> wasmtime::Result<Vec<f32>> {
        let done = host.get().tensor_read(&t);
        charged(host, done)
    }

    fn reshape(
        mut host: Host<'_>,
        t: Resource<TensorHandle>,
        shape: Vec<u32>,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().tensor_reshape(&t, shape);
        charged(host, done)
    }

    fn narrow(
        mut host: Host<'_>,
        t: Resource<TensorHandle>,
        axis: u32,
        start: u32,
        len: u32,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().tensor_narrow(&t, axis, start, len);
        charged(host, done)
    }
}

impl wit::HostKvCacheWithStore<JobContext> for HasSelf<JobContext> {
    fn drop(mut host: Host<'_>, rep: Resource<CacheHandle>) -> wasmtime::Result<()> {
        host.get().cache_drop(rep)
    }

    fn new(
        mut host: Host<'_>,
        batch: u32,
        width: u32,
        capacity: u32,
    ) -> wasmtime::Result<Resource<CacheHandle>> {
        let done = host.get().cache_new(batch, width, capacity);
        charged(host, done)
    }

    fn len(mut host: Host<'_>, c: Resource<CacheHandle>) -> wasmtime::Result<u32> {
        host.get().cache_len(&c)
    }

    fn batch(mut host: Host<'_>, c: Resource<CacheHandle>) -> wasmtime::Result<u32> {
        host.get().cache_batch(&c)
    }

    fn append(
        mut host: Host<'_>,
        c: Resource<CacheHandle>,
        keys: Resource<TensorHandle>,
        values: Resource<TensorHandle>,
    ) -> wasmtime::Result<()> {
        let done = host.get().cache_append(&c, &keys, &values);
        charged(host, done)
    }

    fn reorder(
        mut host: Host<'_>,
        c: Resource<CacheHandle>,
        sources: Vec<u32>,
    ) -> wasmtime::Result<()> {
        let done = host.get().cache_reorder(&c, sources);
        charged(host, done)
    }

    fn reset(mut host: Host<'_>, c: Resource<CacheHandle>, batch: u32) -> wasmtime::Result<()> {
        let done = host.get().cache_reset(&c, batch);
        charged(host, done)
    }
}

impl wit::HostWithStore<JobContext> for HasSelf<JobContext> {
    fn linear(
        mut host: Host<'_>,
        x: Resource<TensorHandle>,
        w: Resource<WeightsHandle>,
        bias: Option<Resource<WeightsHandle>>,
        act: Activation,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().linear(&x, &w, bias.as_ref(), activation(act));
        charged(host, done)
    }

    fn layer_norm(
        mut host: Host<'_>,
        x: Resource<TensorHandle>,
        gamma: Resource<WeightsHandle>,
        beta: Resource<WeightsHandle>,
        eps: f32,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().layer_norm(&x, &gamma, &beta, eps);
        charged(host, done)
    }

    fn add(
        mut host: Host<'_>,
        a: Resource<TensorHandle>,
        b: Resource<TensorHandle>,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().add(&a, &b);
        charged(host, done)
    }

    fn add_positions(
        mut host: Host<'_>,
        x: Resource<TensorHandle>,
        w: Resource<WeightsHandle>,
        start: u32,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().add_positions(&x, &w, start);
        charged(host, done)
    }

    fn embed(
        mut host: Host<'_>,
        table: Resource<WeightsHandle>,
        ids: Vec<u32>,
        batch: u32,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().embed(&table, ids, batch);
        charged(host, done)
    }

    fn conv1d(
        mut host: Host<'_>,
        x: Resource<TensorHandle>,
        w: Resource<WeightsHandle>,
        bias: Option<Resource<WeightsHandle>>,
        stride: u32,
        padding: u32,
        act: Activation,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host
            .get()
            .conv1d(&x, &w, bias.as_ref(), stride, padding, activation(act));
        charged(host, done)
    }

    fn attention(
        mut host: Host<'_>,
        q: Resource<TensorHandle>,
        k: Resource<TensorHandle>,
        v: Resource<TensorHandle>,
        heads: u32,
        causal: bool,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().attention(&q, &k, &v, heads, causal);
        charged(host, done)
    }

    fn attention_cached(
        mut host: Host<'_>,
        q: Resource<TensorHandle>,
        cache: Resource<CacheHandle>,
        heads: u32,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().attention_cached(&q, &cache, heads);
        charged(host, done)
    }

    fn attention_weights(
        mut host: Host<'_>,
        q: Resource<TensorHandle>,
        k: Resource<TensorHandle>,
        heads: u32,
        selected: Vec<u32>,
    ) -> wasmtime::Result<Resource<TensorHandle>> {
        let done = host.get().attention_weights(&q, &k, heads, selected);
        charged(host, done)
    }

    fn device_info(mut host: Host<'_>) -> wasmtime::Result<Device> {
        let (threads, kernels) = host.get().device();
        Ok(Device {
            threads,
            kernels: kernels.to_owned(),
        })
    }
}
