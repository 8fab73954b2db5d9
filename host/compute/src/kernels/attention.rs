//! Pieces of attention that are not a packed-weights product: packing one head's keys
//! and values as a `B` operand (for many queries, so the product runs in the gemm
//! microkernel), and row-at-a-time dot products and weighted sums (for few queries,
//! where packing would cost more than it saves: a decoder step reads each key once).

use super::pack::NR;

/// Packs `tk` rows of `d` values (`stride` apart) as panels of `B = rows^T`
/// (`d x tk`, column `j` = row `j`): for `q . k^T`.
pub(crate) fn pack_transposed(src: &[f32], stride: usize, tk: usize, d: usize, out: &mut [f32]) {
    for j in 0..tk {
        let row = &src[j * stride..j * stride + d];
        let (p, l) = (j / NR, j % NR);
        let base = p * NR * d + l;
        for (kk, &v) in row.iter().enumerate() {
            out[base + kk * NR] = v;
        }
    }
}

/// Packs `tk` rows of `d` values (`stride` apart) as panels of `B = rows` (`tk x d`):
/// for `p . v`.
pub(crate) fn pack_rows(src: &[f32], stride: usize, tk: usize, d: usize, out: &mut [f32]) {
    for p in 0..d.div_ceil(NR) {
        let cols = (d - p * NR).min(NR);
        let panel = &mut out[p * NR * tk..(p + 1) * NR * tk];
        for j in 0..tk {
            let from = j * stride + p * NR;
            panel[j * NR..j * NR + cols].copy_from_slice(&src[from..from + cols]);
        }
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
    /// `out = sum_j p[j] * rows[j]` for `p.len()` rows of `out.len()` values `stride`
    /// apart.
    pub(crate) fn weighted_sum(p: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
        let d = out.len();
        out.fill(0.0);
        for (j, &w) in p.iter().enumerate() {
            let row = &rows[j * stride..j * stride + d];
            for (o, &v) in out.iter_mut().zip(row) {
                *o = w.mul_add(v, *o);
            }
        }
    }
}
