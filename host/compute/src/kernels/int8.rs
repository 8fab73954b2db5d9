//! int8 products: activations quantised per row on the fly (symmetric, `max|x|/127`)
//! times int8 weights with a scale per output row, accumulated exactly in `i32`.
//!
//! Hand-written because no crate on crates.io offers a maintained int8 GEMM with
//! runtime VNNI dispatch. With AVX-512 VNNI, `vpdpbusd` multiplies unsigned by signed
//! bytes, so activations are stored as `q + 128` and each column's `128 * sum(w)` is
//! subtracted once at the end; the other levels compute `sum((u - 128) * w)` directly.
//! Both give the same integers, so every level gives the same bits.

use super::Level;
use super::pack::{GROUP, NR, group_panels};
use crate::kernels::elementwise::ROUND_MAGIC;
use crate::kernels::gemm::MR;

super::multiversion! {
    /// Quantises `m` rows of `k` values (`lda` apart) into `out` (`m` rows of `kp`
    /// bytes, `q + 128`, zero-padded depths at 128) and their scales.
    pub(crate) fn quantize_rows(x: &[f32], lda: usize, m: usize, k: usize, kp: usize, out: &mut [u8], scales: &mut [f32]) {
        for i in 0..m {
            let row = &x[i * lda..i * lda + k];
            let mut acc = [0f32; 16];
            let chunks = row.chunks_exact(16);
            let tail = chunks.remainder();
            for c in chunks {
                for l in 0..16 {
                    acc[l] = acc[l].max(c[l].abs());
                }
            }
            for (l, &t) in tail.iter().enumerate() {
                acc[l] = acc[l].max(t.abs());
            }
            let amax = acc.iter().fold(0f32, |a, &b| a.max(b));
            let (scale, inv) = if amax > 0.0 && amax.is_finite() { (amax / 127.0, 127.0 / amax) } else { (1.0, 1.0) };
            scales[i] = scale;
            let dst = &mut out[i * kp..(i + 1) * kp];
            for (d, &v) in dst.iter_mut().zip(row) {
                let y = (v * inv).clamp(-127.0, 127.0);
                let y = if y.is_nan() { 0.0 } else { y };
                // Rounds to nearest even; see `ROUND_MAGIC`.
                let q = (y + ROUND_MAGIC).to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
                *d = q.wrapping_add(128) as u8;
            }
            for d in &mut dst[k..] {
                *d = 128;
            }
        }
    }
}

/// `C[i][j] = (sum_kk qa[i][kk] qb[kk][j]) * sa[i] * sb[j]` for `i < m`, `j < ncols`.
///
/// # Safety
/// `a`: `m` rows of `kp` bytes `lda` apart; `b`: `ceil(ncols/16)` int8 panels of
/// `kp * 16` bytes; `comp`, `sb`: `ceil(ncols/16) * 16` values; `sa`: `m` values; `c`:
/// `m` rows of `ncols` values `ldc` apart that nothing else accesses.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_i8(
    level: Level,
    vnni: bool,
    m: usize,
    kp: usize,
    a: *const u8,
    lda: usize,
    sa: *const f32,
    b: *const i8,
    comp: *const i32,
    sb: *const f32,
    ncols: usize,
    c: *mut f32,
    ldc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if vnni && level == Level::Avx512 {
        // SAFETY: VNNI detected; pointers as promised.
        unsafe { vnni::gemm(m, kp, a, lda, sa, b, comp, sb, ncols, c, ldc) };
        return;
    }
    let _ = (vnni, comp);
    portable_gemm(level, m, kp, a, lda, sa, b, sb, ncols, c, ldc)
}

