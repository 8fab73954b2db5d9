//! Pieces of attention that are not a packed-weights product: packing one head's keys
//! and values as a `B` operand (for many queries, so the product runs in the gemm
//! microkernel), and row-at-a-time dot products and weighted sums (for few queries,
//! where packing would cost more than it saves: a decoder step reads each key once).

use super::pack::{self, NR};

/// Packs `tk` rows of `d` values (`stride` apart) as panels of `B = rows^T`
/// (`d x tk`, column `j` = row `j`): for `q . k^T`. Padding is left as it was (the
/// products never store what it touches).
pub(crate) fn pack_transposed(src: &[f32], stride: usize, tk: usize, d: usize, out: &mut [f32]) {
    // A panel (16 keys) at a time: its 16 rows stay in L1 while every depth step is
    // written as one contiguous line.
    let panels = tk.div_ceil(NR);
    for p in 0..panels {
        let keys = (tk - p * NR).min(NR);
        let base = pack::index(p * NR, 0, tk, d, 1);
        let step = pack::group_panels(p / pack::GROUP * pack::GROUP, panels) * NR;
        for kk in 0..d {
            let line = &mut out[base + kk * step..base + kk * step + keys];
            for (l, o) in line.iter_mut().enumerate() {
                *o = src[(p * NR + l) * stride + kk];
            }
        }
    }
}

/// Packs `tk` rows of `d` values (`stride` apart) as panels of `B = rows` (`tk x d`):
/// for `p . v`. Each group's depth step is one contiguous run of a row.
pub(crate) fn pack_rows(src: &[f32], stride: usize, tk: usize, d: usize, out: &mut [f32]) {
    let panels = d.div_ceil(NR);
    let mut g0 = 0;
    while g0 < panels {
        let np = pack::group_panels(g0, panels);
        let (c0, cols) = (g0 * NR, (d - g0 * NR).min(np * NR));
        let group = &mut out[g0 * NR * tk..(g0 + np) * NR * tk];
        for j in 0..tk {
            let from = j * stride + c0;
            group[j * np * NR..j * np * NR + cols].copy_from_slice(&src[from..from + cols]);
        }
        g0 += np;
    }
}

super::multiversion! {
    /// `out[j] = q . rows[j]` for `out.len()` rows of `q.len()` values `stride` apart.
    pub(crate) fn dots(q: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
        let d = q.len();
        for (j, o) in out.iter_mut().enumerate() {
            let row = &rows[j * stride..j * stride + d];
            let mut acc = [0f32; 16];
            let chunks = row.chunks_exact(16);
            let tail = chunks.remainder();
            for (c, qc) in chunks.zip(q.chunks_exact(16)) {
                for l in 0..16 {
                    acc[l] = qc[l].mul_add(c[l], acc[l]);
                }
            }
            for (l, (&t, &qv)) in tail.iter().zip(&q[d - tail.len()..]).enumerate() {
                acc[l] = qv.mul_add(t, acc[l]);
            }
            let mut w = 8;
            while w > 0 {
                for l in 0..w {
                    acc[l] += acc[l + w];
                }
                w /= 2;
            }
            *o = acc[0];
        }
    }
}

super::multiversion! {
    /// `out (+)= sum_j p[j] * rows[j]` for `p.len()` rows of `out.len()` values
    /// `stride` apart (`accumulate`: add to `out` rather than overwrite it).
    pub(crate) fn weighted_sum(p: &[f32], rows: &[f32], stride: usize, out: &mut [f32], accumulate: bool) {
        let d = out.len();
        if !accumulate {
            out.fill(0.0);
        }
        for (j, &w) in p.iter().enumerate() {
            let row = &rows[j * stride..j * stride + d];
            for (o, &v) in out.iter_mut().zip(row) {
                *o = w.mul_add(v, *o);
            }
        }
    }
}

/// Rows of queries one few-query pass handles together (each key is read once per
/// pass).
pub(crate) const FEW_ROWS: usize = 6;

