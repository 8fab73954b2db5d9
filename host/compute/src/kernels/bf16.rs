//! bf16-weight products, two ways:
//!
//! - few rows (decoder steps, memory-bound): exact `f32` activations; each packed lane
//!   holds two depths' weights, which widen to `f32` with one shift or mask (bf16 is
//!   the top half of an f32), then ordinary FMAs. The halved weight traffic is the
//!   whole gain, and the activations lose nothing.
//! - many rows (encoder, compute-bound): activations rounded to bf16 too, and with
//!   AVX-512 BF16 `vdpbf16ps` does two depths per lane per instruction, twice the f32
//!   rate. Other CPUs compute the same thing (the same two fused steps per lane, odd
//!   depth first, as the instruction is specified) with FMAs.

use super::Level;
use super::pack::{GROUP, NR, group_panels};
use crate::kernels::gemm::MR;

/// `C = A · B` with `B` bf16 panels (`[k/2][16][2]`); `k` may be odd.
///
/// # Safety
/// As `gemm::gemm_f32`, with panels of `kp * 16` u16 values where `kp = k` rounded
/// up to even.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_bf16(
    level: Level,
    m: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const u16,
    ncols: usize,
    c: *mut f32,
    ldc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if level == Level::Avx512 {
        // SAFETY: AVX-512 detected; pointers as promised.
        unsafe { avx512::gemm(m, k, a, lda, b, ncols, c, ldc) };
        return;
    }
    portable_gemm(level, m, k, a, lda, b, ncols, c, ldc)
}

#[inline(always)]
fn widen(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

super::multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn portable_gemm(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const u16,
        ncols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let kp = k.div_ceil(2) * 2;
        let panels = ncols.div_ceil(NR);
        for p in 0..panels {
            let g0 = p / GROUP * GROUP;
            let np = group_panels(g0, panels);
            // Panel p: pair t at bp + t * step.
            let bp = unsafe { b.add(g0 * kp * NR + (p - g0) * NR * 2) };
            let step = np * NR * 2;
            let cols = (ncols - p * NR).min(NR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let mut acc = [[0f32; NR]; MR];
                for t in 0..kp / 2 {
                    let bt: &[u16; 2 * NR] = unsafe { &*bp.add(t * step).cast() };
                    let odd = 2 * t + 1 < k;
                    for (r, acc_r) in acc.iter_mut().enumerate().take(rows) {
                        let x0 = unsafe { *a.add((i + r) * lda + 2 * t) };
                        let x1 = if odd { unsafe { *a.add((i + r) * lda + 2 * t + 1) } } else { 0.0 };
                        for l in 0..NR {
                            acc_r[l] = x0.mul_add(widen(bt[2 * l]), acc_r[l]);
                            acc_r[l] = x1.mul_add(widen(bt[2 * l + 1]), acc_r[l]);
                        }
                    }
                }
                for (r, acc_r) in acc.iter().enumerate().take(rows) {
                    let out = unsafe { std::slice::from_raw_parts_mut(c.add((i + r) * ldc + p * NR), cols) };
                    out.copy_from_slice(&acc_r[..cols]);
                }
                i += rows;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    const NP: usize = 4;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const u16,
        ncols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let kp = k.div_ceil(2) * 2;
        let panels = ncols.div_ceil(NR);
        let mut p = 0;
        while p < panels {
            let np = (panels - p).min(NP);
            let cols = (ncols - p * NR).min(np * NR);
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(MR);
                // SAFETY: within the caller's bounds.
                unsafe {
                    let (a, b, c) = (a.add(i * lda), b.add(p * kp * NR), c.add(i * ldc + p * NR));
                    macro_rules! call {
                        ($($mr:literal),*; $($np:literal),*) => {
                            call!(@rows [$($mr),*] [$($np),*])
                        };
                        (@rows [$($mr:literal),*] $nps:tt) => {
                            match mr { $($mr => call!(@cols $mr $nps),)* _ => unreachable!() }
                        };
                        (@cols $mr:literal [$($np:literal),*]) => {
                            match np { $($np => tile::<$mr, $np>(k, a, lda, b, cols, c, ldc),)* _ => unreachable!() }
                        };
                    }
                    call!(1, 2, 3, 4, 5, 6; 1, 2, 3, 4);
                }
                i += mr;
            }
            p += np;
        }
    }

    #[inline]
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    unsafe fn tile<const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const u16,
        cols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let step = P * NR * 2;
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        unsafe {
            let high = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
            let pairs = k / 2;
            for t in 0..pairs {
                let mut even = [_mm512_setzero_ps(); P];
                let mut odd = [_mm512_setzero_ps(); P];
                for p in 0..P {
                    let v = _mm512_loadu_si512(b.add(t * step + p * NR * 2).cast());
                    even[p] = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v));
                    odd[p] = _mm512_castsi512_ps(_mm512_and_si512(v, high));
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x0 = _mm512_set1_ps(*a.add(r * lda + 2 * t));
                    let x1 = _mm512_set1_ps(*a.add(r * lda + 2 * t + 1));
                    for p in 0..P {
                        acc_r[p] = _mm512_fmadd_ps(x0, even[p], acc_r[p]);
                        acc_r[p] = _mm512_fmadd_ps(x1, odd[p], acc_r[p]);
                    }
                }
            }
            if k % 2 == 1 {
                let t = pairs;
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x0 = _mm512_set1_ps(*a.add(r * lda + 2 * t));
                    for p in 0..P {
                        let v = _mm512_loadu_si512(b.add(t * step + p * NR * 2).cast());
                        let even = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v));
                        acc_r[p] = _mm512_fmadd_ps(x0, even, acc_r[p]);
                        // The portable order adds `0 * odd` too; odd lanes are zero
                        // padding, so this changes nothing.
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let row = c.add(r * ldc);
                for (p, &v) in acc_r.iter().enumerate() {
                    let left = cols.saturating_sub(p * NR);
                    if left >= NR {
                        _mm512_storeu_ps(row.add(p * NR), v);
                    } else if left > 0 {
                        let mask: __mmask16 = (1u32 << left).wrapping_sub(1) as __mmask16;
                        _mm512_mask_storeu_ps(row.add(p * NR), mask, v);
                    }
                }
            }
        }
    }
}

