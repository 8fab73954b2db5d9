//! Scaled dot-product attention, one task per (sequence group, head). Many queries
//! (an encoder's 1500) pack the head's keys and values once and run both products in
//! the gemm microkernel over blocks of queries; few queries (a decoder step) read the
//! keys and values where they are, once. Cross-attention keys shared by every
//! sequence are read once for all of them.

use crate::ctx::{Ctx, SharedMut, f32_bytes, mul, zeroed};
use crate::error::{ComputeError, invalid};
use crate::kernels::{self, Level, attention as kern, elementwise, gemm, pack::NR};
use crate::kv_cache::KvCache;
use crate::ops::units;
use crate::scratch;
use crate::tensor::Tensor;

/// Query rows from which a task packs its keys and values.
const PACK_MIN_ROWS: usize = 16;
/// Queries per block of the packed path (a multiple of the microkernel's rows).
const Q_BLOCK: usize = 48;
/// Calls with fewer multiply-adds stay on the calling thread (a decoder step's cached
/// self-attention is ~1 M).
const PARALLEL_MACS: u64 = 1 << 22;

/// The keys (and values) one task attends to.
struct Keys<'a> {
    keys: &'a [f32],
    values: &'a [f32],
    /// Distance between sequences (unused when shared).
    seq_stride: usize,
    /// One sequence for every query sequence (cross-attention).
    shared: bool,
    tk: usize,
}

/// One block of an attention call.
#[derive(Clone, Copy)]
struct Task {
    /// First query row (of `batch * tq`) and how many.
    row0: usize,
    rows: usize,
    /// Key sequence.
    seq: usize,
    /// Heads `h0..h0 + nh`.
    h0: usize,
    nh: usize,
}

/// Keys per block of the few-query path, staged in L1 for every head of the task.
const KEY_BLOCK: usize = 64;

/// Shapes of one call.
struct Plan {
    batch: usize,
    tq: usize,
    width: usize,
    heads: usize,
    causal: bool,
}

impl Plan {
    fn d(&self) -> usize {
        self.width / self.heads
    }

    fn scale(&self) -> f32 {
        1.0 / (self.d() as f32).sqrt()
    }

    /// Blocks of work. Many queries take one head per task (each packs its keys). Few
    /// queries split the heads into `groups` tasks (one per thread that will run), so
    /// each pass over the keys reads long runs of their rows; each head's arithmetic is
    /// the same whatever the grouping, so results do not depend on it.
    fn tasks(&self, keys: &Keys, groups: usize) -> Vec<Task> {
        let rows = self.rows_per_task(keys);
        let per = if rows < PACK_MIN_ROWS {
            self.heads.div_ceil(groups.clamp(1, self.heads))
        } else {
            1
        };
        let mut tasks = Vec::new();
        let seqs = if keys.shared { 1 } else { self.batch };
        for seq in 0..seqs {
            let mut h0 = 0;
            while h0 < self.heads {
                let nh = per.min(self.heads - h0);
                tasks.push(Task {
                    row0: seq * self.tq,
                    rows,
                    seq,
                    h0,
                    nh,
                });
                h0 += nh;
            }
        }
        tasks
    }

    fn rows_per_task(&self, keys: &Keys) -> usize {
        if keys.shared {
            self.batch * self.tq
        } else {
            self.tq
        }
    }

    /// Scratch of one task, in values.
    fn scratch(&self, keys: &Keys) -> usize {
        let (d, tk) = (self.d(), keys.tk);
        let rows = self.rows_per_task(keys);
        if rows >= PACK_MIN_ROWS {
            tk.div_ceil(NR) * NR * d + d.div_ceil(NR) * NR * tk + Q_BLOCK * (tk + 1)
        } else {
            self.heads * (rows * tk + KEY_BLOCK * self.d())
        }
    }

