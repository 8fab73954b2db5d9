//! Per-thread reusable scratch buffers. Attention's packed keys and score blocks, and
//! int8's quantised rows, are needed on every call: taking them from the allocator each
//! time costs a page fault per 4 KiB (fresh `mmap`ed memory) on every call, which
//! measured as a tenth of encoder attention. Pool threads live for the server's life,
//! so one buffer per thread is reused; big ones are not kept.

use std::cell::RefCell;

use crate::error::ComputeError;

/// Largest buffer a thread keeps between calls (16 MiB).
const KEEP_VALUES: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `n` scratch values. Their contents are unspecified (whatever an
/// earlier call left): callers write before they read. Callers reserve the bytes in
/// their allowance first; a refused allocation is `OverBudget`, never an abort.
pub(crate) fn with_f32<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> Result<R, ComputeError> {
    // Taken out of the cell, so a nested call just allocates its own.
    let mut buf = POOL.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if buf.len() < n {
        buf.clear();
        buf.try_reserve_exact(n)
            .map_err(|_| ComputeError::OverBudget {
                needed: (n as u64).saturating_mul(4),
                allowed: 0,
            })?;
        buf.resize(n, 0.0);
    }
    let r = f(&mut buf[..n]);
    if buf.len() <= KEEP_VALUES {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < buf.len() {
                *p = buf;
            }
        });
    }
    Ok(r)
}
