//! Every wrong call is `Invalid` with a message naming the shapes, never a panic.

use crate::*;

fn ctx() -> Ctx<'static> {
    Ctx::unlimited()
}

fn t(shape: &[usize]) -> Tensor {
    Tensor::new(vec![0.5; shape.iter().product()], shape).unwrap()
}

fn w(shape: &[usize]) -> Weights {
    Weights::from_f32(
        vec![0.25; shape.iter().product()],
        shape,
        Precision::Float32,
    )
    .unwrap()
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(r: Result<T, ComputeError>, needle: &str) {
    match r {
        Err(ComputeError::Invalid(msg)) => {
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}")
        }
        other => panic!("expected Invalid containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn tensors_and_weights() {
    invalid(Tensor::new(vec![1.0; 5], &[2, 3]), "[2, 3]");
    invalid(Tensor::new(vec![], &[0]), "empty axis");
    invalid(Tensor::new(vec![1.0], &[]), "axes");
    invalid(Tensor::new(vec![1.0], &[1; 9]), "axes");
    invalid(Tensor::new(vec![1.0], &[usize::MAX, 2]), "too large");
    invalid(Tensor::new(vec![1.0], &[1 << 40, 1 << 30]), "too large");
    invalid(
        Weights::from_f32(vec![1.0; 5], &[2, 3], Precision::Float32),
        "[2, 3]",
    );
    invalid(
        Weights::from_f32(vec![1.0], &[1, 1, 1, 1], Precision::Float32),
        "axes",
    );
    invalid(
        Weights::from_bytes(&[0; 7], FileDtype::F32, &[2], Precision::Float32),
        "need 8 bytes",
    );
    invalid(
        Weights::from_bytes(
            &[0; 8],
            FileDtype::F16,
            &[usize::MAX / 2, 3],
            Precision::Int8,
        ),
        "too large",
    );
    invalid(
        Weights::from_f32(vec![f32::NAN, 1.0], &[1, 2], Precision::Int8),
        "non-finite",
    );
    invalid(
        Weights::from_f32(vec![0.0; 65_537], &[1, 65_537], Precision::Int8),
        "65536",
    );
    let x = t(&[2, 3, 4]);
    invalid(x.reshape(&ctx(), &[5, 5]), "[2, 3, 4]");
    invalid(x.reshape(&ctx(), &[0, 24]), "empty");
    invalid(x.narrow(&ctx(), 3, 0, 1), "axis 3");
    invalid(x.narrow(&ctx(), 1, 2, 2), "size 3");
    invalid(x.narrow(&ctx(), 1, 0, 0), "axis 1");
    invalid(x.narrow(&ctx(), 1, usize::MAX, 2), "axis 1");
}

#[test]
fn linear_and_conv() {
    let c = ctx();
    invalid(
        linear(&c, &t(&[2, 5]), &w(&[3, 4]), None, Activation::None),
        "[2, 5]",
    );
    invalid(
        linear(&c, &t(&[2, 4]), &w(&[12]), None, Activation::None),
        "[12]",
    );
    invalid(
        linear(&c, &t(&[2, 4]), &w(&[3, 2, 2]), None, Activation::None),
        "[3, 2, 2]",
    );
    invalid(
        linear(
            &c,
            &t(&[2, 4]),
            &w(&[3, 4]),
            Some(&w(&[4])),
            Activation::None,
        ),
        "[4]",
    );
    invalid(
        linear(
            &c,
            &t(&[2, 4]),
            &w(&[3, 4]),
            Some(&w(&[1, 3])),
            Activation::None,
        ),
        "bias",
    );
    invalid(
        conv1d(
            &c,
            &t(&[2, 10, 3]),
            &w(&[4, 3, 3]),
            None,
            1,
            1,
            Activation::None,
        ),
        "[2, 10, 3]",
    );
    invalid(
        conv1d(
            &c,
            &t(&[10, 3]),
            &w(&[4, 2, 3]),
            None,
            1,
            1,
            Activation::None,
        ),
        "[4, 2, 3]",
    );
    invalid(
        conv1d(&c, &t(&[10, 3]), &w(&[4, 3]), None, 1, 1, Activation::None),
        "[4, 3]",
    );
    invalid(
        conv1d(
            &c,
            &t(&[10, 3]),
            &w(&[4, 3, 3]),
            None,
            0,
            1,
            Activation::None,
        ),
        "stride",
    );
    invalid(
        conv1d(
            &c,
            &t(&[2, 3]),
            &w(&[4, 3, 5]),
            None,
            1,
            1,
            Activation::None,
        ),
        "kernel 5",
    );
    invalid(
        conv1d(
            &c,
            &t(&[10, 3]),
            &w(&[4, 3, 3]),
            None,
            1,
            usize::MAX,
            Activation::None,
        ),
        "padding",
    );
    invalid(
        conv1d(
            &c,
            &t(&[10, 3]),
            &w(&[4, 3, 3]),
            Some(&w(&[5])),
            1,
            1,
            Activation::None,
        ),
        "bias",
    );
}

#[test]
fn norms_adds_lookups() {
    let c = ctx();
    invalid(
        layer_norm(&c, &t(&[2, 4]), &w(&[3]), &w(&[4]), 1e-5),
        "[2, 4]",
    );
    invalid(
        layer_norm(&c, &t(&[2, 4]), &w(&[4]), &w(&[2, 2]), 1e-5),
        "beta",
    );
    invalid(
        layer_norm(&c, &t(&[2, 4]), &w(&[4]), &w(&[4]), f32::NAN),
        "eps",
    );
    invalid(layer_norm(&c, &t(&[2, 4]), &w(&[4]), &w(&[4]), -1.0), "eps");
    invalid(add(&c, &t(&[2, 4]), &t(&[2])), "[2, 4] and [2]");
    invalid(add(&c, &t(&[2, 4]), &t(&[3, 2, 4])), "[3, 2, 4]");
    invalid(add_positions(&c, &t(&[2, 4]), &w(&[8, 4]), 0), "[2, 4]");
    invalid(add_positions(&c, &t(&[1, 3, 4]), &w(&[8, 5]), 0), "[8, 5]");
    invalid(
        add_positions(&c, &t(&[1, 3, 4]), &w(&[8, 4]), 6),
        "position 6",
    );
    invalid(
        add_positions(&c, &t(&[1, 3, 4]), &w(&[8, 4]), usize::MAX),
        "position",
    );
    invalid(add_positions(&c, &t(&[1, 3, 4]), &w(&[4]), 0), "[4]");
    invalid(embed(&c, &w(&[5, 4]), &[1, 5], 1), "id 5");
    invalid(embed(&c, &w(&[5, 4]), &[1, 2, 3], 2), "batch of 2");
    invalid(embed(&c, &w(&[5, 4]), &[1], 0), "batch of 0");
    invalid(embed(&c, &w(&[5, 4]), &[], 1), "0 ids");
    invalid(embed(&c, &w(&[20]), &[1], 1), "[20]");
}

#[test]
fn attention_shapes_heads_and_caches() {
    let c = ctx();
    let q = t(&[2, 3, 8]);
    invalid(
        attention(&c, &t(&[3, 8]), &t(&[1, 4, 8]), &t(&[1, 4, 8]), 2, false),
        "[3, 8]",
    );
    invalid(
        attention(&c, &q, &t(&[1, 4, 6]), &t(&[1, 4, 6]), 2, false),
        "[1, 4, 6]",
    );
    invalid(
        attention(&c, &q, &t(&[3, 4, 8]), &t(&[3, 4, 8]), 2, false),
        "[3, 4, 8]",
    );
    invalid(
        attention(&c, &q, &t(&[1, 4, 8]), &t(&[1, 5, 8]), 2, false),
        "[1, 5, 8]",
    );
    invalid(
        attention(&c, &q, &t(&[1, 4, 8]), &t(&[1, 4, 8]), 3, false),
        "3 heads",
    );
    invalid(
        attention(&c, &q, &t(&[1, 4, 8]), &t(&[1, 4, 8]), 0, false),
        "0 heads",
    );
    invalid(
        attention(&c, &q, &t(&[1, 2, 8]), &t(&[1, 2, 8]), 2, true),
        "more queries",
    );
    invalid(attention_weights(&c, &q, &t(&[1, 4, 8]), 2, &[2]), "head 2");
    invalid(
        attention_weights(&c, &q, &t(&[1, 4, 8]), 2, &[]),
        "at least one",
    );
    invalid(
        attention_weights(&c, &q, &t(&[1, 4, 7]), 2, &[0]),
        "[1, 4, 7]",
    );
    invalid(KvCache::new(&c, 0, 8, 4), "batch 0");
    invalid(KvCache::new(&c, 1, 8, 0), "capacity 0");
    invalid(KvCache::new(&c, usize::MAX, 8, 4), "too large");
    let mut cache = KvCache::new(&c, 2, 8, 4).unwrap();
    invalid(
        attention_cached(&c, &t(&[2, 1, 8]), &cache, 2),
        "0 positions",
    );
    invalid(
        cache.append(&c, &t(&[2, 1, 8]), &t(&[2, 2, 8])),
        "[2, 2, 8]",
    );
    invalid(
        cache.append(&c, &t(&[3, 1, 8]), &t(&[3, 1, 8])),
        "[3, 1, 8]",
    );
    invalid(
        cache.append(&c, &t(&[2, 5, 8]), &t(&[2, 5, 8])),
        "capacity 4",
    );
    cache.append(&c, &t(&[2, 3, 8]), &t(&[2, 3, 8])).unwrap();
    invalid(
        cache.append(&c, &t(&[2, 2, 8]), &t(&[2, 2, 8])),
        "capacity 4",
    );
    invalid(attention_cached(&c, &t(&[3, 1, 8]), &cache, 2), "[3, 1, 8]");
    invalid(attention_cached(&c, &t(&[2, 4, 8]), &cache, 2), "[2, 4, 8]");
    invalid(attention_cached(&c, &t(&[2, 1, 8]), &cache, 5), "5 heads");
    invalid(cache.reorder(&c, &[0, 2]), "source 2");
    invalid(cache.reorder(&c, &[]), "at least one");
    invalid(cache.reset(&c, 0), "batch of 0");
    assert_eq!(cache.len(), 3, "failed calls change nothing");
}

#[test]
fn errors_read_well() {
    let e = linear(&ctx(), &t(&[2, 5]), &w(&[3, 4]), None, Activation::None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid compute call: linear of x [2, 5] by weights [3, 4]: x's last axis must be 4"
    );
    let o = ComputeError::OverBudget {
        needed: 10,
        allowed: 5,
    };
    assert_eq!(o.to_string(), "compute call needs 10 bytes, only 5 allowed");
}
