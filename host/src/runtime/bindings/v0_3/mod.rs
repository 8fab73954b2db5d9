//! `sandscribe:plugin@0.3.0` (`wit/v0.3.0/`): adds the `diarizer` world (who spoke when,
//! a job's second stage) and `speaker` on segments and words.
//!
//! Both worlds import the same interfaces: the transcriber's bindings implement them, and
//! the diarizer's bindings reuse those (`with`), so one set of host functions in the
//! linker serves both and their records are the same Rust types.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/v0.3.0",
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

mod diarizer {
    wasmtime::component::bindgen!({
        path: "../wit/v0.3.0",
        world: "diarizer",
        with: {
            "sandscribe:plugin/types": super::generated::sandscribe::plugin::types,
            "sandscribe:plugin/audio": super::generated::sandscribe::plugin::audio,
            "sandscribe:plugin/host": super::generated::sandscribe::plugin::host,
            "sandscribe:plugin/compute": super::generated::sandscribe::plugin::compute,
        },
    });
}

#[path = "../compute_host.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "each version compiles the shared file against its own bindings"
)]
mod compute;

use crate::diarize::{SpeakerCount, SpeakerTurn};
use crate::runtime::contract::PluginFailure;
use generated::PluginError;
use generated::sandscribe::plugin::types as wit;
use wasmtime::component::{HasSelf, Linker};

pub const VERSION: &str = "0.3.0";

super::common::shared_contract!(generated, speaker_field);

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

/// A diarizer ready to instantiate.
pub type DiarizerPre = diarizer::DiarizerPre<JobContext>;
/// An instantiated diarizer.
pub type DiarizerInstance = diarizer::Diarizer;

pub fn diarizer_info(
    instance: &DiarizerInstance,
    store: &mut wasmtime::Store<JobContext>,
) -> wasmtime::Result<RawInfo> {
    instance.call_info(store).map(info_from)
}

pub fn call_diarize(
    instance: &DiarizerInstance,
    store: &mut wasmtime::Store<JobContext>,
    audio: Resource<AudioResource>,
    segments: &[Segment],
    speakers: SpeakerCount,
    config_json: &str,
) -> wasmtime::Result<Result<Vec<SpeakerTurn>, PluginFailure>> {
    let segments: Vec<wit::Segment> = segments.iter().map(segment_into).collect();
    let speakers = match speakers {
        SpeakerCount::Auto => wit::SpeakerCount::Auto,
        SpeakerCount::Exact(n) => wit::SpeakerCount::Exact(n),
        SpeakerCount::Between { min, max } => {
            wit::SpeakerCount::Between(wit::SpeakerRange { min, max })
        }
    };
    let returned = instance.call_diarize(store, audio, &segments, speakers, config_json)?;
    Ok(returned
        .map(|turns| {
            turns
                .into_iter()
                .map(|t| SpeakerTurn {
                    start_ms: t.start_ms,
                    end_ms: t.end_ms,
                    speaker: t.speaker,
                    confidence: t.confidence,
                })
                .collect()
        })
        .map_err(failure_from))
}

/// The host's segment as the plugin sees it (the diarizer reads the transcript).
fn segment_into(segment: &Segment) -> wit::Segment {
    wit::Segment {
        start_ms: segment.start_ms,
        end_ms: segment.end_ms,
        text: segment.text.clone(),
        confidence: segment.confidence,
        words: segment
            .words
            .iter()
            .map(|w| wit::Word {
                text: w.text.clone(),
                start_ms: w.start_ms,
                end_ms: w.end_ms,
                confidence: w.confidence,
                speaker: w.speaker.clone(),
            })
            .collect(),
        speaker: segment.speaker.clone(),
    }
}
