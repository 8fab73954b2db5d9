//! Microbenchmark of the Whisper shapes: GFLOP/s (2 flops per multiply-add) at 1 and 2
//! threads for each precision, plus the `gemm` crate on the same f32 products and the
//! machine's measured FMA peak for scale.
//!
//! `cargo run --release -p sandscribe-compute --example kernels [--wall] [filter]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use sandscribe_compute::*;

fn never() -> bool {
    false
}

/// Nanoseconds this thread has spent on a CPU (`CLOCK_THREAD_CPUTIME_ID`, precise), so
/// single-thread figures do not count time other processes took the core.
#[cfg(target_os = "linux")]
fn on_cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a valid out-pointer; the libc function std already links.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.sec as u64 * 1_000_000_000 + ts.nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn on_cpu_ns() -> Option<u64> {
    None
}

/// How a run is timed.
#[derive(Clone, Copy)]
enum Clock<'a> {
    /// Wall time (`--wall`; right on a quiet machine).
    Wall,
    /// CPU time of the critical path: the caller's plus the busiest pool thread's.
    /// Time other processes take the cores does not count, imbalance between the
    /// threads does; only wake-up latency is missed.
    Cpu(Option<&'a rayon::ThreadPool>),
}

/// CPU nanoseconds of the calling thread and of each pool thread.
fn cpu_times(pool: Option<&rayon::ThreadPool>) -> Vec<u64> {
    let mut v = vec![on_cpu_ns().unwrap_or(0)];
    if let Some(p) = pool {
        v.extend(p.broadcast(|_| on_cpu_ns().unwrap_or(0)));
    }
    v
}

/// Best seconds per call (the best, not the median, because other builds share these
/// cores), over batches of calls of at least 2 ms each, for ~0.5 s.
fn time_with(clock: Clock, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let batch = ((2e-3 / once).ceil() as usize).clamp(1, 10_000);
    let mut best = f64::MAX;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 5 || (start.elapsed() < Duration::from_millis(500) && runs < 1000) {
        let pool = match clock {
            Clock::Cpu(p) => p,
            Clock::Wall => None,
        };
        let (w, before) = (Instant::now(), cpu_times(pool));
        for _ in 0..batch {
            f();
        }
        let wall = w.elapsed().as_secs_f64();
        let after = cpu_times(pool);
        let secs = match clock {
            Clock::Wall => wall,
            Clock::Cpu(_) => {
                // The caller sleeps while the pool runs a call's blocks: its own CPU
                // time plus the busiest pool thread's is the critical path.
                let d: Vec<u64> = before
                    .iter()
                    .zip(&after)
                    .map(|(a, b)| b.saturating_sub(*a))
                    .collect();
                (d[0] + d[1..].iter().copied().max().unwrap_or(0)) as f64 * 1e-9
            }
        };
        best = best.min(secs / batch as f64);
        runs += 1;
    }
    best
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 - 0.5) * 0.2
        })
        .collect()
}

