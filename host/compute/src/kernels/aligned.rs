//! Cache-line-aligned storage for packed weights: every panel starts on a 64-byte
//! line, so SIMD loads never split lines.

/// One 64-byte cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zero-initialised, 64-byte-aligned buffer viewed as `f32`, `u16` or `i8`.
pub(crate) struct Aligned {
    lines: Vec<Line>,
    bytes: usize,
}

impl Aligned {
    /// `None` if the allocator refuses.
    pub(crate) fn zeroed(bytes: usize) -> Option<Aligned> {
        let n = bytes.div_ceil(64);
        let mut lines = Vec::new();
        lines.try_reserve_exact(n).ok()?;
        lines.resize(n, Line([0; 64]));
        Some(Aligned { lines, bytes })
    }

    /// Bytes held (rounded up to whole lines).
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.lines.len() * 64
    }

    fn raw(&self) -> &[u8] {
        // SAFETY: `Line` is 64 plain bytes with no padding.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.bytes) }
    }

    fn raw_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `raw`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.bytes) }
    }

    pub(crate) fn as_f32(&self) -> &[f32] {
        let raw = self.raw();
        // SAFETY: 64-byte aligned; every bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(raw.as_ptr().cast(), raw.len() / 4) }
    }

    pub(crate) fn as_f32_mut(&mut self) -> &mut [f32] {
        let raw = self.raw_mut();
        // SAFETY: as in `as_f32`.
        unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().cast(), raw.len() / 4) }
    }

    pub(crate) fn as_u16(&self) -> &[u16] {
        let raw = self.raw();
        // SAFETY: as in `as_f32`.
        unsafe { std::slice::from_raw_parts(raw.as_ptr().cast(), raw.len() / 2) }
    }

    pub(crate) fn as_u16_mut(&mut self) -> &mut [u16] {
        let raw = self.raw_mut();
        // SAFETY: as in `as_f32`.
        unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().cast(), raw.len() / 2) }
    }

    pub(crate) fn as_i8(&self) -> &[i8] {
        let raw = self.raw();
        // SAFETY: as in `as_f32`.
        unsafe { std::slice::from_raw_parts(raw.as_ptr().cast(), raw.len()) }
    }

    pub(crate) fn as_i8_mut(&mut self) -> &mut [i8] {
        let raw = self.raw_mut();
        // SAFETY: as in `as_f32`.
        unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().cast(), raw.len()) }
    }
}