/// Rows from which bf16 products round activations and use `vdpbf16ps`.
pub(crate) const DOT_MIN_ROWS: usize = 16;

/// bf16 bits of `x`, rounded to nearest even (NaN stays NaN).
#[inline(always)]
fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        0x7FC0
    } else {
        (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
    }
}

super::multiversion! {
    /// Rounds `m` rows of `k` values (`lda` apart) to bf16 rows of `kp` (even, zero
    /// padded) in `out`.
    pub(crate) fn round_rows(x: &[f32], lda: usize, m: usize, k: usize, kp: usize, out: &mut [u16]) {
        for i in 0..m {
            let row = &x[i * lda..i * lda + k];
            let dst = &mut out[i * kp..(i + 1) * kp];
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = to_bf16(v);
            }
            for d in &mut dst[k..] {
                *d = 0;
            }
        }
    }
}

/// `C = A · B` with both in bf16: `A` rows of `kp` (even) bf16 values `lda` apart,
/// `B` bf16 panels of depth `kp`.
///
/// # Safety
/// As `gemm_bf16`, with `a` valid for `m` rows of `kp` u16 values.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_bf16_dot(
    level: Level,
    has_bf16: bool,
    m: usize,
    kp: usize,
    a: *const u16,
    lda: usize,
    b: *const u16,
    ncols: usize,
    c: *mut f32,
    ldc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if level == Level::Avx512 && has_bf16 {
        // SAFETY: AVX-512 BF16 detected; pointers as promised.
        unsafe { dot::gemm(m, kp, a, lda, b, ncols, c, ldc) };
        return;
    }
    let _ = has_bf16;
    portable_dot(level, m, kp, a, lda, b, ncols, c, ldc)
}

