//! The compute operations of one job, the same for every WIT version that has them: look
//! up the handles in the job's resource table, run the kernel with the job's threads,
//! stop check and memory allowance, count the result against the job's memory, and turn
//! a wrong call into the job's fault.

use std::time::Instant;

use sandscribe_compute::{self as kernels, Activation, ComputeError, Ctx, FileDtype, Precision};
use wasmtime::component::{Resource, ResourceTable};

use super::{CacheHandle, ComputeFault, TensorHandle, WeightsHandle};
use crate::runtime::Interrupt;
use crate::runtime::store::JobContext;

/// What a call produced and the work it did (for fuel).
pub struct Done<T> {
    pub value: T,
    pub work: u64,
}

/// The trap a failed call raises; the job's failure names the reason kept in
/// [`super::ComputeState::fault`].
pub type Trap = wasmtime::Error;

fn tensor<'t>(
    table: &'t ResourceTable,
    r: &Resource<TensorHandle>,
) -> Result<&'t kernels::Tensor, ComputeError> {
    table.get(r).map(|h| &h.tensor).map_err(|_| {
        ComputeError::Invalid("a tensor handle that is not (or no longer) this job's".into())
    })
}

fn weights<'t>(
    table: &'t ResourceTable,
    r: &Resource<WeightsHandle>,
) -> Result<&'t kernels::Weights, ComputeError> {
    table.get(r).map(|h| h.weights.as_ref()).map_err(|_| {
        ComputeError::Invalid("a weights handle that is not (or no longer) this job's".into())
    })
}

fn cache<'t>(
    table: &'t ResourceTable,
    r: &Resource<CacheHandle>,
) -> Result<&'t kernels::KvCache, ComputeError> {
    table.get(r).map(|h| &h.cache).map_err(|_| {
        ComputeError::Invalid("a kv-cache handle that is not (or no longer) this job's".into())
    })
}

fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

fn dims_u32(shape: &[usize]) -> Vec<u32> {
    shape
        .iter()
        .map(|&d| u32::try_from(d).unwrap_or(u32::MAX))
        .collect()
}

/// The job's side of a call's context.
struct CtxParts {
    cancel: crate::runtime::CancelFlag,
    deadline: Instant,
    threads: usize,
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    allowance: u64,
}

impl CtxParts {
    fn run<R>(
        self,
        op: impl FnOnce(&Ctx) -> Result<R, ComputeError>,
    ) -> (Result<R, ComputeError>, u64) {
        let Self {
            cancel,
            deadline,
            threads,
            pool,
            allowance,
        } = self;
        let stop = move || cancel.is_cancelled() || Instant::now() >= deadline;
        let ctx = Ctx::new(threads, pool.as_deref(), &stop, allowance);
        let result = op(&ctx);
        (result, ctx.work())
    }
}

impl JobContext {
    /// What a call's context is made of, taken from the job so the resource table stays
    /// free to borrow.
    fn ctx_parts(&self) -> CtxParts {
        let config = &self.compute.config;
        CtxParts {
            cancel: self.cancel.clone(),
            deadline: self.deadline,
            threads: if config.pool.is_some() {
                config.threads
            } else {
                1
            },
            pool: config.pool.clone(),
            allowance: self.limiter.remaining_bytes(),
        }
    }

    /// Runs `op` with a context for this job: its thread budget, a stop check on its
    /// cancel flag and deadline, and the memory it has left. Returns the work done too.
    fn with_ctx<R>(
        &self,
        op: impl FnOnce(&Ctx, &ResourceTable) -> Result<R, ComputeError>,
    ) -> (Result<R, ComputeError>, u64) {
        self.ctx_parts().run(|ctx| op(ctx, &self.table))
    }

    /// Ends the job for `error`: a wrong call is its fault, a stop is cancellation or
    /// the time limit, over budget is out of memory.
    fn fail(&mut self, error: ComputeError) -> Trap {
        match error {
            ComputeError::Invalid(reason) => {
                let message = format!("invalid compute call: {reason}");
                self.compute
                    .fault
                    .get_or_insert(ComputeFault::Invalid(reason));
                Trap::msg(message)
            }
            ComputeError::OverBudget { needed, allowed } => {
                self.limiter.refuse();
                self.compute
                    .fault
                    .get_or_insert(ComputeFault::OutOfMemory { needed, allowed });
                Trap::msg(format!(
                    "compute call refused: {needed} bytes wanted, {allowed} left in the job's memory"
                ))
            }
            ComputeError::Stopped => {
                let why = if self.cancel.is_cancelled() {
                    Interrupt::Cancelled
                } else {
                    Interrupt::TimedOut
                };
                self.interrupted.get_or_insert(why);
                Trap::msg("job stopped during a compute call")
            }
        }
    }

