//! bf16-weight products with exact `f32` activations: each packed lane holds two
//! depths' weights, which widen to `f32` with one shift or mask (bf16 is the top half
//! of an f32), then ordinary FMAs. For the memory-bound decoder shapes the halved
//! weight traffic is the whole gain; rounding activations too (`vdpbf16ps`) would buy
//! compute the matrix-vector products do not need, at a visible accuracy cost.

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
