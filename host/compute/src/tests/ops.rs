//! Every op against its reference, on small shapes with odd sizes.

use super::reference::{self as r, Rng, assert_close};
use crate::*;

fn ctx() -> Ctx<'static> {
    Ctx::unlimited()
}

fn w32(data: &[f32], shape: &[usize]) -> Weights {
    Weights::from_f32(data.to_vec(), shape, Precision::Float32).unwrap()
}

#[test]
fn linear_matches_reference_on_odd_shapes() {
    let mut rng = Rng::new(1);
    for &(m, k, n) in &[
        (1, 1, 1),
        (1, 17, 15),
        (2, 3, 16),
        (5, 64, 17),
        (7, 100, 70),
        (13, 33, 130),
        (50, 384, 65),
        (64, 20, 300),
    ] {
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(n * k, 0.5);
        let b = rng.vec(n, 0.5);
        for (bias, act) in [
            (false, Activation::None),
            (true, Activation::None),
            (true, Activation::Gelu),
            (false, Activation::Gelu),
        ] {
            let tx = Tensor::new(x.clone(), &[m, k]).unwrap();
            let bw = w32(&b, &[n]);
            let got = linear(&ctx(), &tx, &w32(&w, &[n, k]), bias.then_some(&bw), act).unwrap();
            assert_eq!(got.shape(), &[m, n]);
            let want = r::linear(
                &x,
                m,
                k,
                &w,
                n,
                bias.then_some(&b[..]),
                act == Activation::Gelu,
            );
            assert_close(
                got.data(),
                &want,
                1e-5,
                1e-5,
                &format!("linear {m}x{k}x{n} bias={bias} {act:?}"),
            );
        }
    }
}

#[test]
fn linear_keeps_leading_axes() {
    let mut rng = Rng::new(2);
    let x = rng.vec(5 * 24, 1.0);
    let w = rng.vec(7 * 24, 1.0);
    let got = linear(
        &ctx(),
        &Tensor::new(x.clone(), &[5, 1, 24]).unwrap(),
        &w32(&w, &[7, 24]),
        None,
        Activation::None,
    )
    .unwrap();
    assert_eq!(got.shape(), &[5, 1, 7]);
    assert_close(
        got.data(),
        &r::linear(&x, 5, 24, &w, 7, None, false),
        1e-5,
        1e-5,
        "3-D linear",
    );
}

#[test]
fn conv1d_matches_reference() {
    let mut rng = Rng::new(3);
    for &(time, cin, cout, kernel, stride, pad) in &[
        (10, 3, 5, 3, 1, 1),
        (11, 4, 17, 3, 2, 1),
        (9, 2, 3, 1, 1, 0),
        (30, 8, 33, 3, 2, 1),
        (7, 5, 6, 4, 3, 2),
        (3, 1, 1, 3, 1, 0),
    ] {
        let x = rng.vec(time * cin, 1.0);
        let w = rng.vec(cout * cin * kernel, 0.5);
        let b = rng.vec(cout, 0.5);
        let bw = w32(&b, &[cout]);
        let got = conv1d(
            &ctx(),
            &Tensor::new(x.clone(), &[time, cin]).unwrap(),
            &w32(&w, &[cout, cin, kernel]),
            Some(&bw),
            stride,
            pad,
            Activation::Gelu,
        )
        .unwrap();
        let steps = (time + 2 * pad - kernel) / stride + 1;
        assert_eq!(got.shape(), &[steps, cout]);
        let want = r::conv1d(&x, time, cin, &w, cout, kernel, Some(&b), stride, pad, true);
        assert_close(
            got.data(),
            &want,
            1e-5,
            1e-5,
            &format!("conv {time}x{cin}->{cout} k{kernel} s{stride} p{pad}"),
        );
        let batched = conv1d(
            &ctx(),
            &Tensor::new(x.clone(), &[1, time, cin]).unwrap(),
            &w32(&w, &[cout, cin, kernel]),
            Some(&bw),
            stride,
            pad,
            Activation::Gelu,
        )
        .unwrap();
        assert_eq!(batched.shape(), &[1, steps, cout]);
        assert_eq!(batched.data(), got.data());
    }
}