struct Row {
    name: String,
    cells: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wall = args.iter().any(|a| a == "--wall");
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let clock_for = |threads: usize| match (wall, threads) {
        (true, _) => Clock::Wall,
        (false, 1) => Clock::Cpu(None),
        (false, _) => Clock::Cpu(Some(&pool)),
    };
    let ctx1 = Ctx::new(1, None, &never, u64::MAX);
    let ctx2 = Ctx::new(2, Some(&pool), &never, u64::MAX);
    println!("kernels: {}", kernel_details());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    let peak = (0..3).map(|_| fma_peak()).fold(0.0, f64::max);
    let bw = (0..3).map(|_| read_bandwidth()).fold(0.0, f64::max);
    println!(
        "measured f32 FMA peak, 1 core: {peak:.1} GFLOP/s; memory read, 1 core: {bw:.1} GB/s\n"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "shape (GFLOP/s)", "f32 1t", "f32 2t", "bf16 1t", "bf16 2t", "int8 1t", "int8 2t"
    );
    let mut rows = Vec::new();
    let linears: [(&str, usize, usize, usize); 7] = [
        ("enc linear x[1500,384]·W[384,384]ᵀ", 1500, 384, 384),
        ("enc fc1 x[1500,384]·W[1536,384]ᵀ", 1500, 384, 1536),
        ("enc fc2 x[1500,1536]·W[384,1536]ᵀ", 1500, 1536, 384),
        ("dec x[5,384]·W[384,384]ᵀ", 5, 384, 384),
        ("dec fc1 x[5,384]·W[1536,384]ᵀ", 5, 384, 1536),
        ("dec fc2 x[5,1536]·W[384,1536]ᵀ", 5, 1536, 384),
        ("dec logits x[5,384]·E[51864,384]ᵀ", 5, 384, 51864),
    ];
    for (name, m, k, n) in linears {
        if !name.contains(&filter) {
            continue;
        }
        let x = Tensor::new(data(m * k, 1), &[m, k]).unwrap();
        let wdata = data(n * k, 2);
        let mut cells = Vec::new();
        for precision in [Precision::Float32, Precision::BFloat16, Precision::Int8] {
            let w = Weights::from_f32(wdata.clone(), &[n, k], precision).unwrap();
            for ctx in [&ctx1, &ctx2] {
                let s = time_with(clock_for(ctx.threads), || {
                    black_box(linear(ctx, &x, &w, None, Activation::None).unwrap());
                });
                let gflops = 2.0 * (m * n * k) as f64 / s / 1e9;
                let gbs = w.bytes() as f64 / s / 1e9;
                cells.push(if m <= 16 {
                    format!("{gflops:.1}|{gbs:.0}")
                } else {
                    format!("{gflops:.1}")
                });
            }
        }
        rows.push(Row {
            name: name.to_string(),
            cells,
        });
        print_row(rows.last().unwrap());
    }
    let convs: [(&str, usize, usize, usize, usize); 2] = [
        ("conv1 x[3000,80]→[3000,384] k3", 3000, 80, 384, 1),
        ("conv2 x[3000,384]→[1500,384] k3 s2", 3000, 384, 384, 2),
    ];
    for (name, time_, cin, cout, stride) in convs {
        if !name.contains(&filter) {
            continue;
        }
        let x = Tensor::new(data(time_ * cin, 3), &[time_, cin]).unwrap();
        let wdata = data(cout * cin * 3, 4);
        let steps = (time_ + 2 - 3) / stride + 1;
        let mut cells = Vec::new();
        for precision in [Precision::Float32, Precision::BFloat16, Precision::Int8] {
            let w = Weights::from_f32(wdata.clone(), &[cout, cin, 3], precision).unwrap();
            for ctx in [&ctx1, &ctx2] {
                let s = time_with(clock_for(ctx.threads), || {
                    black_box(conv1d(ctx, &x, &w, None, stride, 1, Activation::Gelu).unwrap());
                });
                cells.push(format!(
                    "{:.1}",
                    2.0 * (steps * cout * cin * 3) as f64 / s / 1e9
                ));
            }
        }
        rows.push(Row {
            name: name.to_string(),
            cells,
        });
        print_row(rows.last().unwrap());
    }
    // Attention (f32 only: activations are f32).
    let attn: [(&str, usize, usize, usize); 3] = [
        ("enc self-attn q,k,v[1,1500,384] 6 heads", 1, 1500, 1500),
        ("cross-attn q[5,1,384] kv[1,1500,384]", 5, 1, 1500),
        ("cached self-attn q[5,1,384] 448 pos", 5, 1, 448),
    ];
    for (name, batch, tq, tk) in attn {
        if !name.contains(&filter) {
            continue;
        }
        let w = 384;
        let q = Tensor::new(data(batch * tq * w, 5), &[batch, tq, w]).unwrap();
        let flops = 4.0 * (batch * tq * tk * w) as f64;
        let mut cells = Vec::new();
        if name.starts_with("cached") {
            let mut cache = KvCache::new(&ctx1, batch, w, 448).unwrap();
            let kv = Tensor::new(data(batch * tk * w, 6), &[batch, tk, w]).unwrap();
            cache.append(&ctx1, &kv, &kv).unwrap();
            for ctx in [&ctx1, &ctx2] {
                let s = time_with(clock_for(ctx.threads), || {
                    black_box(attention_cached(ctx, &q, &cache, 6).unwrap());
                });
                cells.push(format!("{:.1}", flops / s / 1e9));
            }
        } else {
            let kv = Tensor::new(data(tk * w, 6), &[1, tk, w]).unwrap();
            for ctx in [&ctx1, &ctx2] {
                let s = time_with(clock_for(ctx.threads), || {
                    black_box(attention(ctx, &q, &kv, &kv, 6, false).unwrap());
                });
                cells.push(format!("{:.1}", flops / s / 1e9));
            }
        }
        rows.push(Row {
            name: name.to_string(),
            cells,
        });
        print_row(rows.last().unwrap());
    }
    // The gemm crate on the same f32 products (it packs W^T on every call).
    for (name, m, k, n) in linears {
        if !name.contains(&filter) || !(name.contains("fc1") || name.contains("logits")) {
            continue;
        }
        let x = data(m * k, 1);
        let w = data(n * k, 2);
        let mut out = vec![0f32; m * n];
        let mut cells = Vec::new();
        for par in [gemm::Parallelism::None, gemm::Parallelism::Rayon(2)] {
            let single = matches!(par, gemm::Parallelism::None);
            let s = pool.install(|| {
                time_with(clock_for(if single { 1 } else { 2 }), || unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        out.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        x.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        k as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        par,
                    );
                    black_box(&out);
                })
            });
            cells.push(format!("{:.1}", 2.0 * (m * n * k) as f64 / s / 1e9));
        }
        rows.push(Row {
            name: format!("gemm crate: {name}"),
            cells,
        });
        print_row(rows.last().unwrap());
    }
    println!(
        "\nmatrix-vector cells are GFLOP/s|GB/s of weights streamed; 2t = 2 threads of the pool.\n{}",
        if wall {
            "Timed by wall clock (best of runs)."
        } else {
            "Timed by CPU time, the caller's plus the busiest pool thread's (best of runs), so other\n\
             load on the machine does not count; pass --wall on a quiet machine for wall clock."
        }
    );
}

