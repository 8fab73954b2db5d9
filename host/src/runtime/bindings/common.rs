//! What every WIT version shares: the host, types and audio interfaces and the
//! conversions of their records, written once for all versions' generated modules.

/// Implements the version-independent host interfaces and conversions for the bindings
/// module `$m` (the output of `bindgen!` for one version). Each version's record types
/// are distinct Rust types with the same fields, so a macro, not a generic, serves them.
/// `shared_contract!(m, speaker_field)` is for versions whose segments and words carry
/// `speaker` (0.3.0 on); `shared_contract!(m)` for those before.
macro_rules! shared_contract {
    (@speaker_none $record:ident) => {
        None
    };
    (@speaker_field $record:ident) => {
        $record.speaker
    };
    ($m:ident) => {
        super::common::shared_contract!($m, speaker_none);
    };
    ($m:ident, $speaker:ident) => {
        use crate::runtime::contract::{LogLevel, RawInfo};
        use crate::runtime::host_audio::AudioResource;
        use crate::runtime::store::JobContext;
        use crate::transcript::{Segment, Transcript, Word};
        use wasmtime::component::Resource;

        impl $m::sandscribe::plugin::types::Host for JobContext {}

        impl $m::sandscribe::plugin::host::Host for JobContext {
            fn progress(&mut self, fraction: f32, stage: String) {
                self.report_progress(fraction, &stage);
            }

            fn emit_segment(&mut self, segment: $m::sandscribe::plugin::types::Segment) {
                self.emit_live_segment(segment_from(segment));
            }

            fn log(&mut self, level: $m::sandscribe::plugin::host::LogLevel, message: String) {
                use $m::sandscribe::plugin::host::LogLevel as L;
                let level = match level {
                    L::Debug => LogLevel::Debug,
                    L::Info => LogLevel::Info,
                    L::Warn => LogLevel::Warn,
                    L::Error => LogLevel::Error,
                };
                self.plugin_log(level, &message);
            }

            fn is_cancelled(&mut self) -> bool {
                self.cancel_hint()
            }
        }

        impl $m::sandscribe::plugin::audio::Host for JobContext {}

        impl $m::sandscribe::plugin::audio::HostAudio for JobContext {
            fn frames(&mut self, audio: Resource<AudioResource>) -> u64 {
                self.audio_frames(&audio)
            }

            fn sample_rate(&mut self, audio: Resource<AudioResource>) -> u32 {
                self.audio_sample_rate(&audio)
            }

            fn read(
                &mut self,
                audio: Resource<AudioResource>,
                offset: u64,
                count: u32,
            ) -> Vec<f32> {
                self.audio_read(&audio, offset, count)
            }

            fn drop(&mut self, audio: Resource<AudioResource>) -> wasmtime::Result<()> {
                self.audio_drop(audio)
            }
        }

        fn segment_from(segment: $m::sandscribe::plugin::types::Segment) -> Segment {
            Segment {
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
                text: segment.text,
                confidence: segment.confidence,
                words: segment
                    .words
                    .into_iter()
                    .map(|w| Word {
                        text: w.text,
                        start_ms: w.start_ms,
                        end_ms: w.end_ms,
                        confidence: w.confidence,
                        speaker: super::common::shared_contract!(@$speaker w),
                    })
                    .collect(),
                speaker: super::common::shared_contract!(@$speaker segment),
            }
        }

        fn transcript_from(transcript: $m::Transcript) -> Transcript {
            Transcript {
                text: transcript.text,
                language: transcript.language,
                segments: transcript.segments.into_iter().map(segment_from).collect(),
            }
        }

        fn info_from(info: $m::PluginInfo) -> RawInfo {
            RawInfo {
                id: info.id,
                name: info.name,
                version: info.version,
                description: info.description,
                languages: info.languages,
                sample_rate: info.sample_rate,
                segment_timestamps: info.capabilities.segment_timestamps,
                word_timestamps: info.capabilities.word_timestamps,
                language_detection: info.capabilities.language_detection,
                translation: info.capabilities.translation,
                config_schema: info.config_schema,
            }
        }

        /// The world's prepared instance.
        pub type Pre = $m::TranscriberPre<JobContext>;
        /// The world's instance.
        pub type Instance = $m::Transcriber;

        pub fn call_info(
            instance: &Instance,
            store: &mut wasmtime::Store<JobContext>,
        ) -> wasmtime::Result<RawInfo> {
            instance.call_info(store).map(info_from)
        }

        pub fn call_transcribe(
            instance: &Instance,
            store: &mut wasmtime::Store<JobContext>,
            audio: Resource<AudioResource>,
            config_json: &str,
        ) -> wasmtime::Result<crate::runtime::contract::RawOutcome> {
            let returned = instance.call_transcribe(store, audio, config_json)?;
            Ok(returned.map(transcript_from).map_err(failure_from))
        }
    };
}

pub(super) use shared_contract;