#[test]
fn layer_norm_matches_reference() {
    let mut rng = Rng::new(4);
    for &(rows, n) in &[(1, 1), (3, 7), (5, 384), (2, 17)] {
        let x: Vec<f32> = rng.vec(rows * n, 3.0).iter().map(|v| v + 100.0).collect();
        let g = rng.vec(n, 1.0);
        let b = rng.vec(n, 1.0);
        let got = layer_norm(
            &ctx(),
            &Tensor::new(x.clone(), &[rows, n]).unwrap(),
            &w32(&g, &[n]),
            &w32(&b, &[n]),
            1e-5,
        )
        .unwrap();
        assert_close(
            got.data(),
            &r::layer_norm(&x, n, &g, &b, 1e-5),
            1e-4,
            1e-4,
            &format!("layer_norm {rows}x{n}"),
        );
    }
}

#[test]
fn add_broadcasts_over_leading_axes() {
    let a = Tensor::new((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
    let same = add(&ctx(), &a, &a).unwrap();
    assert_eq!(same.data()[23], 46.0);
    let row = Tensor::new(vec![1.0, 2.0, 3.0, 4.0], &[4]).unwrap();
    let got = add(&ctx(), &a, &row).unwrap();
    assert_eq!(got.shape(), &[2, 3, 4]);
    assert_eq!(&got.data()[..8], &[1.0, 3.0, 5.0, 7.0, 5.0, 7.0, 9.0, 11.0]);
    let plane = Tensor::new(vec![0.5; 12], &[3, 4]).unwrap();
    assert_eq!(add(&ctx(), &a, &plane).unwrap().data()[13], 13.5);
}

#[test]
fn add_positions_and_embed_read_the_right_rows() {
    let (positions, f) = (9, 19);
    let table: Vec<f32> = (0..positions * f).map(|v| v as f32).collect();
    for precision in [Precision::Float32, Precision::BFloat16] {
        let w = Weights::from_f32(table.clone(), &[positions, f], precision).unwrap();
        let x = Tensor::new(vec![1.0; 2 * 3 * f], &[2, 3, f]).unwrap();
        let got = add_positions(&ctx(), &x, &w, 4).unwrap();
        for b in 0..2 {
            for t in 0..3 {
                for c in 0..f {
                    let want = crate::weights::round_bf16(((4 + t) * f + c) as f32);
                    let want = if precision == Precision::Float32 {
                        ((4 + t) * f + c) as f32
                    } else {
                        want
                    };
                    assert_eq!(got.data()[(b * 3 + t) * f + c], want + 1.0);
                }
            }
        }
        let e = embed(&ctx(), &w, &[8, 0, 3, 3], 2).unwrap();
        assert_eq!(e.shape(), &[2, 2, f]);
        let first = if precision == Precision::Float32 {
            (8 * f) as f32
        } else {
            crate::weights::round_bf16((8 * f) as f32)
        };
        assert_eq!(e.data()[0], first);
        assert_eq!(e.data()[f], 0.0);
        assert_eq!(e.data()[2 * f + 1], (3 * f + 1) as f32);
    }
}

#[test]
fn packed_rows_read_back() {
    let mut rng = Rng::new(5);
    for &(n, k) in &[(1, 1), (17, 3), (70, 33), (130, 5), (200, 64)] {
        let data = rng.vec(n * k, 1.0);
        let ids: Vec<u32> = (0..n as u32).rev().collect();
        for precision in [Precision::Float32, Precision::BFloat16, Precision::Int8] {
            let w = Weights::from_f32(data.clone(), &[n, k], precision).unwrap();
            let e = embed(&ctx(), &w, &ids, 1).unwrap();
            for (i, &id) in ids.iter().enumerate() {
                let row = &data[id as usize * k..(id as usize + 1) * k];
                let amax = row.iter().fold(0f32, |a, v| a.max(v.abs()));
                let tol = match precision {
                    Precision::Float32 => 0.0,
                    Precision::BFloat16 => amax / 256.0,
                    Precision::Int8 => amax / 254.0 + 1e-6,
                };
                for (g, want) in e.data()[i * k..(i + 1) * k].iter().zip(row) {
                    assert!(
                        (g - want).abs() <= tol,
                        "{precision:?} {n}x{k} row {id}: {g} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn weights_from_bytes_read_each_dtype() {
    let vals = [1.5f32, -2.25, 0.0, 3.0, 7.0, -0.5];
    let f32b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f16b: Vec<u8> = vals
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
        .collect();
    let bf16b: Vec<u8> = vals
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes())
        .collect();
    for (bytes, dtype) in [
        (&f32b, FileDtype::F32),
        (&f16b, FileDtype::F16),
        (&bf16b, FileDtype::Bf16),
    ] {
        let w = Weights::from_bytes(bytes, dtype, &[2, 3], Precision::Float32).unwrap();
        assert_eq!(w.shape(), &[2, 3]);
        let e = embed(&ctx(), &w, &[1, 0], 1).unwrap();
        assert_eq!(e.data(), &[3.0, 7.0, -0.5, 1.5, -2.25, 0.0], "{dtype:?}");
        let v = Weights::from_bytes(bytes, dtype, &[6], Precision::Float32).unwrap();
        assert_eq!(v.vector().unwrap(), &vals);
        assert!(v.bytes() >= 24 && w.bytes() >= 24);
    }
}

#[allow(clippy::too_many_arguments)]
fn attention_case(
    batch: usize,
    tq: usize,
    kb: usize,
    tk: usize,
    width: usize,
    heads: usize,
    causal: bool,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let q = rng.vec(batch * tq * width, 1.0);
    let k = rng.vec(kb * tk * width, 1.0);
    let v = rng.vec(kb * tk * width, 1.0);
    let (probs, want) = r::attention(&q, &k, &v, batch, tq, kb, tk, width, heads, causal);
    let tq_ = Tensor::new(q.clone(), &[batch, tq, width]).unwrap();
    let tk_ = Tensor::new(k.clone(), &[kb, tk, width]).unwrap();
    let tv_ = Tensor::new(v.clone(), &[kb, tk, width]).unwrap();
    let got = attention(&ctx(), &tq_, &tk_, &tv_, heads, causal).unwrap();
    assert_eq!(got.shape(), &[batch, tq, width]);
    let what = format!("attention b{batch} tq{tq} kb{kb} tk{tk} w{width} h{heads} causal={causal}");
    assert_close(got.data(), &want, 2e-5, 2e-5, &what);
    if !causal {
        let sel = [heads as u32 - 1, 0];
        let aw = attention_weights(&ctx(), &tq_, &tk_, heads, &sel).unwrap();
        assert_eq!(aw.shape(), &[batch, 2, tq, tk]);
        let mut want_p = Vec::new();
        for b in 0..batch {
            for &h in &sel {
                let from = ((b * heads + h as usize) * tq) * tk;
                want_p.extend_from_slice(&probs[from..from + tq * tk]);
            }
        }
        assert_close(
            aw.data(),
            &want_p,
            1e-6,
            1e-5,
            &format!("weights of {what}"),
        );
    }
}

#[test]
fn attention_few_queries() {
    attention_case(1, 1, 1, 1, 8, 2, false, 10);
    attention_case(5, 1, 1, 37, 24, 3, false, 11);
    attention_case(5, 1, 5, 19, 24, 3, true, 12);
    attention_case(2, 3, 2, 7, 10, 2, true, 13);
    attention_case(3, 4, 1, 33, 20, 4, false, 14);
    // Head sizes the SIMD few-query kernels take (multiples of 16), odd key counts.
    attention_case(5, 1, 1, 37, 128, 2, false, 15);
    attention_case(5, 1, 1, 1500, 384, 6, false, 16);
    attention_case(2, 3, 2, 17, 96, 3, true, 17);
    attention_case(1, 1, 1, 1, 16, 1, false, 18);
    attention_case(7, 2, 1, 5, 320, 1, true, 19);
}

#[test]
fn attention_many_queries() {
    attention_case(1, 40, 1, 40, 32, 2, false, 20);
    attention_case(1, 50, 1, 70, 20, 4, true, 21);
    attention_case(2, 17, 2, 23, 18, 3, false, 22);
    attention_case(3, 6, 1, 100, 64, 1, false, 23);
    attention_case(1, 100, 1, 99, 128, 2, false, 24);
    // Shared keys, many rows, causal: the mask follows each sequence's own positions.
    attention_case(2, 20, 1, 30, 32, 2, true, 25);
}

#[test]
fn cached_attention_equals_causal_attention() {
    cached_case(3, 24, 2, 9);
    cached_case(5, 128, 2, 20);
}

fn cached_case(batch: usize, width: usize, heads: usize, steps: usize) {
    let mut rng = Rng::new(30);
    let c = ctx();
    let mut cache = KvCache::new(&c, batch, width, steps + 2).unwrap();
    let mut all_k = vec![Vec::new(); batch];
    let mut all_v = vec![Vec::new(); batch];
    for step in 0..steps {
        let t = if step == 0 { 3 } else { 1 };
        let k = rng.vec(batch * t * width, 1.0);
        let v = rng.vec(batch * t * width, 1.0);
        let q = rng.vec(batch * t * width, 1.0);
        for b in 0..batch {
            all_k[b].extend_from_slice(&k[b * t * width..(b + 1) * t * width]);
            all_v[b].extend_from_slice(&v[b * t * width..(b + 1) * t * width]);
        }
        cache
            .append(
                &c,
                &Tensor::new(k, &[batch, t, width]).unwrap(),
                &Tensor::new(v, &[batch, t, width]).unwrap(),
            )
            .unwrap();
        let got = attention_cached(
            &c,
            &Tensor::new(q.clone(), &[batch, t, width]).unwrap(),
            &cache,
            heads,
        )
        .unwrap();
        let len = cache.len();
        let kf: Vec<f32> = all_k.concat();
        let vf: Vec<f32> = all_v.concat();
        let (_, want) = r::attention(&q, &kf, &vf, batch, t, batch, len, width, heads, true);
        assert_close(
            got.data(),
            &want,
            2e-5,
            2e-5,
            &format!("cached step {step}"),
        );
    }
    // Beam reorder: sequence i continues sources[i] (with repeats), then shrink and grow.
    for sources in [vec![2u32, 2, 0], vec![1, 0], vec![0, 0, 1, 1, 0]] {
        cache.reorder(&c, &sources).unwrap();
        all_k = sources.iter().map(|&s| all_k[s as usize].clone()).collect();
        all_v = sources.iter().map(|&s| all_v[s as usize].clone()).collect();
        let b = sources.len();
        assert_eq!(cache.batch(), b);
        let q = rng.vec(b * width, 1.0);
        let got = attention_cached(
            &c,
            &Tensor::new(q.clone(), &[b, 1, width]).unwrap(),
            &cache,
            heads,
        )
        .unwrap();
        let (_, want) = r::attention(
            &q,
            &all_k.concat(),
            &all_v.concat(),
            b,
            1,
            b,
            cache.len(),
            width,
            heads,
            true,
        );
        assert_close(
            got.data(),
            &want,
            2e-5,
            2e-5,
            &format!("after reorder {sources:?}"),
        );
    }
    cache.reset(&c, 7).unwrap();
    assert_eq!((cache.len(), cache.batch()), (0, 7));
    assert!(cache.bytes() >= (2 * 7 * (steps + 2) * width * 4) as u64);
}

#[test]
fn tensor_reshape_and_narrow() {
    let c = ctx();
    let t = Tensor::new((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
    let r = t.reshape(&c, &[6, 4]).unwrap();
    assert_eq!(r.shape(), &[6, 4]);
    assert_eq!(r.data(), t.data());
    let n = t.narrow(&c, 1, 1, 2).unwrap();
    assert_eq!(n.shape(), &[2, 2, 4]);
    assert_eq!(&n.data()[..4], &[4.0, 5.0, 6.0, 7.0]);
    assert_eq!(&n.data()[8..12], &[16.0, 17.0, 18.0, 19.0]);
    let last = t.narrow(&c, 2, 3, 1).unwrap();
    assert_eq!(last.data(), &[3.0, 7.0, 11.0, 15.0, 19.0, 23.0]);
    assert_eq!(t.bytes(), 96);
}

#[test]
fn kernels_reports_the_dispatch() {
    let k = kernels();
    assert!(["avx512", "avx2", "neon", "scalar"].contains(&k), "{k}");
    assert!(kernel_details().starts_with(k));
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
        assert_eq!(k, "avx512");
    }
}