    /// Keys query row `r` (of its sequence) may see.
    fn visible(&self, r: usize, tk: usize) -> usize {
        if self.causal {
            tk - self.tq + (r % self.tq) + 1
        } else {
            tk
        }
    }
}

fn check_heads(width: usize, heads: usize, what: &str) -> Result<(), ComputeError> {
    if heads == 0 || !width.is_multiple_of(heads) {
        return invalid!("{what}: {heads} heads do not divide the width {width}");
    }
    Ok(())
}

/// `[batch, t, width]` or `Invalid`.
fn three(shape: &[usize], what: &str) -> Result<(usize, usize, usize), ComputeError> {
    match *shape {
        [b, t, w] => Ok((b, t, w)),
        _ => invalid!("{what} must be [batch, t, width], it is {shape:?}"),
    }
}

/// Scaled dot-product attention with `heads` heads (see the WIT for the semantics).
pub fn attention(
    ctx: &Ctx,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
) -> Result<Tensor, ComputeError> {
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let (batch, tq, width) = three(qs, "attention q")?;
    let (kb, tk, kw) = three(ks, "attention k")?;
    if ks != vs || kw != width || (kb != batch && kb != 1) {
        return invalid!(
            "attention of q {qs:?} over k {ks:?} and v {vs:?}: k and v must be [{batch} or 1, tk, {width}]"
        );
    }
    check_heads(width, heads, "attention")?;
    if causal && tq > tk {
        return invalid!("causal attention of q {qs:?} over k {ks:?}: more queries than keys");
    }
    let plan = Plan {
        batch,
        tq,
        width,
        heads,
        causal,
    };
    let keys = Keys {
        keys: k.data(),
        values: v.data(),
        seq_stride: tk * width,
        shared: kb == 1 && batch > 1,
        tk,
    };
    run(ctx, q, &plan, &keys)
}

/// Causal self-attention of `q` (`[batch, tq, width]`) over every position in `cache`.
pub fn attention_cached(
    ctx: &Ctx,
    q: &Tensor,
    cache: &KvCache,
    heads: usize,
) -> Result<Tensor, ComputeError> {
    let qs = q.shape();
    let (batch, tq, width) = three(qs, "attention_cached q")?;
    if batch != cache.batch() || width != cache.width() || tq > cache.len() {
        return invalid!(
            "attention_cached of q {qs:?} over a cache of batch {}, width {}, {} positions: q must be [{}, <= {}, {}]",
            cache.batch(),
            cache.width(),
            cache.len(),
            cache.batch(),
            cache.len(),
            cache.width()
        );
    }
    check_heads(width, heads, "attention_cached")?;
    let plan = Plan {
        batch,
        tq,
        width,
        heads,
        causal: true,
    };
    let keys = Keys {
        keys: cache.keys(),
        values: cache.values(),
        seq_stride: cache.seq_stride(),
        shared: false,
        tk: cache.len(),
    };
    run(ctx, q, &plan, &keys)
}

fn run(ctx: &Ctx, q: &Tensor, plan: &Plan, keys: &Keys) -> Result<Tensor, ComputeError> {
    let len = q.len();
    let concurrent = ctx.threads_used() as u64;
    let scratch = f32_bytes(plan.scratch(keys)).saturating_mul(concurrent);
    ctx.reserve(f32_bytes(len).saturating_add(scratch))?;
    let (b, tq, tk, w) = (plan.batch, plan.tq, keys.tk, plan.width);
    let work = units(&[b, tq, tk, w, 2]);
    ctx.charge(work.saturating_add(units(&[b, plan.heads, tq, tk])));
    let mut out = zeroed(len)?;
    let dst = SharedMut::new(&mut out);
    let parallel = work >= PARALLEL_MACS;
    // Per-sequence tasks already give threads enough to share; one shared sequence
    // (cross-attention) splits its heads between the threads.
    let groups = if parallel && keys.shared {
        ctx.threads_used()
    } else {
        1
    };
    let tasks = plan.tasks(keys, groups);
    let level = kernels::level();
    ctx.run_blocks(parallel, tasks.len(), |t| {
        let task = tasks[t];
        let base = if keys.shared {
            0
        } else {
            task.seq * keys.seq_stride
        };
        if task.rows < PACK_MIN_ROWS {
            attend_few(level, plan, q.data(), keys, base, task, dst)
        } else {
            attend(
                ctx,
                level,
                plan,
                q.data(),
                keys,
                base,
                task.row0,
                task.rows,
                task.h0,
                dst,
            )
        }
    })?;
    Ok(Tensor::from_parts(out, q.shape().to_vec()))
}

