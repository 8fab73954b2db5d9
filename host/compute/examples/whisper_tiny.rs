//! Whisper tiny.en's encoder (one 30 s window) and decoder steps (beam 5) built from
//! this crate's ops with random weights of the real shapes: where the time of a
//! transcription goes, per precision and thread count, without the sandbox.
//!
//! `cargo run --release -p sandscribe-compute --example whisper_tiny [--wall]`
//!
//! Times are CPU time: the calling thread's plus the busiest pool thread's (the caller
//! sleeps while the pool works), so other load on the machine does not count; `--wall`
//! for wall clock on a quiet machine. `f32`, `bf16`, `int8`, `1t`, `2t` select rows.

use std::hint::black_box;
use std::time::Instant;

use sandscribe_compute::*;

const WIDTH: usize = 384;
const HEADS: usize = 6;
const FFN: usize = 1536;
const LAYERS: usize = 4;
const VOCAB: usize = 51864;
const BEAM: usize = 5;
const STEPS: usize = 100;

fn never() -> bool {
    false
}

fn data(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale
        })
        .collect()
}

struct Linear {
    w: Weights,
    b: Option<Weights>,
}

fn linear_w(out: usize, inp: usize, bias: bool, p: Precision, seed: u32) -> Linear {
    let scale = 1.0 / (inp as f32).sqrt();
    Linear {
        w: Weights::from_f32(data(out * inp, seed, scale), &[out, inp], p).unwrap(),
        b: bias.then(|| vector(out, seed + 1, 0.02)),
    }
}

fn vector(n: usize, seed: u32, scale: f32) -> Weights {
    Weights::from_f32(data(n, seed, scale), &[n], Precision::Float32).unwrap()
}

fn ones(n: usize) -> Weights {
    Weights::from_f32(vec![1.0; n], &[n], Precision::Float32).unwrap()
}

struct Block {
    ln1: (Weights, Weights),
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: (Weights, Weights),
    cq: Linear,
    ck: Linear,
    cv: Linear,
    co: Linear,
    ln3: (Weights, Weights),
    fc1: Linear,
    fc2: Linear,
}

fn block(p: Precision, seed: u32) -> Block {
    let ln = || (ones(WIDTH), vector(WIDTH, seed, 0.0));
    Block {
        ln1: ln(),
        q: linear_w(WIDTH, WIDTH, true, p, seed + 10),
        k: linear_w(WIDTH, WIDTH, false, p, seed + 20),
        v: linear_w(WIDTH, WIDTH, true, p, seed + 30),
        o: linear_w(WIDTH, WIDTH, true, p, seed + 40),
        ln2: ln(),
        cq: linear_w(WIDTH, WIDTH, true, p, seed + 50),
        ck: linear_w(WIDTH, WIDTH, false, p, seed + 60),
        cv: linear_w(WIDTH, WIDTH, true, p, seed + 70),
        co: linear_w(WIDTH, WIDTH, true, p, seed + 80),
        ln3: ln(),
        fc1: linear_w(FFN, WIDTH, true, p, seed + 90),
        fc2: linear_w(WIDTH, FFN, true, p, seed + 100),
    }
}

fn lin(c: &Ctx, x: &Tensor, l: &Linear, act: Activation) -> Tensor {
    linear(c, x, &l.w, l.b.as_ref(), act).unwrap()
}

fn ln(c: &Ctx, x: &Tensor, w: &(Weights, Weights)) -> Tensor {
    layer_norm(c, x, &w.0, &w.1, 1e-5).unwrap()
}

struct Model {
    conv1: Weights,
    conv2: Weights,
    cb: Weights,
    enc_pos: Weights,
    enc: Vec<Block>,
    enc_ln: (Weights, Weights),
    dec: Vec<Block>,
    dec_pos: Weights,
    dec_ln: (Weights, Weights),
    embed: Weights,
}

fn model(p: Precision) -> Model {
    Model {
        conv1: Weights::from_f32(data(WIDTH * 80 * 3, 1, 0.06), &[WIDTH, 80, 3], p).unwrap(),
        conv2: Weights::from_f32(data(WIDTH * WIDTH * 3, 2, 0.03), &[WIDTH, WIDTH, 3], p).unwrap(),
        cb: vector(WIDTH, 3, 0.02),
        enc_pos: Weights::from_f32(
            data(1500 * WIDTH, 4, 0.1),
            &[1500, WIDTH],
            Precision::Float32,
        )
        .unwrap(),
        enc: (0..LAYERS as u32)
            .map(|l| block(p, 1000 * (l + 1)))
            .collect(),
        enc_ln: (ones(WIDTH), vector(WIDTH, 5, 0.0)),
        dec: (0..LAYERS as u32)
            .map(|l| block(p, 7000 * (l + 1)))
            .collect(),
        dec_pos: Weights::from_f32(data(448 * WIDTH, 6, 0.1), &[448, WIDTH], Precision::Float32)
            .unwrap(),
        dec_ln: (ones(WIDTH), vector(WIDTH, 7, 0.0)),
        embed: Weights::from_f32(data(VOCAB * WIDTH, 8, 0.05), &[VOCAB, WIDTH], p).unwrap(),
    }
}