super::multiversion! {
    /// `vdpbf16ps`'s arithmetic: per lane and depth pair, `acc += a_odd * b_odd`, then
    /// `acc += a_even * b_even` (bf16 products are exact in f32, so each step is one
    /// fused multiply-add).
    fn portable_dot(
        m: usize,
        kp: usize,
        a: *const u16,
        lda: usize,
        b: *const u16,
        ncols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let panels = ncols.div_ceil(NR);
        for p in 0..panels {
            let g0 = p / GROUP * GROUP;
            let np = group_panels(g0, panels);
            let bp = unsafe { b.add(g0 * kp * NR + (p - g0) * NR * 2) };
            let step = np * NR * 2;
            let cols = (ncols - p * NR).min(NR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let mut acc = [[0f32; NR]; MR];
                for t in 0..kp / 2 {
                    let bt: &[u16; 2 * NR] = unsafe { &*bp.add(t * step).cast() };
                    for (r, acc_r) in acc.iter_mut().enumerate().take(rows) {
                        let x0 = widen(unsafe { *a.add((i + r) * lda + 2 * t) });
                        let x1 = widen(unsafe { *a.add((i + r) * lda + 2 * t + 1) });
                        for l in 0..NR {
                            acc_r[l] = x1.mul_add(widen(bt[2 * l + 1]), acc_r[l]);
                            acc_r[l] = x0.mul_add(widen(bt[2 * l]), acc_r[l]);
                        }
                    }
                }
                for (r, acc_r) in acc.iter().enumerate().take(rows) {
                    let out = unsafe { std::slice::from_raw_parts_mut(c.add((i + r) * ldc + p * NR), cols) };
                    out.copy_from_slice(&acc_r[..cols]);
                }
                i += rows;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod dot {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    const NP: usize = 4;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm(
        m: usize,
        kp: usize,
        a: *const u16,
        lda: usize,
        b: *const u16,
        ncols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let panels = ncols.div_ceil(NR);
        let mut p = 0;
        while p < panels {
            let np = (panels - p).min(NP);
            let cols = (ncols - p * NR).min(np * NR);
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(MR);
                // SAFETY: within the caller's bounds.
                unsafe {
                    let (a, b, c) = (a.add(i * lda), b.add(p * kp * NR), c.add(i * ldc + p * NR));
                    macro_rules! call {
                        ($($mr:literal),*; $($np:literal),*) => {
                            call!(@rows [$($mr),*] [$($np),*])
                        };
                        (@rows [$($mr:literal),*] $nps:tt) => {
                            match mr { $($mr => call!(@cols $mr $nps),)* _ => unreachable!() }
                        };
                        (@cols $mr:literal [$($np:literal),*]) => {
                            match np { $($np => tile::<$mr, $np>(kp, a, lda, b, cols, c, ldc),)* _ => unreachable!() }
                        };
                    }
                    call!(1, 2, 3, 4, 5, 6; 1, 2, 3, 4);
                }
                i += mr;
            }
            p += np;
        }
    }

    #[inline]
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")]
    unsafe fn tile<const R: usize, const P: usize>(
        kp: usize,
        a: *const u16,
        lda: usize,
        b: *const u16,
        cols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        unsafe {
            for t in 0..kp / 2 {
                let bt = b.add(t * P * NR * 2);
                let mut bv = [_mm512_setzero_si512(); P];
                for (p, v) in bv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(bt.add(p * NR * 2).cast());
                }
                for r in 0..R {
                    let pair = a.add(r * lda + 2 * t).cast::<i32>().read_unaligned();
                    let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                    for p in 0..P {
                        let w: __m512bh = std::mem::transmute(bv[p]);
                        acc[r][p] = _mm512_dpbf16_ps(acc[r][p], x, w);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let row = c.add(r * ldc);
                for (p, &v) in acc_r.iter().enumerate() {
                    let left = cols.saturating_sub(p * NR);
                    if left >= NR {
                        _mm512_storeu_ps(row.add(p * NR), v);
                    } else if left > 0 {
                        let mask: __mmask16 = (1u32 << left).wrapping_sub(1) as __mmask16;
                        _mm512_mask_storeu_ps(row.add(p * NR), mask, v);
                    }
                }
            }
        }
    }
}