/// A few-query task: every head of `task` in one pass over blocks of keys (scores),
/// softmax, and one pass over blocks of values.
fn attend_few(
    level: Level,
    plan: &Plan,
    q: &[f32],
    keys: &Keys,
    base: usize,
    task: Task,
    dst: SharedMut<f32>,
) -> Result<(), ComputeError> {
    let (w, d, tk, scale) = (plan.width, plan.d(), keys.tk, plan.scale());
    let Task {
        row0, rows, h0, nh, ..
    } = task;
    // Everything this task reads or writes, checked once.
    let span = (tk - 1) * w + w;
    let (kseq, vseq) = (
        &keys.keys[base..base + span],
        &keys.values[base..base + span],
    );
    assert!((row0 + rows) * w <= q.len() && (row0 + rows) * w <= dst.len() && (h0 + nh) * d <= w);
    let hspan = nh * d;
    scratch::with_f32(nh * rows * tk + KEY_BLOCK * hspan, |buf| {
        let (s, stage) = buf.split_at_mut(nh * rows * tk);
        // Copies keys (or values) kb..kb+nk of this task's heads into `stage`, row
        // after row: one sequential read of memory, which the prefetchers follow
        // (reading each head's slice of every row in place ran at a quarter of the
        // speed), then the kernels read L1.
        // A single query row reads each key once anyway: it reads them in place.
        let staged = rows > 1;
        let fill = |stage: &mut [f32], src: &[f32], kb: usize, nk: usize| {
            for j in 0..nk {
                let from = (kb + j) * w + h0 * d;
                stage[j * hspan..(j + 1) * hspan].copy_from_slice(&src[from..from + hspan]);
            }
        };
        // Where head `hh`'s slice of key (or value) `kb` is, and the distance between
        // rows: in `stage`, or in place.
        let at = |stage: &[f32], src: &[f32], kb: usize, hh: usize| -> (*const f32, usize) {
            if staged {
                (stage[hh * d..].as_ptr(), hspan)
            } else {
                (src[kb * w + (h0 + hh) * d..].as_ptr(), w)
            }
        };
        let mut r = 0;
        while r < rows {
            let g = (rows - r).min(kern::FEW_ROWS);
            let first = row0 + r;
            // Score rows of head `hh`, query `i` at s[(hh * rows + r + i) * tk].
            let srow = |hh: usize| (hh * rows + r) * tk;
            let mut kb = 0;
            while kb < tk {
                let nk = (tk - kb).min(KEY_BLOCK);
                if staged {
                    fill(stage, kseq, kb, nk);
                }
                for hh in 0..nh {
                    let off = (h0 + hh) * d;
                    let (kp, kstride) = at(stage, kseq, kb, hh);
                    // SAFETY: query rows first..first+g lie in the checked span; the
                    // staged keys are nk rows of hspan; `s` holds nh x rows x tk.
                    unsafe {
                        kern::scores(
                            level,
                            g,
                            d,
                            q.as_ptr().add(first * w + off),
                            w,
                            kp,
                            kstride,
                            nk,
                            s.as_mut_ptr().add(srow(hh) + kb),
                            tk,
                        );
                    }
                }
                kb += nk;
            }
            for hh in 0..nh {
                for i in 0..g {
                    let row = &mut s[srow(hh) + i * tk..srow(hh) + (i + 1) * tk];
                    let visible = plan.visible(first + i, tk);
                    elementwise::softmax_in_place(level, &mut row[..visible], scale);
                    row[visible..].fill(0.0);
                }
            }
            let mut kb = 0;
            while kb < tk {
                let nk = (tk - kb).min(KEY_BLOCK);
                if staged {
                    fill(stage, vseq, kb, nk);
                }
                for hh in 0..nh {
                    let off = (h0 + hh) * d;
                    let (vp, vstride) = at(stage, vseq, kb, hh);
                    // SAFETY: as above; the (row, head) segments of the output belong
                    // to this task.
                    unsafe {
                        kern::mix(
                            level,
                            g,
                            d,
                            s.as_ptr().add(srow(hh) + kb),
                            tk,
                            nk,
                            vp,
                            vstride,
                            dst.ptr().add(first * w + off),
                            w,
                            kb > 0,
                        );
                    }
                }
                kb += nk;
            }
            r += g;
        }
    })
}