fn print_row(r: &Row) {
    print!("{:<44}", r.name);
    for c in &r.cells {
        print!(" {c:>9}");
    }
    println!();
}

/// GB/s of one thread summing a 256 MiB buffer (what a weight stream can hope for).
fn read_bandwidth() -> f64 {
    let buf = vec![1u64; 32 << 20];
    let t = on_cpu_ns().unwrap_or(0);
    let mut acc = [0u64; 8];
    for c in buf.chunks_exact(8) {
        for i in 0..8 {
            acc[i] = acc[i].wrapping_add(c[i]);
        }
    }
    black_box(acc);
    let secs = on_cpu_ns().unwrap_or(0).saturating_sub(t) as f64 * 1e-9;
    (buf.len() * 8) as f64 / secs / 1e9
}

/// f32 FMA throughput of one core: 24 independent AVX-512 accumulators.
fn fma_peak() -> f64 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f")]
        fn run(iters: usize) -> f32 {
            use std::arch::x86_64::*;
            let mut acc = [_mm512_set1_ps(0.0); 24];
            let a = _mm512_set1_ps(0.999_99);
            let b = _mm512_set1_ps(1e-7);
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = _mm512_fmadd_ps(*v, a, b);
                }
            }
            let mut s = _mm512_setzero_ps();
            for v in acc {
                s = _mm512_add_ps(s, v);
            }
            _mm512_reduce_add_ps(s)
        }
        black_box(unsafe { run(black_box(5_000_000)) });
        let iters = 20_000_000;
        let t = on_cpu_ns().unwrap_or(0);
        // SAFETY: AVX-512F detected above.
        black_box(unsafe { run(black_box(iters)) });
        let secs = on_cpu_ns().unwrap_or(0).saturating_sub(t) as f64 * 1e-9;
        return (iters * 24 * 32) as f64 / secs / 1e9;
    }
    f64::NAN
}
