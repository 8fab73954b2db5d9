//! Runtime-dispatched kernels. Every kernel has a portable version (always correct,
//! autovectorised: on aarch64 NEON is baseline, so this is the NEON path) and, on
//! x86_64, versions for the instruction sets `is_x86_feature_detected!` finds. Nothing
//! here relies on `-C target-cpu`.

pub(crate) mod aligned;
pub(crate) mod attention;
pub(crate) mod bf16;
pub(crate) mod elementwise;
pub(crate) mod erf;
pub(crate) mod gemm;
pub(crate) mod int8;
pub(crate) mod pack;

use std::sync::OnceLock;

/// The SIMD level a kernel runs at. Ops use [`level()`]; tests run each level the CPU
/// supports against the portable one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Level {
    /// Portable Rust (no target features beyond the baseline).
    Portable,
    /// x86_64 AVX2 + FMA: the portable code compiled for them.
    Avx2,
    /// x86_64 AVX-512 F/BW/VL/DQ: hand-written f32 and bf16 kernels.
    Avx512,
}

/// What this CPU offers, detected once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cpu {
    pub(crate) level: Level,
    /// AVX-512 VNNI (`vpdpbusd`) for int8 products.
    pub(crate) vnni: bool,
    /// AVX-512 BF16 (`vdpbf16ps`).
    pub(crate) bf16: bool,
}

pub(crate) fn cpu() -> Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    *CPU.get_or_init(detect)
}

pub(crate) fn level() -> Level {
    cpu().level
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Cpu {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let avx512 = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq");
    let level = if avx512 {
        Level::Avx512
    } else if avx2 {
        Level::Avx2
    } else {
        Level::Portable
    };
    Cpu {
        level,
        vnni: avx512 && is_x86_feature_detected!("avx512vnni"),
        bf16: avx512 && is_x86_feature_detected!("avx512bf16"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Cpu {
    Cpu {
        level: Level::Portable,
        vnni: false,
        bf16: false,
    }
}

/// Levels this CPU can run, lowest first (for tests).
#[cfg(test)]
pub(crate) fn levels() -> Vec<Level> {
    [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| l <= level())
        .collect()
}

/// What runtime dispatch picked on this CPU: "avx512", "avx2", "neon" or "scalar".
pub fn kernels() -> &'static str {
    match level() {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2",
        Level::Portable if cfg!(target_arch = "aarch64") => "neon",
        Level::Portable => "scalar",
    }
}

/// [`kernels()`] with the extensions each precision uses, for logs and benches, e.g.
/// "avx512 (f32 fma, bf16 vdpbf16ps, int8 vnni)".
pub fn kernel_details() -> String {
    let c = cpu();
    let int8 = match (c.level, c.vnni) {
        (_, true) => "int8 vnni",
        (Level::Avx512 | Level::Avx2, false) => "int8 avx2 madd",
        (Level::Portable, false) => "int8 portable",
    };
    let bf16 = if c.bf16 { "bf16 vdpbf16ps" } else { "bf16 fma" };
    format!("{} (f32 fma, {bf16}, {int8})", kernels())
}

/// Defines `$name(level, args...)` that runs one `#[inline(always)]` body compiled for
/// each level, so LLVM vectorises plain Rust for AVX-512, AVX2 or the baseline.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(level: $crate::kernels::Level, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
            fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            match level {
                // SAFETY: `level` comes from runtime detection (or is lower).
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::Level::Avx512 => unsafe { v4($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::Level::Avx2 => unsafe { v3($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;
