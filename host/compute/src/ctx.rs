//! What one call may use (threads, memory, time) and what it did (work), plus the
//! block scheduler every long op runs through, so that stop polling, the thread budget
//! and determinism are handled in one place.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::error::ComputeError;

/// What one call may use. Built by the caller per call (cheap).
pub struct Ctx<'a> {
    /// Threads this call may use (>= 1; 0 is treated as 1). More than the pool has are
    /// not used.
    pub threads: usize,
    /// The server-wide pool used when `threads > 1` (`None` means one thread).
    pub pool: Option<&'a rayon::ThreadPool>,
    /// Polled between blocks of work (each a few milliseconds at most): when it returns
    /// true the call ends with [`ComputeError::Stopped`].
    pub stop: &'a (dyn Fn() -> bool + Sync),
    /// The most new bytes (outputs plus scratch) this call may allocate.
    pub allowance_bytes: u64,
    work: AtomicU64,
}

fn never() -> bool {
    false
}

impl<'a> Ctx<'a> {
    pub fn new(
        threads: usize,
        pool: Option<&'a rayon::ThreadPool>,
        stop: &'a (dyn Fn() -> bool + Sync),
        allowance_bytes: u64,
    ) -> Ctx<'a> {
        Ctx {
            threads,
            pool,
            stop,
            allowance_bytes,
            work: AtomicU64::new(0),
        }
    }

    /// One thread, never stopped, no memory limit: for native callers (SDK, tests).
    pub fn unlimited() -> Ctx<'static> {
        Ctx::new(1, None, &never, u64::MAX)
    }

    /// Work charged by the calls made with this context so far, in abstract units
    /// (about one multiply-add, or one element of an elementwise op, per unit). It
    /// depends on the shapes of the calls only, never on timing or threads, so it can be
    /// turned into fuel.
    pub fn work(&self) -> u64 {
        self.work.load(Ordering::Relaxed)
    }

    pub(crate) fn charge(&self, units: u64) {
        let _ = self
            .work
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some(w.saturating_add(units))
            });
    }

    /// Threads a call really uses: at most the pool's size, 1 without a pool.
    pub(crate) fn threads_used(&self) -> usize {
        match self.pool {
            Some(pool) => self.threads.clamp(1, pool.current_num_threads().max(1)),
            None => 1,
        }
    }

    pub(crate) fn check_stop(&self) -> Result<(), ComputeError> {
        if (self.stop)() {
            Err(ComputeError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Fails with `OverBudget` unless `bytes` fit in the allowance.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<(), ComputeError> {
        if bytes > self.allowance_bytes {
            Err(ComputeError::OverBudget {
                needed: bytes,
                allowed: self.allowance_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// Runs `block(0..n)`, polling `stop` before each block. One thread runs them in
    /// order on the calling thread; more threads take blocks from a shared counter
    /// inside the pool. Each block writes its own part of the result and its arithmetic
    /// does not depend on which thread runs it, so results are the same bit for bit
    /// for any thread count. `parallel: false` keeps a call too small to gain from
    /// threads (waking pool threads costs tens of microseconds) on the calling thread.
    pub(crate) fn run_blocks<F>(
        &self,
        parallel: bool,
        n: usize,
        block: F,
    ) -> Result<(), ComputeError>
    where
        F: Fn(usize) -> Result<(), ComputeError> + Sync,
    {
        let threads = if parallel {
            self.threads_used().min(n)
        } else {
            1
        };
        let pool = match self.pool {
            Some(pool) if threads > 1 => pool,
            _ => {
                for i in 0..n {
                    self.check_stop()?;
                    block(i)?;
                }
                return Ok(());
            }
        };
        let next = AtomicUsize::new(0);
        let abort = AtomicBool::new(false);
        let failure: Mutex<Option<ComputeError>> = Mutex::new(None);
        let worker = || {
            while !abort.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Err(e) = self.check_stop().and_then(|()| block(i)) {
                    abort.store(true, Ordering::Relaxed);
                    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                    break;
                }
            }
        };
        let worker = &worker;
        pool.install(|| {
            rayon::scope(|s| {
                for _ in 1..threads {
                    s.spawn(move |_| worker());
                }
                worker();
            })
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `a * b * ...` or `Invalid` naming `what` when it overflows.
pub(crate) fn checked_product(dims: &[usize], what: &str) -> Result<usize, ComputeError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| ComputeError::Invalid(format!("{what} {dims:?} is too large")))
}

/// `a * b` for sizes, `Invalid` (naming `what`) on overflow.
pub(crate) fn mul(a: usize, b: usize, what: &str) -> Result<usize, ComputeError> {
    a.checked_mul(b)
        .ok_or_else(|| ComputeError::Invalid(format!("{what} is too large ({a} x {b})")))
}

/// Bytes of `n` f32 values, saturating (it is only compared with the allowance).
pub(crate) fn f32_bytes(n: usize) -> u64 {
    (n as u64).saturating_mul(4)
}

/// A zeroed `Vec<f32>` of `n` values, or `OverBudget` if the allocator refuses (never
/// an abort, even with an unlimited allowance). Big buffers come as fresh zero pages
/// (`calloc`), so allocating costs no pass over memory and no time before the first
/// stop poll.
pub(crate) fn zeroed(n: usize) -> Result<Vec<f32>, ComputeError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let refused = ComputeError::OverBudget {
        needed: f32_bytes(n),
        allowed: 0,
    };
    let layout = std::alloc::Layout::array::<f32>(n).map_err(|_| refused.clone())?;
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<f32>();
    if ptr.is_null() {
        return Err(refused);
    }
    // SAFETY: allocated by the global allocator with the layout of `n` f32s, all
    // initialised (zero bits are 0.0).
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// A raw pointer that blocks running on other threads may write through. Every use
/// writes a region no other block writes (the callers' tilings guarantee it).
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T> {
    ptr: *mut T,
    len: usize,
}

unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub(crate) fn new(slice: &mut [T]) -> SharedMut<T> {
        SharedMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
        }
    }

    /// `len` elements from `start`, bounds-checked.
    ///
    /// # Safety
    /// No other live reference may overlap the returned slice.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start <= self.len && len <= self.len - start);
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn ptr(&self) -> *mut T {
        self.ptr
    }
}
