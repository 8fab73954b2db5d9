//! A `ResourceLimiter` that caps the total linear memory of one job's store.

/// Caps the sum of all linear memories of a store (not each memory alone), and remembers
/// whether it had to refuse, so a trap that follows can be reported as "out of memory".
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    total: usize,
    peak: usize,
    refused: bool,
}

impl MemoryLimiter {
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            limit: usize::try_from(limit_bytes).unwrap_or(usize::MAX),
            total: 0,
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
        if wanted > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.total = wanted;
        self.peak = self.peak.max(wanted);
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
}