fn encode(c: &Ctx, m: &Model, mel: &Tensor) -> Tensor {
    let x = conv1d(c, mel, &m.conv1, Some(&m.cb), 1, 1, Activation::Gelu).unwrap();
    let x = conv1d(c, &x, &m.conv2, Some(&m.cb), 2, 1, Activation::Gelu).unwrap();
    let x = x.reshape(c, &[1, 1500, WIDTH]).unwrap();
    let mut x = add_positions(c, &x, &m.enc_pos, 0).unwrap();
    for b in &m.enc {
        let h = ln(c, &x, &b.ln1);
        let (q, k, v) = (
            lin(c, &h, &b.q, Activation::None),
            lin(c, &h, &b.k, Activation::None),
            lin(c, &h, &b.v, Activation::None),
        );
        let a = attention(c, &q, &k, &v, HEADS, false).unwrap();
        x = add(c, &x, &lin(c, &a, &b.o, Activation::None)).unwrap();
        let h = ln(c, &x, &b.ln3);
        let f = lin(
            c,
            &lin(c, &h, &b.fc1, Activation::Gelu),
            &b.fc2,
            Activation::None,
        );
        x = add(c, &x, &f).unwrap();
    }
    ln(c, &x, &m.enc_ln)
}

/// Cross-attention keys and values of every decoder layer (once per window).
fn cross_kv(c: &Ctx, m: &Model, enc: &Tensor) -> Vec<(Tensor, Tensor)> {
    m.dec
        .iter()
        .map(|b| {
            (
                lin(c, enc, &b.ck, Activation::None),
                lin(c, enc, &b.cv, Activation::None),
            )
        })
        .collect()
}

/// CPU nanoseconds of the calling thread per part of a decoder step (one thread only).
#[derive(Default)]
struct Parts {
    linears: u64,
    self_attn: u64,
    cross_attn: u64,
    logits: u64,
    other: u64,
}

fn part<T>(slot: &mut u64, f: impl FnOnce() -> T) -> T {
    let t = on_cpu_ns();
    let r = f();
    *slot += on_cpu_ns() - t;
    r
}

#[allow(clippy::too_many_arguments)]
fn step(
    c: &Ctx,
    m: &Model,
    kv: &[(Tensor, Tensor)],
    caches: &mut [KvCache],
    ids: &[u32],
    pos: usize,
    p: &mut Parts,
) -> Tensor {
    let x = part(&mut p.other, || embed(c, &m.embed, ids, BEAM).unwrap());
    let mut x = part(&mut p.other, || {
        add_positions(c, &x, &m.dec_pos, pos).unwrap()
    });
    for ((b, (ck, cv)), cache) in m.dec.iter().zip(kv).zip(caches.iter_mut()) {
        let h = part(&mut p.other, || ln(c, &x, &b.ln1));
        let (q, k, v) = part(&mut p.linears, || {
            (
                lin(c, &h, &b.q, Activation::None),
                lin(c, &h, &b.k, Activation::None),
                lin(c, &h, &b.v, Activation::None),
            )
        });
        let a = part(&mut p.self_attn, || {
            cache.append(c, &k, &v).unwrap();
            attention_cached(c, &q, cache, HEADS).unwrap()
        });
        let o = part(&mut p.linears, || lin(c, &a, &b.o, Activation::None));
        x = part(&mut p.other, || add(c, &x, &o).unwrap());
        let h = part(&mut p.other, || ln(c, &x, &b.ln2));
        let q = part(&mut p.linears, || lin(c, &h, &b.cq, Activation::None));
        let a = part(&mut p.cross_attn, || {
            attention(c, &q, ck, cv, HEADS, false).unwrap()
        });
        let o = part(&mut p.linears, || lin(c, &a, &b.co, Activation::None));
        x = part(&mut p.other, || add(c, &x, &o).unwrap());
        let h = part(&mut p.other, || ln(c, &x, &b.ln3));
        let f = part(&mut p.linears, || {
            lin(
                c,
                &lin(c, &h, &b.fc1, Activation::Gelu),
                &b.fc2,
                Activation::None,
            )
        });
        x = part(&mut p.other, || add(c, &x, &f).unwrap());
    }
    let x = part(&mut p.other, || ln(c, &x, &m.dec_ln));
    part(&mut p.logits, || {
        linear(c, &x, &m.embed, None, Activation::None).unwrap()
    })
}

