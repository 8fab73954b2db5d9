//! Panel layouts of the `B` operand (a linear layer's `W^T`), built once when weights are
//! created, so that every product streams `B` in exactly the order the microkernels
//! read it and never repacks.
//!
//! Columns (rows of `W`) come in panels of 16, panels in groups of 4 (64 columns, one
//! microkernel tile wide; the last group may have fewer panels). Within a group the
//! depth steps are outermost, so a tile reads its whole group as one sequential stream:
//! with a panel per stream the int8 and bf16 decoder products (6 KiB panels) spent
//! their time restarting the hardware prefetcher. Within a depth step, panel by panel,
//! lane (column) by lane, a step's `depth` values:
//!
//! - f32:  depth 1, one 64-byte line per panel and step
//! - bf16: depth 2, pairs of depths in each 32-bit lane (`vdpbf16ps` order)
//! - int8: depth 4, quads of depths in each 32-bit lane (`vpdpbusd` order)
//!
//! Padding (columns to whole panels, depth to whole steps) is zero.

use super::aligned::Aligned;

/// Columns per panel: one AVX-512 register of f32 (two AVX2 ones).
pub(crate) const NR: usize = 16;
/// Panels per group.
pub(crate) const GROUP: usize = 4;

/// Depth rounded up to what a layout groups (1, 2 or 4).
pub(crate) fn padded_depth(k: usize, depth: usize) -> usize {
    k.div_ceil(depth) * depth
}

/// Elements of a packed matrix with `n` columns and padded depth `kp`, or `None` on
/// overflow.
pub(crate) fn packed_len(n: usize, kp: usize) -> Option<usize> {
    n.div_ceil(NR).checked_mul(NR)?.checked_mul(kp)
}

/// Panels of the group that starts at panel `p0` (a multiple of `GROUP`) of a matrix
/// (or block) of `panels` panels.
#[inline(always)]
pub(crate) fn group_panels(p0: usize, panels: usize) -> usize {
    (panels - p0).min(GROUP)
}

/// Where column `j`, depth `kk` of an `n`-column matrix lives.
#[inline(always)]
pub(crate) fn index(j: usize, kk: usize, n: usize, kp: usize, depth: usize) -> usize {
    let p = j / NR;
    let g0 = p / GROUP * GROUP;
    let np = group_panels(g0, n.div_ceil(NR));
    let (s, e) = (kk / depth, kk % depth);
    g0 * NR * kp + s * (np * NR * depth) + (p - g0) * NR * depth + (j % NR) * depth + e
}

/// Packs column `j` = `row(j)` (each `k` values) into `out` for a layout of `depth`,
/// converting each value with `conv`.
pub(crate) fn pack<T: Copy, S: Copy>(
    out: &mut [T],
    n: usize,
    k: usize,
    depth: usize,
    row: impl Fn(usize, &mut [S]),
    conv: impl Fn(S) -> T,
    zero: S,
) {
    let kp = padded_depth(k, depth);
    let mut buf = vec![zero; k];
    for j in 0..n {
        row(j, &mut buf);
        for (kk, &v) in buf.iter().enumerate() {
            out[index(j, kk, n, kp, depth)] = conv(v);
        }
    }
}

/// Packed f32 panels of an `n x k` matrix given row by row.
pub(crate) fn f32_panels(n: usize, k: usize, row: impl Fn(usize, &mut [f32])) -> Option<Aligned> {
    let len = packed_len(n, k)?;
    let mut a = Aligned::zeroed(len.checked_mul(4)?)?;
    pack(a.as_f32_mut(), n, k, 1, row, |v| v, 0.0);
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_a_bijection_onto_the_packed_buffer() {
        for &(n, k, depth) in &[(1, 1, 1), (70, 5, 1), (130, 7, 2), (64, 8, 4), (200, 9, 4)] {
            let kp = padded_depth(k, depth);
            let len = packed_len(n, kp).unwrap();
            let mut seen = vec![false; len];
            for j in 0..n {
                for kk in 0..kp {
                    let i = index(j, kk, n, kp, depth);
                    assert!(!seen[i], "n{n} k{k} d{depth}: ({j},{kk}) collides");
                    seen[i] = true;
                }
            }
        }
    }
}
