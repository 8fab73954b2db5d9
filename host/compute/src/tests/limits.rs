//! Stop polling, allowances, work counts and thread-count equivalence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::reference::Rng;
use crate::*;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn never() -> bool {
    false
}

#[test]
fn a_long_matmul_stops_soon_after_the_flag() {
    // ~40 G multiply-adds: many seconds of work at any speed.
    let (m, k, n) = (6000, 1536, 4096);
    let mut rng = Rng::new(40);
    let x = Tensor::new(rng.vec(m * k, 1.0), &[m, k]).unwrap();
    let w = Weights::from_f32(rng.vec(n * k, 1.0), &[n, k], Precision::Float32).unwrap();
    let p = pool(2);
    for threads in [1, 2] {
        let flag = AtomicBool::new(false);
        let stop = || flag.load(Ordering::Relaxed);
        let ctx = Ctx::new(threads, Some(&p), &stop, u64::MAX);
        let (took, set_at) = std::thread::scope(|s| {
            let setter = s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                flag.store(true, Ordering::Relaxed);
                Instant::now()
            });
            let r = linear(&ctx, &x, &w, None, Activation::None);
            let done = Instant::now();
            assert_eq!(r.unwrap_err(), ComputeError::Stopped);
            let set_at = setter.join().unwrap();
            (done, set_at)
        });
        let late = took.saturating_duration_since(set_at);
        // Unoptimised builds run each ~1 ms block many times slower.
        let bound = Duration::from_millis(if cfg!(debug_assertions) { 2000 } else { 50 });
        assert!(
            late < bound,
            "{threads} threads: stopped {late:?} after the flag"
        );
    }
}

#[test]
fn attention_and_conv_stop_too() {
    let stop = || true;
    let ctx = Ctx::new(1, None, &stop, u64::MAX);
    let q = Tensor::new(vec![0.1; 300 * 64], &[1, 300, 64]).unwrap();
    assert_eq!(
        attention(&ctx, &q, &q, &q, 1, false).unwrap_err(),
        ComputeError::Stopped
    );
    let w = Weights::from_f32(vec![0.1; 64 * 64 * 3], &[64, 64, 3], Precision::Float32).unwrap();
    let x = Tensor::new(vec![0.1; 3000 * 64], &[3000, 64]).unwrap();
    assert_eq!(
        conv1d(&ctx, &x, &w, None, 1, 1, Activation::None).unwrap_err(),
        ComputeError::Stopped
    );
}

#[test]
fn allowances_are_checked_before_allocating() {
    let x = Tensor::new(vec![1.0; 8 * 16], &[8, 16]).unwrap();
    let w = Weights::from_f32(vec![1.0; 32 * 16], &[32, 16], Precision::Float32).unwrap();
    let small = Ctx::new(1, None, &never, 1000);
    assert_eq!(
        linear(&small, &x, &w, None, Activation::None).unwrap_err(),
        ComputeError::OverBudget {
            needed: 8 * 32 * 4,
            allowed: 1000
        }
    );
    assert_eq!(small.work(), 0, "a refused call costs nothing");
    let enough = Ctx::new(1, None, &never, 8 * 32 * 4);
    linear(&enough, &x, &w, None, Activation::None).unwrap();
    // Huge but valid shapes: refused by the allowance, never allocated.
    let tight = Ctx::new(1, None, &never, 1 << 30);
    assert!(matches!(
        KvCache::new(&tight, 1 << 20, 1 << 20, 1 << 10),
        Err(ComputeError::OverBudget { .. })
    ));
    let table = Weights::from_f32(vec![1.0; 4], &[1, 4], Precision::Float32).unwrap();
    let ids = vec![0u32; 1 << 20];
    assert!(matches!(
        embed(&Ctx::new(1, None, &never, 1 << 20), &table, &ids, 1),
        Err(ComputeError::OverBudget { .. })
    ));
    let big = Tensor::new(vec![1.0; 4096], &[1, 4096, 1]).unwrap();
    assert!(matches!(
        attention(
            &Ctx::new(1, None, &never, 20_000),
            &big,
            &big,
            &big,
            1,
            false
        ),
        Err(ComputeError::OverBudget { .. })
    ));
    assert!(matches!(
        big.narrow(&Ctx::new(1, None, &never, 100), 1, 0, 100),
        Err(ComputeError::OverBudget { .. })
    ));
    // An unlimited allowance with an impossible size fails cleanly too.
    assert!(matches!(
        KvCache::new(&Ctx::unlimited(), 1 << 24, 1 << 24, 1 << 10),
        Err(ComputeError::Invalid(_) | ComputeError::OverBudget { .. })
    ));
}