/// `s[r * sstride + j] = q_r . k_j` for `rows` (<= FEW_ROWS) queries `qstride` apart
/// and `nk` keys `kstride` apart, `d` values each.
///
/// # Safety
/// `q`, `k` valid for those rows; `s` for `rows` rows of `nk` values `sstride` apart.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn scores(
    level: super::Level,
    rows: usize,
    d: usize,
    q: *const f32,
    qstride: usize,
    k: *const f32,
    kstride: usize,
    nk: usize,
    s: *mut f32,
    sstride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if level == super::Level::Avx512 && d.is_multiple_of(16) && d <= 256 {
        // SAFETY: AVX-512 detected; bounds as promised.
        unsafe { avx512::scores(rows, d, q, qstride, k, kstride, nk, s, sstride) };
        return;
    }
    for r in 0..rows {
        // SAFETY: as promised.
        let (qr, keys, out) = unsafe {
            (
                std::slice::from_raw_parts(q.add(r * qstride), d),
                std::slice::from_raw_parts(k, (nk - 1) * kstride + d),
                std::slice::from_raw_parts_mut(s.add(r * sstride), nk),
            )
        };
        dots(level, qr, keys, kstride, out);
    }
}

/// `out_r (+)= sum_j p[r * pstride + j] v_j` for `rows` (<= FEW_ROWS) rows of weights,
/// `nk` values `vstride` apart, `d` wide; `out` rows `ostride` apart. `accumulate`
/// adds to `out` (a later block of keys) rather than overwriting it.
///
/// # Safety
/// As `scores`, with `out` valid for `rows` rows of `d` that nothing else accesses.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn mix(
    level: super::Level,
    rows: usize,
    d: usize,
    p: *const f32,
    pstride: usize,
    nk: usize,
    v: *const f32,
    vstride: usize,
    out: *mut f32,
    ostride: usize,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if level == super::Level::Avx512 && d.is_multiple_of(16) {
        // SAFETY: AVX-512 detected; bounds as promised.
        unsafe {
            avx512::mix(
                rows, d, p, pstride, nk, v, vstride, out, ostride, accumulate,
            )
        };
        return;
    }
    for r in 0..rows {
        // SAFETY: as promised.
        let (pr, vals, o) = unsafe {
            (
                std::slice::from_raw_parts(p.add(r * pstride), nk),
                std::slice::from_raw_parts(v, (nk - 1) * vstride + d),
                std::slice::from_raw_parts_mut(out.add(r * ostride), d),
            )
        };
        weighted_sum(level, pr, vals, vstride, o, accumulate);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Lane `j` of the result is the sum of the 16 lanes of `v[j]`: four rounds of
    /// shuffles and adds halve the width while doubling the vectors per register,
    /// then one permute puts the sums in order.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    fn hsum16(v: &[__m512; 16]) -> __m512 {
        let mut w = [_mm512_setzero_ps(); 8];
        for i in 0..8 {
            let (a, b) = (v[2 * i], v[2 * i + 1]);
            let lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b);
            let hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b);
            w[i] = _mm512_add_ps(lo, hi);
        }
        let mut x = [_mm512_setzero_ps(); 4];
        for i in 0..4 {
            let (c, e) = (w[2 * i], w[2 * i + 1]);
            let lo = _mm512_shuffle_f32x4::<0b10_00_10_00>(c, e);
            let hi = _mm512_shuffle_f32x4::<0b11_01_11_01>(c, e);
            x[i] = _mm512_add_ps(lo, hi);
        }
        let y0 = _mm512_add_ps(
            _mm512_unpacklo_ps(x[0], x[1]),
            _mm512_unpackhi_ps(x[0], x[1]),
        );
        let y1 = _mm512_add_ps(
            _mm512_unpacklo_ps(x[2], x[3]),
            _mm512_unpackhi_ps(x[2], x[3]),
        );
        let lo = _mm512_castpd_ps(_mm512_unpacklo_pd(
            _mm512_castps_pd(y0),
            _mm512_castps_pd(y1),
        ));
        let hi = _mm512_castpd_ps(_mm512_unpackhi_pd(
            _mm512_castps_pd(y0),
            _mm512_castps_pd(y1),
        ));
        let z = _mm512_add_ps(lo, hi);
        // z[4L + p] holds the sum of v[4p + L].
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        _mm512_permutexvar_ps(idx, z)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn scores(
        rows: usize,
        d: usize,
        q: *const f32,
        qstride: usize,
        k: *const f32,
        kstride: usize,
        tk: usize,
        s: *mut f32,
        sstride: usize,
    ) {
        // SAFETY: as the caller promised; `d` is a multiple of 16 up to 256.
        unsafe {
            macro_rules! call {
                ($($nd:literal),*) => {
                    match d / 16 {
                        $($nd => scores_n::<$nd>(rows, q, qstride, k, kstride, tk, s, sstride),)*
                        _ => unreachable!(),
                    }
                };
            }
            call!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
        }
    }

    /// `scores` for heads of `ND` registers: the query row stays in registers while
    /// 16 keys are multiplied into 16 partial sums, then reduced together.
    #[inline]
    #[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    unsafe fn scores_n<const ND: usize>(
        rows: usize,
        q: *const f32,
        qstride: usize,
        k: *const f32,
        kstride: usize,
        tk: usize,
        s: *mut f32,
        sstride: usize,
    ) {
        let mut j0 = 0;
        while j0 < tk {
            let keys = (tk - j0).min(16);
            for r in 0..rows {
                // SAFETY: rows, keys and dims within the caller's bounds (a short last
                // block repeats its last key; those lanes are not stored).
                unsafe {
                    let qr = q.add(r * qstride);
                    let mut qv = [_mm512_setzero_ps(); ND];
                    for c in 0..ND {
                        qv[c] = _mm512_loadu_ps(qr.add(16 * c));
                    }
                    let mut part = [_mm512_setzero_ps(); 16];
                    for (j, pj) in part.iter_mut().enumerate() {
                        let kj = k.add((j0 + j.min(keys - 1)) * kstride);
                        let mut acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
                        for c in 1..ND {
                            acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kj.add(16 * c)), acc);
                        }
                        *pj = acc;
                    }
                    let sums = hsum16(&part);
                    let mask: __mmask16 = ((1u32 << keys) - 1) as __mmask16;
                    _mm512_mask_storeu_ps(s.add(r * sstride + j0), mask, sums);
                }
            }
            j0 += 16;
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn mix(
        rows: usize,
        d: usize,
        p: *const f32,
        pstride: usize,
        tk: usize,
        v: *const f32,
        vstride: usize,
        out: *mut f32,
        ostride: usize,
        accumulate: bool,
    ) {
        // Up to four registers (64 dims) of `rows` accumulators per pass.
        let mut c0 = 0;
        while c0 < d {
            let nc = ((d - c0) / 16).min(4);
            // SAFETY: within the caller's bounds.
            unsafe {
                let (v, out) = (v.add(c0), out.add(c0));
                macro_rules! call {
                    ($($r:literal),*; $($c:literal),*) => { call!(@rows [$($r),*] [$($c),*]) };
                    (@rows [$($r:literal),*] $cs:tt) => {
                        match rows { $($r => call!(@cols $r $cs),)* _ => unreachable!() }
                    };
                    (@cols $r:literal [$($c:literal),*]) => {
                        match nc { $($c => mix_tile::<$r, $c>(p, pstride, tk, v, vstride, out, ostride, accumulate),)* _ => unreachable!() }
                    };
                }
                call!(1, 2, 3, 4, 5, 6; 1, 2, 3, 4);
            }
            c0 += 16 * nc;
        }
    }

    #[inline]
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn mix_tile<const R: usize, const C: usize>(
        p: *const f32,
        pstride: usize,
        tk: usize,
        v: *const f32,
        vstride: usize,
        out: *mut f32,
        ostride: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        if accumulate {
            for r in 0..R {
                for c in 0..C {
                    // SAFETY: within the caller's bounds.
                    acc[r][c] = unsafe { _mm512_loadu_ps(out.add(r * ostride + 16 * c)) };
                }
            }
        }
        // SAFETY: within the caller's bounds.
        unsafe {
            for j in 0..tk {
                let vj = v.add(j * vstride);
                let mut vv = [_mm512_setzero_ps(); C];
                for c in 0..C {
                    vv[c] = _mm512_loadu_ps(vj.add(16 * c));
                }
                for r in 0..R {
                    let w = _mm512_set1_ps(*p.add(r * pstride + j));
                    for c in 0..C {
                        acc[r][c] = _mm512_fmadd_ps(w, vv[c], acc[r][c]);
                    }
                }
            }
            for r in 0..R {
                for c in 0..C {
                    _mm512_storeu_ps(out.add(r * ostride + 16 * c), acc[r][c]);
                }
            }
        }
    }
}