/// A many-query task: query rows `row0..row0 + rows`, head `h`, keys from `base`.
#[allow(clippy::too_many_arguments)]
fn attend(
    ctx: &Ctx,
    level: Level,
    plan: &Plan,
    q: &[f32],
    keys: &Keys,
    base: usize,
    row0: usize,
    rows: usize,
    h: usize,
    dst: SharedMut<f32>,
) -> Result<(), ComputeError> {
    let (w, d, tk, scale) = (plan.width, plan.d(), keys.tk, plan.scale());
    let off = h * d;
    let kslice = &keys.keys[base + off..base + off + (tk - 1) * w + d];
    let vslice = &keys.values[base + off..base + off + (tk - 1) * w + d];
    assert!(
        (row0 + rows - 1) * w + off + d <= dst.len() && (row0 + rows - 1) * w + off + d <= q.len()
    );
    let tkp = tk.div_ceil(NR) * NR;
    let dp = d.div_ceil(NR) * NR;
    let (kp_len, vp_len) = (tkp * d, dp * tk);
    scratch::with_f32(kp_len + vp_len + Q_BLOCK * tk + Q_BLOCK, |buf| {
        let (kp, rest) = buf.split_at_mut(kp_len);
        let (vp, rest) = rest.split_at_mut(vp_len);
        let (s, inv) = rest.split_at_mut(Q_BLOCK * tk);
        kern::pack_transposed(kslice, w, tk, d, kp);
        kern::pack_rows(vslice, w, tk, d, vp);
        let mut r = 0;
        while r < rows {
            ctx.check_stop()?;
            let n = (rows - r).min(Q_BLOCK);
            let first = row0 + r;
            // SAFETY: `q` holds these rows (asserted above); `s` is n x tk; `kp` is
            // ceil(tk/16) panels of d x 16.
            unsafe {
                gemm::gemm_f32(
                    level,
                    n,
                    d,
                    q.as_ptr().add(first * w + off),
                    w,
                    kp.as_ptr(),
                    tk,
                    s.as_mut_ptr(),
                    tk,
                );
            }
            for (i, srow) in s.chunks_exact_mut(tk).take(n).enumerate() {
                let visible = plan.visible(first + i, tk);
                inv[i] =
                    1.0 / elementwise::softmax_unnormalised(level, &mut srow[..visible], scale);
                srow[visible..].fill(0.0);
            }
            // SAFETY: the output rows first..first+n, columns off..off+d belong to
            // this task; `vp` is ceil(d/16) panels of tk x 16.
            unsafe {
                gemm::gemm_f32(
                    level,
                    n,
                    tk,
                    s.as_ptr(),
                    tk,
                    vp.as_ptr(),
                    d,
                    dst.ptr().add(first * w + off),
                    w,
                );
            }
            for (i, &f) in inv.iter().take(n).enumerate() {
                // SAFETY: as above.
                let o = unsafe { dst.slice((first + i) * w + off, d) };
                elementwise::scale_in_place(level, o, f);
            }
            r += n;
        }
        Ok(())
    })?
}

