//! Reduced precisions against f32, and every SIMD level against the portable code.

use super::reference::{self as r, Rng, rel_error};
use crate::kernels::{self, Level, levels};
use crate::*;

fn ctx() -> Ctx<'static> {
    Ctx::unlimited()
}

/// Relative (Frobenius) error of `precision` against the exact product, for
/// Whisper-like data (weights ~N(0, 0.05), activations with a few large features).
fn linear_error(precision: Precision, m: usize, k: usize, n: usize, seed: u64) -> f64 {
    let mut rng = Rng::new(seed);
    let mut x = rng.vec(m * k, 1.0);
    for i in (0..x.len()).step_by(97) {
        x[i] *= 8.0;
    }
    let w = rng.vec(n * k, 0.05);
    let b = rng.vec(n, 0.1);
    let got = linear(
        &ctx(),
        &Tensor::new(x.clone(), &[m, k]).unwrap(),
        &Weights::from_f32(w.clone(), &[n, k], precision).unwrap(),
        Some(&Weights::from_f32(b.clone(), &[n], Precision::Float32).unwrap()),
        Activation::None,
    )
    .unwrap();
    rel_error(got.data(), &r::linear(&x, m, k, &w, n, Some(&b), false))
}

#[test]
fn bf16_and_int8_stay_close_to_f32() {
    for &(m, k, n) in &[(5, 384, 384), (37, 384, 130), (3, 1536, 70), (64, 33, 17)] {
        let f = linear_error(Precision::Float32, m, k, n, 60);
        let b = linear_error(Precision::BFloat16, m, k, n, 60);
        let i = linear_error(Precision::Int8, m, k, n, 60);
        eprintln!("relative error {m}x{k}x{n}: f32 {f:.2e}, bf16 {b:.2e}, int8 {i:.2e}");
        assert!(f < 1e-6, "f32 {m}x{k}x{n}: {f}");
        assert!(b < 5e-3, "bf16 {m}x{k}x{n}: {b}");
        assert!(i < 3e-2, "int8 {m}x{k}x{n}: {i}");
        assert!(b > f && i > f, "reduced precisions really are reduced");
    }
}

#[test]
fn reduced_precision_conv_stays_close() {
    let mut rng = Rng::new(61);
    let (time, cin, cout) = (50, 80, 64);
    let x = rng.vec(time * cin, 1.0);
    let w = rng.vec(cout * cin * 3, 0.05);
    let want = r::conv1d(&x, time, cin, &w, cout, 3, None, 2, 1, false);
    for (precision, bound) in [(Precision::BFloat16, 5e-3), (Precision::Int8, 2e-2)] {
        let got = conv1d(
            &ctx(),
            &Tensor::new(x.clone(), &[time, cin]).unwrap(),
            &Weights::from_f32(w.clone(), &[cout, cin, 3], precision).unwrap(),
            None,
            2,
            1,
            Activation::None,
        )
        .unwrap();
        let e = rel_error(got.data(), &want);
        assert!(e < bound, "{precision:?} conv: {e}");
    }
}

#[test]
fn int8_vectors_and_embeddings_round_per_row() {
    let table: Vec<f32> = (0..40).map(|v| v as f32 - 20.0).collect();
    let w = Weights::from_f32(table.clone(), &[4, 10], Precision::Int8).unwrap();
    assert_eq!(w.precision(), Precision::Int8);
    assert!(
        w.bytes()
            < Weights::from_f32(table.clone(), &[4, 10], Precision::Float32)
                .unwrap()
                .bytes()
    );
    let e = embed(&ctx(), &w, &[0, 3], 1).unwrap();
    for (g, want) in e.data()[..10].iter().zip(&table[..10]) {
        assert!(
            (g - want).abs() <= 20.0 / 127.0 / 2.0 + 1e-6,
            "{g} vs {want}"
        );
    }
}

/// Packed panels for a kernel-level test.
fn matrix(rng: &mut Rng, n: usize, k: usize, precision: Precision) -> Weights {
    Weights::from_f32(rng.vec(n * k, 0.5), &[n, k], precision).unwrap()
}

#[test]
fn every_level_gives_the_portable_bits() {
    let mut rng = Rng::new(70);
    for &(m, k, n) in &[
        (1, 1, 1),
        (5, 384, 70),
        (13, 17, 33),
        (6, 64, 130),
        (29, 7, 200),
    ] {
        let a = rng.vec(m * k, 1.0);
        for precision in [Precision::Float32, Precision::BFloat16, Precision::Int8] {
            let w = matrix(&mut rng, n, k, precision);
            let mat = w.matrix().unwrap();
            let run = |level: Level, vnni: bool| -> Vec<f32> {
                let mut c = vec![f32::NAN; m * n];
                let (kp, cp) = (mat.kp, c.as_mut_ptr());
                // SAFETY: shapes as built above.
                unsafe {
                    match &mat.data {
                        crate::weights::Packed::F32(b) => kernels::gemm::gemm_f32(
                            level,
                            m,
                            k,
                            a.as_ptr(),
                            k,
                            b.as_f32().as_ptr(),
                            n,
                            cp,
                            n,
                        ),
                        crate::weights::Packed::Bf16(b) => kernels::bf16::gemm_bf16(
                            level,
                            m,
                            k,
                            a.as_ptr(),
                            k,
                            b.as_u16().as_ptr(),
                            n,
                            cp,
                            n,
                        ),
                        crate::weights::Packed::Int8 { q, scales, comp } => {
                            let mut qa = vec![0u8; m * kp];
                            let mut sa = vec![0f32; m];
                            kernels::int8::quantize_rows(level, &a, k, m, k, kp, &mut qa, &mut sa);
                            kernels::int8::gemm_i8(
                                level,
                                vnni,
                                m,
                                kp,
                                qa.as_ptr(),
                                kp,
                                sa.as_ptr(),
                                q.as_i8().as_ptr(),
                                comp.as_ptr(),
                                scales.as_ptr(),
                                n,
                                cp,
                                n,
                            )
                        }
                    }
                }
                c
            };
            let base = run(Level::Portable, false);
            if let crate::weights::Packed::Bf16(b) = &mat.data {
                // The rounded-activation path (many rows): vdpbf16ps against its emulation.
                let kp = mat.kp;
                let mut ra = vec![0u16; m * kp];
                kernels::bf16::round_rows(Level::Portable, &a, k, m, k, kp, &mut ra);
                let dot = |level: Level, hw: bool| {
                    let mut c = vec![f32::NAN; m * n];
                    // SAFETY: shapes as built above.
                    unsafe {
                        kernels::bf16::gemm_bf16_dot(
                            level,
                            hw,
                            m,
                            kp,
                            ra.as_ptr(),
                            kp,
                            b.as_u16().as_ptr(),
                            n,
                            c.as_mut_ptr(),
                            n,
                        )
                    };
                    c
                };
                let want = dot(Level::Portable, false);
                assert!(want.iter().all(|v| v.is_finite()));
                for level in levels() {
                    let got = dot(level, kernels::cpu().bf16);
                    assert!(
                        got == want,
                        "bf16 dot {m}x{k}x{n} at {level:?} differs from its emulation"
                    );
                }
            }
            assert!(base.iter().all(|v| v.is_finite()), "every output written");
            for level in levels() {
                for vnni in [false, kernels::cpu().vnni] {
                    let got = run(level, vnni);
                    assert!(
                        got == base,
                        "{precision:?} {m}x{k}x{n} at {level:?} (vnni {vnni}) differs from portable"
                    );
                }
            }
        }
    }
}
