//! `sandscribe:plugin@0.1.0`, frozen (`wit/v0.1.0/`): the first released contract.
//! Plugins built against it keep loading and running unchanged.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "transcriber",
        with: {
            "sandscribe:plugin/audio.audio": crate::runtime::host_audio::AudioResource,
        },
    });
}

use crate::runtime::contract::PluginFailure;
use generated::PluginError;
use wasmtime::component::{HasSelf, Linker};

pub const VERSION: &str = "0.1.0";

super::common::shared_contract!(generated);

fn failure_from(error: PluginError) -> PluginFailure {
    match error {
        PluginError::BadConfig(m) => PluginFailure::BadConfig(m),
        PluginError::UnsupportedAudio(m) => PluginFailure::UnsupportedAudio(m),
        PluginError::Internal(m) => PluginFailure::Internal(m),
    }
}

pub fn add_to_linker(linker: &mut Linker<JobContext>) -> wasmtime::Result<()> {
    generated::Transcriber::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}