/// The attention weights of the chosen heads, `[batch, selected.len(), tq, tk]`,
/// softmax-normalised (no mask).
pub fn attention_weights(
    ctx: &Ctx,
    q: &Tensor,
    k: &Tensor,
    heads: usize,
    selected: &[u32],
) -> Result<Tensor, ComputeError> {
    let (qs, ks) = (q.shape(), k.shape());
    let (batch, tq, width) = three(qs, "attention_weights q")?;
    let (kb, tk, kw) = three(ks, "attention_weights k")?;
    if kw != width || (kb != batch && kb != 1) {
        return invalid!(
            "attention_weights of q {qs:?} over k {ks:?}: k must be [{batch} or 1, tk, {width}]"
        );
    }
    check_heads(width, heads, "attention_weights")?;
    if selected.is_empty() {
        return invalid!("attention_weights needs at least one selected head");
    }
    if let Some(&h) = selected.iter().find(|&&h| h as usize >= heads) {
        return invalid!("attention_weights head {h} of {heads}");
    }
    let nsel = selected.len();
    let len = mul(
        mul(
            mul(batch, nsel, "attention_weights")?,
            tq,
            "attention_weights",
        )?,
        tk,
        "attention_weights output",
    )?;
    let d = width / heads;
    let pack = tq >= PACK_MIN_ROWS;
    let scratch = if pack { tk.div_ceil(NR) * NR * d } else { 0 };
    ctx.reserve(
        f32_bytes(len).saturating_add(f32_bytes(scratch).saturating_mul(ctx.threads_used() as u64)),
    )?;
    ctx.charge(units(&[batch, nsel, tq, tk, d]).saturating_add(units(&[batch, nsel, tq, tk])));
    let mut out = zeroed(len)?;
    let dst = SharedMut::new(&mut out);
    let level = kernels::level();
    let scale = 1.0 / (d as f32).sqrt();
    let (qd, kd) = (q.data(), k.data());
    ctx.run_blocks(
        units(&[batch, nsel, tq, tk, d]) >= PARALLEL_MACS,
        batch * nsel,
        |t| {
            let (b, si) = (t / nsel, t % nsel);
            let off = selected[si] as usize * d;
            let kbase = if kb == 1 { 0 } else { b * tk * width };
            let kslice = &kd[kbase + off..];
            let first_out = (b * nsel + si) * tq * tk;
            // SAFETY: each (batch, head) block of the output belongs to one task.
            let block = unsafe { dst.slice(first_out, tq * tk) };
            if pack {
                scratch::with_f32(tk.div_ceil(NR) * NR * d, |kp| {
                    kern::pack_transposed(kslice, width, tk, d, kp);
                    let mut r = 0;
                    while r < tq {
                        ctx.check_stop()?;
                        let n = (tq - r).min(Q_BLOCK);
                        // SAFETY: q rows of sequence b exist; `block` has tq rows of tk.
                        unsafe {
                            gemm::gemm_f32(
                                level,
                                n,
                                d,
                                qd.as_ptr().add((b * tq + r) * width + off),
                                width,
                                kp.as_ptr(),
                                tk,
                                block.as_mut_ptr().add(r * tk),
                                tk,
                            );
                        }
                        r += n;
                    }
                    Ok(())
                })??;
            } else {
                for (i, srow) in block.chunks_exact_mut(tk).enumerate() {
                    let row = (b * tq + i) * width + off;
                    kern::dots(level, &qd[row..row + d], kslice, width, srow);
                }
            }
            for srow in block.chunks_exact_mut(tk) {
                elementwise::softmax_in_place(level, srow, scale);
            }
            Ok(())
        },
    )?;
    Ok(Tensor::from_parts(out, vec![batch, nsel, tq, tk]))
}
