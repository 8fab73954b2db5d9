//! A `ResourceLimiter` that caps the total memory of one job: its store's linear
//! memories plus the tensors the host holds for it (WIT 0.2.0's compute interface).

/// Caps the sum of all linear memories of a store (not each memory alone) and the job's
/// host-side tensors, and remembers whether it had to refuse, so a trap that follows can
/// be reported as "out of memory".
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    /// Linear memory, all memories of the store.
    total: usize,
    /// Host tensors and caches of the job.
    host: usize,
    peak: usize,
    refused: bool,
}

impl MemoryLimiter {
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            limit: usize::try_from(limit_bytes).unwrap_or(usize::MAX),
            total: 0,
            host: 0,
            peak: 0,
            refused: false,
        }
    }

    /// Highest total linear memory seen, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.peak as u64
    }

    /// Whether a growth was refused because of the cap.
    pub fn refused(&self) -> bool {
        self.refused
    }

    pub fn limit_bytes(&self) -> u64 {
        self.limit as u64
    }

    /// Bytes the job may still take, in linear memory or host tensors.
    pub fn remaining_bytes(&self) -> u64 {
        self.limit.saturating_sub(self.total + self.host) as u64
    }

    /// Host-side tensor bytes held now.
    #[cfg(test)]
    pub fn host_bytes(&self) -> u64 {
        self.host as u64
    }

    /// Counts `bytes` of host tensors against the cap; `false` (and nothing counted) when
    /// they do not fit.
    pub fn reserve_host(&mut self, bytes: u64) -> bool {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        let wanted = self.total.saturating_add(self.host).saturating_add(bytes);
        if wanted > self.limit {
            self.refused = true;
            return false;
        }
        self.host += bytes;
        self.peak = self.peak.max(wanted);
        true
    }

    /// Records that a host allocation was refused (a compute call that would not fit),
    /// so the job is reported out of memory.
    pub fn refuse(&mut self) {
        self.refused = true;
    }

    /// Host tensors of `bytes` were dropped.
    pub fn release_host(&mut self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.host = self.host.saturating_sub(bytes);
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let others = self.total.saturating_sub(current);
        let wanted = others.saturating_add(desired);
        if wanted.saturating_add(self.host) > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.total = wanted;
        self.peak = self.peak.max(wanted + self.host);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real plugin.
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        100
    }

    fn tables(&self) -> usize {
        100
    }

    fn memories(&self) -> usize {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn caps_the_total_of_all_memories() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).expect("ok"));
        // A second memory may not push the total over the cap.
        assert!(!limiter.memory_growing(0, 50, None).expect("ok"));
        assert!(limiter.refused());
        assert!(limiter.memory_growing(0, 40, None).expect("ok"));
        assert_eq!(limiter.peak_bytes(), 100);
    }

    #[test]
    fn growing_one_memory_counts_only_the_difference() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 50, None).expect("ok"));
        assert!(limiter.memory_growing(50, 100, None).expect("ok"));
        assert!(!limiter.refused());
        assert!(!limiter.memory_growing(100, 101, None).expect("ok"));
    }

    #[test]
    fn host_tensors_and_linear_memory_share_one_cap() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).expect("ok"));
        assert!(limiter.reserve_host(30));
        assert_eq!(limiter.remaining_bytes(), 10);
        assert!(!limiter.reserve_host(11), "over the cap");
        assert!(
            !limiter.memory_growing(60, 80, None).expect("ok"),
            "tensors count too"
        );
        limiter.release_host(30);
        assert!(limiter.memory_growing(60, 80, None).expect("ok"));
        assert_eq!(limiter.peak_bytes(), 90);
        assert_eq!(limiter.host_bytes(), 0);
    }
}