    /// Counts `bytes` of new host memory against the job's cap, or ends the job out of
    /// memory.
    fn count_host(&mut self, bytes: u64) -> Result<(), Trap> {
        if self.limiter.reserve_host(bytes) {
            return Ok(());
        }
        let allowed = self.limiter.remaining_bytes();
        Err(self.fail(ComputeError::OverBudget {
            needed: bytes,
            allowed,
        }))
    }

    /// Counts a new tensor against the job's memory and hands the plugin its handle.
    fn keep_tensor(
        &mut self,
        (result, work): (Result<kernels::Tensor, ComputeError>, u64),
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let tensor = result.map_err(|e| self.fail(e))?;
        let bytes = tensor.bytes();
        self.count_host(bytes)?;
        let value = self
            .table
            .push(TensorHandle { tensor })
            .map_err(|e| self.fail(ComputeError::Invalid(format!("too many handles: {e}"))))?;
        Ok(Done { value, work })
    }

    /// A lookup that does no work (shapes, lengths).
    fn inspect<R>(
        &mut self,
        op: impl FnOnce(&ResourceTable) -> Result<R, ComputeError>,
    ) -> Result<R, Trap> {
        op(&self.table).map_err(|e| self.fail(e))
    }

    pub(crate) fn tensor_new(
        &mut self,
        data: Vec<f32>,
        shape: Vec<u32>,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let made = kernels::Tensor::new(data, &dims(&shape));
        self.keep_tensor((made, 0))
    }

    pub(crate) fn tensor_shape(&mut self, t: &Resource<TensorHandle>) -> Result<Vec<u32>, Trap> {
        self.inspect(|table| Ok(dims_u32(tensor(table, t)?.shape())))
    }

    pub(crate) fn tensor_read(
        &mut self,
        t: &Resource<TensorHandle>,
    ) -> Result<Done<Vec<f32>>, Trap> {
        let data = self.inspect(|table| Ok(tensor(table, t)?.data().to_vec()))?;
        let work = data.len() as u64;
        Ok(Done { value: data, work })
    }

