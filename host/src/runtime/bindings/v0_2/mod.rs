//! `sandscribe:plugin@0.2.0` (`wit/v0.2.0/`): adds the `compute` interface (native
//! kernels on host-held tensors, see [`crate::runtime::compute`]) and
//! `plugin-error.cancelled`.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "transcriber",
        imports: {
            // A compute call may trap (a wrong call) and needs the store to charge fuel.
            "sandscribe:plugin/compute": store | trappable,
        },
        with: {
            "sandscribe:plugin/audio.audio": crate::runtime::host_audio::AudioResource,
            "sandscribe:plugin/compute.tensor": crate::runtime::compute::TensorHandle,
            "sandscribe:plugin/compute.weights": crate::runtime::compute::WeightsHandle,
            "sandscribe:plugin/compute.kv-cache": crate::runtime::compute::CacheHandle,
        },
    });
}

#[path = "../compute_host.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "each version compiles the shared file against its own bindings"
)]
mod compute;

use crate::runtime::contract::PluginFailure;
use generated::PluginError;
use wasmtime::component::{HasSelf, Linker};

pub const VERSION: &str = "0.2.0";

super::common::shared_contract!(generated);

fn failure_from(error: PluginError) -> PluginFailure {
    match error {
        PluginError::BadConfig(m) => PluginFailure::BadConfig(m),
        PluginError::UnsupportedAudio(m) => PluginFailure::UnsupportedAudio(m),
        PluginError::Internal(m) => PluginFailure::Internal(m),
        PluginError::Cancelled => PluginFailure::Cancelled,
    }
}

pub fn add_to_linker(linker: &mut Linker<JobContext>) -> wasmtime::Result<()> {
    generated::Transcriber::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}