#[test]
fn work_depends_on_shapes_only() {
    let x = Tensor::new(vec![1.0; 5 * 384], &[5, 1, 384]).unwrap();
    let w = Weights::from_f32(vec![0.5; 1536 * 384], &[1536, 384], Precision::Float32).unwrap();
    let p = pool(2);
    let mut seen = Vec::new();
    for threads in [1, 2, 1] {
        let ctx = Ctx::new(threads, Some(&p), &never, u64::MAX);
        linear(&ctx, &x, &w, None, Activation::Gelu).unwrap();
        seen.push(ctx.work());
    }
    assert_eq!(seen[0], 5 * 1536 * 384 + 5 * 1536);
    assert!(seen.iter().all(|&w| w == seen[0]));
}

/// The same call at 1, 2 and 3 threads gives the same bits.
#[test]
fn results_do_not_depend_on_threads() {
    let p = pool(3);
    let mut rng = Rng::new(50);
    let big_x = Tensor::new(rng.vec(300 * 384, 1.0), &[300, 384]).unwrap();
    let dec_x = Tensor::new(rng.vec(5 * 384, 1.0), &[5, 1, 384]).unwrap();
    type Case = Box<dyn Fn(&Ctx) -> Tensor>;
    let mut cases: Vec<(String, Case)> = Vec::new();
    for precision in [Precision::Float32, Precision::BFloat16, Precision::Int8] {
        let w = Weights::from_f32(rng.vec(1536 * 384, 0.1), &[1536, 384], precision).unwrap();
        let b = Weights::from_f32(rng.vec(1536, 0.1), &[1536], Precision::Float32).unwrap();
        let (bx, dx) = (big_x.clone(), dec_x.clone());
        cases.push((
            format!("linear {precision:?}"),
            Box::new(move |c| {
                let a = linear(c, &bx, &w, Some(&b), Activation::Gelu).unwrap();
                let d = linear(c, &dx, &w, Some(&b), Activation::None).unwrap();
                Tensor::new([a.data(), d.data()].concat(), &[a.len() + d.len()]).unwrap()
            }),
        ));
    }
    let convw = Weights::from_f32(
        rng.vec(384 * 80 * 3, 0.1),
        &[384, 80, 3],
        Precision::Float32,
    )
    .unwrap();
    let mel = Tensor::new(rng.vec(600 * 80, 1.0), &[600, 80]).unwrap();
    cases.push((
        "conv1d".into(),
        Box::new(move |c| conv1d(c, &mel, &convw, None, 2, 1, Activation::Gelu).unwrap()),
    ));
    let q = Tensor::new(rng.vec(200 * 384, 1.0), &[1, 200, 384]).unwrap();
    let q5 = Tensor::new(rng.vec(5 * 384, 1.0), &[5, 1, 384]).unwrap();
    cases.push((
        "attention".into(),
        Box::new(move |c| {
            let a = attention(c, &q, &q, &q, 6, false).unwrap();
            let b = attention(c, &q5, &q, &q, 6, false).unwrap();
            Tensor::new([a.data(), b.data()].concat(), &[a.len() + b.len()]).unwrap()
        }),
    ));
    let ln_x = Tensor::new(rng.vec(1500 * 384, 1.0), &[1500, 384]).unwrap();
    let g = Weights::from_f32(rng.vec(384, 1.0), &[384], Precision::Float32).unwrap();
    cases.push((
        "layer_norm".into(),
        Box::new(move |c| layer_norm(c, &ln_x, &g, &g, 1e-5).unwrap()),
    ));
    for (name, case) in &cases {
        let one = case(&Ctx::new(1, None, &never, u64::MAX));
        for threads in [2, 3] {
            let many = case(&Ctx::new(threads, Some(&p), &never, u64::MAX));
            assert!(
                one.data() == many.data(),
                "{name}: {threads} threads differ from 1"
            );
        }
    }
}

/// Every block of a big call runs on at most `threads` pool threads.
#[test]
fn a_call_uses_at_most_its_threads() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    let p = pool(3);
    let seen = Mutex::new(HashSet::new());
    let stop = || {
        seen.lock().unwrap().insert(std::thread::current().id());
        false
    };
    let ctx = Ctx::new(2, Some(&p), &stop, u64::MAX);
    let x = Tensor::new(vec![1.0; 600 * 384], &[600, 384]).unwrap();
    let w = Weights::from_f32(vec![0.5; 1536 * 384], &[1536, 384], Precision::Float32).unwrap();
    linear(&ctx, &x, &w, None, Activation::None).unwrap();
    let n = seen.lock().unwrap().len();
    assert!((1..=2).contains(&n), "{n} threads polled");
    let single = Ctx::new(1, Some(&p), &stop, u64::MAX);
    seen.lock().unwrap().clear();
    linear(&single, &x, &w, None, Activation::None).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        HashSet::from([std::thread::current().id()])
    );
}