#[cfg(target_os = "linux")]
fn on_cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a valid out-pointer (3 = CLOCK_THREAD_CPUTIME_ID).
    unsafe { clock_gettime(3, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

#[cfg(not(target_os = "linux"))]
fn on_cpu_ns() -> u64 {
    0
}

/// Seconds of `f`: wall, or CPU time of the busiest thread (caller or pool).
fn timed(wall: bool, pool: Option<&rayon::ThreadPool>, f: impl FnOnce()) -> f64 {
    let snap = || {
        let mut v = vec![on_cpu_ns()];
        if let Some(p) = pool {
            v.extend(p.broadcast(|_| on_cpu_ns()));
        }
        v
    };
    let (w, before) = (Instant::now(), snap());
    f();
    let (secs, after) = (w.elapsed().as_secs_f64(), snap());
    if wall {
        return secs;
    }
    // The caller sleeps while the pool runs a call's blocks, so the critical path is
    // the caller's own CPU time plus that of the busiest pool thread.
    let d: Vec<u64> = before
        .iter()
        .zip(&after)
        .map(|(a, b)| b.saturating_sub(*a))
        .collect();
    (d[0] + d[1..].iter().copied().max().unwrap_or(0)) as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wall = args.iter().any(|a| a == "--wall");
    let pick = |name: &str, all: &[&str]| {
        let chosen: Vec<&String> = args.iter().filter(|a| all.contains(&a.as_str())).collect();
        chosen.is_empty() || chosen.iter().any(|a| *a == name)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    println!(
        "kernels: {}; timing: {}",
        kernel_details(),
        if wall {
            "wall clock"
        } else {
            "CPU time (caller + busiest pool thread)"
        }
    );
    println!(
        "{:<10} {:>8} {:>14} {:>16} {:>14} {:>18}",
        "precision", "threads", "encode (ms)", "cross k/v (ms)", "step (ms)", "window+100 steps"
    );
    let mel = Tensor::new(data(3000 * 80, 9, 1.0), &[3000, 80]).unwrap();
    for (p, name) in [
        (Precision::Float32, "f32"),
        (Precision::BFloat16, "bf16"),
        (Precision::Int8, "int8"),
    ] {
        if !pick(name, &["f32", "bf16", "int8"]) {
            continue;
        }
        let m = model(p);
        for threads in [1, 2] {
            if !pick(&format!("{threads}t"), &["1t", "2t"]) {
                continue;
            }
            let pool_ref = (threads > 1).then_some(&pool);
            let c = Ctx::new(threads, pool_ref, &never, u64::MAX);
            black_box(encode(&c, &m, &mel));
            let enc_s = (0..3)
                .map(|_| {
                    timed(wall, pool_ref, || {
                        black_box(encode(&c, &m, &mel));
                    })
                })
                .fold(f64::MAX, f64::min);
            let enc = encode(&c, &m, &mel);
            let mut kv = Vec::new();
            let kv_s = timed(wall, pool_ref, || kv = cross_kv(&c, &m, &enc));
            let mut best_step = f64::MAX;
            let mut parts = Parts::default();
            for _ in 0..2 {
                parts = Parts::default();
                let mut caches: Vec<KvCache> = (0..LAYERS)
                    .map(|_| KvCache::new(&c, BEAM, WIDTH, 448).unwrap())
                    .collect();
                let ids = [50257u32; BEAM];
                let s = timed(wall, pool_ref, || {
                    for pos in 0..STEPS {
                        black_box(step(&c, &m, &kv, &mut caches, &ids, pos, &mut parts));
                    }
                });
                best_step = best_step.min(s / STEPS as f64);
            }
            println!(
                "{:<10} {:>8} {:>14.1} {:>16.1} {:>14.2} {:>18.0}",
                format!("{p:?}"),
                threads,
                enc_s * 1e3,
                kv_s * 1e3,
                best_step * 1e3,
                (enc_s + kv_s + best_step * STEPS as f64) * 1e3
            );
            if threads == 1 {
                let ms = |ns: u64| ns as f64 / STEPS as f64 * 1e-6;
                println!(
                    "{:<19} step parts (ms): linears {:.2}, self-attn {:.2}, cross-attn {:.2}, logits {:.2}, norms/adds/embed {:.2}",
                    "",
                    ms(parts.linears),
                    ms(parts.self_attn),
                    ms(parts.cross_attn),
                    ms(parts.logits),
                    ms(parts.other)
                );
            }
        }
    }
}