super::multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn portable_gemm(
        m: usize,
        kp: usize,
        a: *const u8,
        lda: usize,
        sa: *const f32,
        b: *const i8,
        sb: *const f32,
        ncols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let panels = ncols.div_ceil(NR);
        for p in 0..panels {
            let g0 = p / GROUP * GROUP;
            let np = group_panels(g0, panels);
            // Panel p: quad q at bp + q * step.
            let bp = unsafe { b.add(g0 * kp * NR + (p - g0) * NR * 4) };
            let step = np * NR * 4;
            let cols = (ncols - p * NR).min(NR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let mut acc = [[0i32; NR]; MR];
                for q in 0..kp / 4 {
                    let bq: &[i8; 4 * NR] = unsafe { &*bp.add(q * step).cast() };
                    for (r, acc_r) in acc.iter_mut().enumerate().take(rows) {
                        let av: &[u8; 4] = unsafe { &*a.add((i + r) * lda + 4 * q).cast() };
                        for l in 0..NR {
                            let mut s = 0i32;
                            for e in 0..4 {
                                s += (i32::from(av[e]) - 128) * i32::from(bq[4 * l + e]);
                            }
                            acc_r[l] += s;
                        }
                    }
                }
                for (r, acc_r) in acc.iter().enumerate().take(rows) {
                    let s = unsafe { *sa.add(i + r) };
                    for (l, &v) in acc_r.iter().enumerate().take(cols) {
                        unsafe { *c.add((i + r) * ldc + p * NR + l) = v as f32 * (s * *sb.add(p * NR + l)) };
                    }
                }
                i += rows;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    const NP: usize = 4;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm(
        m: usize,
        kp: usize,
        a: *const u8,
        lda: usize,
        sa: *const f32,
        b: *const i8,
        comp: *const i32,
        sb: *const f32,
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
                    let (a, sa) = (a.add(i * lda), sa.add(i));
                    let (b, comp, sb) = (b.add(p * kp * NR), comp.add(p * NR), sb.add(p * NR));
                    let c = c.add(i * ldc + p * NR);
                    macro_rules! call {
                        ($($mr:literal),*; $($np:literal),*) => {
                            call!(@rows [$($mr),*] [$($np),*])
                        };
                        (@rows [$($mr:literal),*] $nps:tt) => {
                            match mr { $($mr => call!(@cols $mr $nps),)* _ => unreachable!() }
                        };
                        (@cols $mr:literal [$($np:literal),*]) => {
                            match np { $($np => tile::<$mr, $np>(kp, a, lda, sa, b, comp, sb, cols, c, ldc),)* _ => unreachable!() }
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
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const P: usize>(
        kp: usize,
        a: *const u8,
        lda: usize,
        sa: *const f32,
        b: *const i8,
        comp: *const i32,
        sb: *const f32,
        cols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm512_setzero_si512(); P]; R];
        unsafe {
            for q in 0..kp / 4 {
                // One quad step of the group: P lines, contiguous.
                let bq = b.add(q * P * NR * 4);
                let mut bv = [_mm512_setzero_si512(); P];
                for (p, v) in bv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(bq.add(p * NR * 4).cast());
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x =
                        _mm512_set1_epi32(a.add(r * lda + 4 * q).cast::<i32>().read_unaligned());
                    for p in 0..P {
                        acc_r[p] = _mm512_dpbusd_epi32(acc_r[p], x, bv[p]);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let s = _mm512_set1_ps(*sa.add(r));
                let row = c.add(r * ldc);
                for (p, &v) in acc_r.iter().enumerate() {
                    let left = cols.saturating_sub(p * NR);
                    if left == 0 {
                        continue;
                    }
                    let exact = _mm512_sub_epi32(v, _mm512_loadu_si512(comp.add(p * NR).cast()));
                    let scale = _mm512_mul_ps(s, _mm512_loadu_ps(sb.add(p * NR)));
                    let y = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), scale);
                    if left >= NR {
                        _mm512_storeu_ps(row.add(p * NR), y);
                    } else {
                        let mask: __mmask16 = (1u32 << left).wrapping_sub(1) as __mmask16;
                        _mm512_mask_storeu_ps(row.add(p * NR), mask, y);
                    }
                }
            }
        }
    }
}
