//! f32 products `C = A · B` with `B` in packed panels (`kernels::pack`).
//!
//! Why not the `gemm` crate, which the team would rather use: its kernels are fine, but
//! it packs `B` on every call (a linear layer's weights are immutable, so we pack once
//! at load), it has no way to poll a stop flag or to fuse a bias and GELU into the
//! tile that is still in cache, and its decoder shapes (5 rows x 51864 columns) go
//! through its general kernel with 16-row tiles mostly empty. `examples/kernels.rs`
//! prints both side by side. The microkernel here is the classic broadcast form:
//! a 6-row x 64-column tile of `C` lives in 24 AVX-512 registers, each depth step
//! loads 4 lines of `B` and broadcasts 6 values of `A`.

use super::Level;
use super::pack::{GROUP, NR, group_panels};

/// Rows of `A` per microkernel tile.
pub(crate) const MR: usize = 6;
/// Panels per microkernel tile (AVX-512: 4 x 16 = 64 columns).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const NP: usize = 4;

/// `C[i][j] = sum_kk A[i][kk] * B[kk][j]` for `i < m`, `j < ncols`.
///
/// # Safety
/// `a` is valid for `m` rows of `k` values `lda` apart; `b` for `ceil(ncols / 16)`
/// panels of `k * 16` values (panel `p` at `b + p * k * 16`); `c` for `m` rows of
/// `ncols` values `ldc` apart, which nothing else accesses during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_f32(
    level: Level,
    m: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ncols: usize,
    c: *mut f32,
    ldc: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if level == Level::Avx512 {
        // SAFETY: AVX-512 detected; pointers as the caller promised.
        unsafe { avx512::gemm(m, k, a, lda, b, ncols, c, ldc) };
        return;
    }
    portable_gemm(level, m, k, a, lda, b, ncols, c, ldc)
}

super::multiversion! {
    /// One panel (16 columns) at a time, `MR` rows: LLVM keeps the 6 x 16 tile in
    /// registers (12 AVX2 ones) and vectorises the lanes.
    fn portable_gemm(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ncols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let panels = ncols.div_ceil(NR);
        for p in 0..panels {
            let g0 = p / GROUP * GROUP;
            let np = group_panels(g0, panels);
            // Panel p: step kk at bp + kk * step.
            let bp = unsafe { b.add(g0 * k * NR + (p - g0) * NR) };
            let step = np * NR;
            let cols = (ncols - p * NR).min(NR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let mut acc = [[0f32; NR]; MR];
                for kk in 0..k {
                    let bv: &[f32; NR] = unsafe { &*bp.add(kk * step).cast() };
                    for (r, acc_r) in acc.iter_mut().enumerate().take(rows) {
                        let x = unsafe { *a.add((i + r) * lda + kk) };
                        for l in 0..NR {
                            acc_r[l] = x.mul_add(bv[l], acc_r[l]);
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
    use super::{MR, NP, NR};
    const _: () = assert!(NP == super::GROUP);
    use std::arch::x86_64::*;

    /// Tiles of up to `MR` rows x `NP` panels; edge tiles use smaller instances.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gemm(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
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
                // SAFETY: within the caller's bounds (row i.., panels p..p+np).
                unsafe {
                    // Groups before p are full, so this one starts at p * k * 16.
                    let (a, b, c) = (a.add(i * lda), b.add(p * k * NR), c.add(i * ldc + p * NR));
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
        b: *const f32,
        cols: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        unsafe {
            for kk in 0..k {
                // One depth step of the group: P lines, contiguous.
                let bk = b.add(kk * P * NR);
                let mut bv = [_mm512_setzero_ps(); P];
                for (p, v) in bv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(bk.add(p * NR));
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * lda + kk));
                    for p in 0..P {
                        acc_r[p] = _mm512_fmadd_ps(x, bv[p], acc_r[p]);
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