    pub(crate) fn tensor_reshape(
        &mut self,
        t: &Resource<TensorHandle>,
        shape: Vec<u32>,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| tensor(table, t)?.reshape(ctx, &dims(&shape)));
        self.keep_tensor(done)
    }

    pub(crate) fn tensor_narrow(
        &mut self,
        t: &Resource<TensorHandle>,
        axis: u32,
        start: u32,
        len: u32,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            tensor(table, t)?.narrow(ctx, axis as usize, start as usize, len as usize)
        });
        self.keep_tensor(done)
    }

    pub(crate) fn tensor_drop(&mut self, t: Resource<TensorHandle>) -> Result<(), Trap> {
        let handle = self.table.delete(t)?;
        self.limiter.release_host(handle.tensor.bytes());
        Ok(())
    }

    pub(crate) fn weights_from_asset(
        &mut self,
        path: &str,
        offset: u64,
        dtype: FileDtype,
        shape: Vec<u32>,
        precision: Precision,
    ) -> Result<Done<Resource<WeightsHandle>>, Trap> {
        let Some(shared) = self.compute.config.weights.clone() else {
            return Err(self.fail(ComputeError::Invalid(
                "this job has no shared weights (no plugin build)".into(),
            )));
        };
        let weights = match shared.get(
            &mut self.compute.regions,
            path,
            offset,
            dtype,
            &dims(&shape),
            precision,
        ) {
            Ok(weights) => weights,
            Err(super::WeightsCacheError::Invalid(reason)) => {
                return Err(self.fail(ComputeError::Invalid(reason)));
            }
            Err(budget @ super::WeightsCacheError::Budget { .. }) => {
                let reason = budget.to_string();
                self.compute
                    .fault
                    .get_or_insert(ComputeFault::SharedBudget(reason.clone()));
                return Err(Trap::msg(reason));
            }
        };
        // Reading and converting happen once per plugin build; what a job pays for is
        // looking the region up, so the fuel a job burns does not depend on whether it
        // came first.
        let value = self.table.push(WeightsHandle {
            weights,
            shared: true,
        })?;
        Ok(Done { value, work: 0 })
    }

    pub(crate) fn weights_from_data(
        &mut self,
        data: Vec<f32>,
        shape: Vec<u32>,
        precision: Precision,
    ) -> Result<Done<Resource<WeightsHandle>>, Trap> {
        let work = data.len() as u64;
        let weights =
            kernels::Weights::from_f32(data, &dims(&shape), precision).map_err(|e| self.fail(e))?;
        let bytes = weights.bytes();
        self.count_host(bytes)?;
        let value = self.table.push(WeightsHandle {
            weights: std::sync::Arc::new(weights),
            shared: false,
        })?;
        Ok(Done { value, work })
    }

    pub(crate) fn weights_shape(&mut self, w: &Resource<WeightsHandle>) -> Result<Vec<u32>, Trap> {
        self.inspect(|table| Ok(dims_u32(weights(table, w)?.shape())))
    }

    pub(crate) fn weights_drop(&mut self, w: Resource<WeightsHandle>) -> Result<(), Trap> {
        let handle = self.table.delete(w)?;
        if !handle.shared {
            self.limiter.release_host(handle.weights.bytes());
        }
        Ok(())
    }

    pub(crate) fn cache_new(
        &mut self,
        batch: u32,
        width: u32,
        capacity: u32,
    ) -> Result<Done<Resource<CacheHandle>>, Trap> {
        let (made, work) = self.with_ctx(|ctx, _| {
            kernels::KvCache::new(ctx, batch as usize, width as usize, capacity as usize)
        });
        let cache = made.map_err(|e| self.fail(e))?;
        let bytes = cache.bytes();
        self.count_host(bytes)?;
        let value = self.table.push(CacheHandle { cache })?;
        Ok(Done { value, work })
    }

    pub(crate) fn cache_len(&mut self, c: &Resource<CacheHandle>) -> Result<u32, Trap> {
        self.inspect(|table| Ok(cache(table, c)?.len() as u32))
    }

    pub(crate) fn cache_batch(&mut self, c: &Resource<CacheHandle>) -> Result<u32, Trap> {
        self.inspect(|table| Ok(cache(table, c)?.batch() as u32))
    }

    /// Runs a call that changes a cache in place, keeping the job's memory count in step
    /// with the cache's size (a reorder may change its batch).
    fn change_cache(
        &mut self,
        c: &Resource<CacheHandle>,
        op: impl FnOnce(&Ctx, &mut kernels::KvCache) -> Result<(), ComputeError>,
    ) -> Result<Done<()>, Trap> {
        let parts = self.ctx_parts();
        let (result, work, before, after) = match self.table.get_mut(c) {
            Ok(handle) => {
                let before = handle.cache.bytes();
                let (result, work) = parts.run(|ctx| op(ctx, &mut handle.cache));
                (result, work, before, handle.cache.bytes())
            }
            Err(_) => (
                Err(ComputeError::Invalid(
                    "a kv-cache handle that is not (or no longer) this job's".into(),
                )),
                0,
                0,
                0,
            ),
        };
        result.map_err(|e| self.fail(e))?;
        if after > before {
            self.count_host(after - before)?;
        }
        if after < before {
            self.limiter.release_host(before - after);
        }
        Ok(Done { value: (), work })
    }

    pub(crate) fn cache_append(
        &mut self,
        c: &Resource<CacheHandle>,
        k: &Resource<TensorHandle>,
        v: &Resource<TensorHandle>,
    ) -> Result<Done<()>, Trap> {
        // The step's keys and values are small; copied out, the cache can change in place.
        let (k, v) =
            self.inspect(|table| Ok((tensor(table, k)?.clone(), tensor(table, v)?.clone())))?;
        self.change_cache(c, |ctx, cache| cache.append(ctx, &k, &v))
    }

    pub(crate) fn cache_reorder(
        &mut self,
        c: &Resource<CacheHandle>,
        sources: Vec<u32>,
    ) -> Result<Done<()>, Trap> {
        self.change_cache(c, |ctx, cache| cache.reorder(ctx, &sources))
    }

    pub(crate) fn cache_reset(
        &mut self,
        c: &Resource<CacheHandle>,
        batch: u32,
    ) -> Result<Done<()>, Trap> {
        self.change_cache(c, |ctx, cache| cache.reset(ctx, batch as usize))
    }

    pub(crate) fn cache_drop(&mut self, c: Resource<CacheHandle>) -> Result<(), Trap> {
        let handle = self.table.delete(c)?;
        self.limiter.release_host(handle.cache.bytes());
        Ok(())
    }

    pub(crate) fn linear(
        &mut self,
        x: &Resource<TensorHandle>,
        w: &Resource<WeightsHandle>,
        bias: Option<&Resource<WeightsHandle>>,
        act: Activation,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            let bias = bias.map(|b| weights(table, b)).transpose()?;
            kernels::linear(ctx, tensor(table, x)?, weights(table, w)?, bias, act)
        });
        self.keep_tensor(done)
    }

    pub(crate) fn layer_norm(
        &mut self,
        x: &Resource<TensorHandle>,
        gamma: &Resource<WeightsHandle>,
        beta: &Resource<WeightsHandle>,
        eps: f32,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            kernels::layer_norm(
                ctx,
                tensor(table, x)?,
                weights(table, gamma)?,
                weights(table, beta)?,
                eps,
            )
        });
        self.keep_tensor(done)
    }

    pub(crate) fn add(
        &mut self,
        a: &Resource<TensorHandle>,
        b: &Resource<TensorHandle>,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done =
            self.with_ctx(|ctx, table| kernels::add(ctx, tensor(table, a)?, tensor(table, b)?));
        self.keep_tensor(done)
    }

    pub(crate) fn add_positions(
        &mut self,
        x: &Resource<TensorHandle>,
        w: &Resource<WeightsHandle>,
        start: u32,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            kernels::add_positions(ctx, tensor(table, x)?, weights(table, w)?, start as usize)
        });
        self.keep_tensor(done)
    }

    pub(crate) fn embed(
        &mut self,
        table_w: &Resource<WeightsHandle>,
        ids: Vec<u32>,
        batch: u32,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            kernels::embed(ctx, weights(table, table_w)?, &ids, batch as usize)
        });
        self.keep_tensor(done)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv1d(
        &mut self,
        x: &Resource<TensorHandle>,
        w: &Resource<WeightsHandle>,
        bias: Option<&Resource<WeightsHandle>>,
        stride: u32,
        padding: u32,
        act: Activation,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            let bias = bias.map(|b| weights(table, b)).transpose()?;
            kernels::conv1d(
                ctx,
                tensor(table, x)?,
                weights(table, w)?,
                bias,
                stride as usize,
                padding as usize,
                act,
            )
        });
        self.keep_tensor(done)
    }

    pub(crate) fn attention(
        &mut self,
        q: &Resource<TensorHandle>,
        k: &Resource<TensorHandle>,
        v: &Resource<TensorHandle>,
        heads: u32,
        causal: bool,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            kernels::attention(
                ctx,
                tensor(table, q)?,
                tensor(table, k)?,
                tensor(table, v)?,
                heads as usize,
                causal,
            )
        });
        self.keep_tensor(done)
    }

    pub(crate) fn attention_cached(
        &mut self,
        q: &Resource<TensorHandle>,
        c: &Resource<CacheHandle>,
        heads: u32,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            kernels::attention_cached(ctx, tensor(table, q)?, cache(table, c)?, heads as usize)
        });
        self.keep_tensor(done)
    }

    pub(crate) fn attention_weights(
        &mut self,
        q: &Resource<TensorHandle>,
        k: &Resource<TensorHandle>,
        heads: u32,
        selected: Vec<u32>,
    ) -> Result<Done<Resource<TensorHandle>>, Trap> {
        let done = self.with_ctx(|ctx, table| {
            kernels::attention_weights(
                ctx,
                tensor(table, q)?,
                tensor(table, k)?,
                heads as usize,
                &selected,
            )
        });
        self.keep_tensor(done)
    }

    /// Threads a call of this job may use and the kernels the CPU runs.
    pub(crate) fn device(&self) -> (u32, &'static str) {
        let config = &self.compute.config;
        let threads = if config.pool.is_some() {
            config.threads
        } else {
            1
        };
        (u32::try_from(threads).unwrap_or(1), kernels::kernels())
    }
}
