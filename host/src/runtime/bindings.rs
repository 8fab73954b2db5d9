//! Host bindings for `sandscribe:plugin@0.1.0`, generated from `wit/`.
//!
//! Each supported WIT version gets its own module like this one; the rest of the host
//! only sees the version-independent types in [`crate::transcript`].

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transcriber",
    with: {
        "sandscribe:plugin/audio.audio": crate::runtime::host_audio::AudioResource,
    },
});

pub use self::sandscribe::plugin::host::LogLevel;
pub use self::sandscribe::plugin::types::Segment;

/// The WIT package version these bindings implement.
pub const WIT_VERSION: &str = "0.1.0";
