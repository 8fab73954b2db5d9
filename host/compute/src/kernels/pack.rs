//! Panel layouts of the `B` operand (a linear layer's `W^T`), built once when weights are
//! created, so that every product streams `B` in exactly the order the microkernels
//! read it and never repacks: panel `p` holds output columns `16p..16p+16` (rows of
//! `W`), depth-major, padded with zeros to whole panels.
//!
//! - f32:  `[k][16]`      one 64-byte line per depth step
//! - bf16: `[k/2][16][2]` pairs of depths in each 32-bit lane (`vdpbf16ps` order)
//! - int8: `[k/4][16][4]` quads of depths in each 32-bit lane (`vpdpbusd` order)

use super::aligned::Aligned;

/// Columns per panel: one AVX-512 register of f32 (two AVX2 ones).
pub(crate) const NR: usize = 16;

/// Depth rounded up to what a layout groups (1, 2 or 4).
pub(crate) fn padded_depth(k: usize, group: usize) -> usize {
    k.div_ceil(group) * group
}

/// Elements of a packed matrix with `n` columns and padded depth `kp`, or `None` on
/// overflow.
pub(crate) fn packed_len(n: usize, kp: usize) -> Option<usize> {
    n.div_ceil(NR).checked_mul(NR)?.checked_mul(kp)
}

/// Where column `j`, depth `kk` lives, for a layout grouping `group` depths per lane.
#[inline(always)]
pub(crate) fn index(j: usize, kk: usize, kp: usize, group: usize) -> usize {
    let (p, l) = (j / NR, j % NR);
    let (q, e) = (kk / group, kk % group);
    p * NR * kp + q * NR * group + l * group + e
}

/// Packs column `j` = `rows(j)` (each `k` values) into `out` for a layout grouping
/// `group` depths, converting each value with `conv`.
pub(crate) fn pack<T: Copy, S: Copy>(
    out: &mut [T],
    n: usize,
    k: usize,
    group: usize,
    row: impl Fn(usize, &mut [S]),
    conv: impl Fn(S) -> T,
    zero: S,
) {
    let kp = padded_depth(k, group);
    let mut buf = vec![zero; k];
    for j in 0..n {
        row(j, &mut buf);
        for (kk, &v) in buf.iter().enumerate() {
            out[index(j, kk, kp, group)] = conv(v);
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
