//! Diarizers: who spoke when, as the second stage of a job (the `diarizer` world).
//!
//! A diarizer gets the job's audio and the finished transcript's segments (so it can tell
//! speech from silence) and returns non-overlapping [`SpeakerTurn`]s in time order; the
//! host gives each segment the speaker of the turn that overlaps it most.
//!
//! ```ignore
//! use sandscribe_plugin_sdk::prelude::*;
//!
//! struct OneSpeaker;
//!
//! impl Diarizer for OneSpeaker {
//!     type Config = ();
//!
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("one-speaker", "One speaker", env!("CARGO_PKG_VERSION"), 16_000)
//!     }
//!
//!     fn diarize(
//!         audio: &AudioInput<'_>,
//!         _segments: &[Segment],
//!         _speakers: SpeakerCount,
//!         _config: (),
//!     ) -> Result<Vec<SpeakerTurn>, PluginError> {
//!         Ok(vec![SpeakerTurn::new(0, audio.duration_ms(), "SPEAKER_1")])
//!     }
//! }
//!
//! export_diarizer!(OneSpeaker);
//! ```

use crate::{AudioInput, PluginError, PluginInfo, Segment, SpeakerCount, SpeakerTurn};

/// What a diarization plugin implements.
pub trait Diarizer {
    /// The plugin's configuration, parsed from the JSON object the host passes (as for
    /// [`crate::Transcriber::Config`]).
    type Config: serde::de::DeserializeOwned;

    /// Static description; called once when the host loads the plugin. `languages` and
    /// `capabilities` are ignored for a diarizer.
    fn info() -> PluginInfo;

    /// Who spoke when in `audio`: turns in time order that do not overlap. `segments` are
    /// the transcript's (empty when there is none); `speakers` is the person's hint.
    /// Report progress with [`crate::progress`] and call [`crate::check_cancelled`]
    /// between units of work.
    fn diarize(
        audio: &AudioInput<'_>,
        segments: &[Segment],
        speakers: SpeakerCount,
        config: Self::Config,
    ) -> Result<Vec<SpeakerTurn>, PluginError>;
}

/// Export a [`Diarizer`] as the plugin's component exports (the `diarizer` world). A
/// crate exports one world: use either this or [`crate::export_plugin!`].
///
/// ```ignore
/// sandscribe_plugin_sdk::export_diarizer!(MyDiarizer);
/// ```
#[macro_export]
macro_rules! export_diarizer {
    ($plugin:ty) => {
        #[doc(hidden)]
        struct __SandscribeDiarizerExports;

        impl $crate::diarizer_bindings::Guest for __SandscribeDiarizerExports {
            fn info() -> $crate::PluginInfo {
                $crate::panic::install_hook();
                <$plugin as $crate::Diarizer>::info()
            }

            fn diarize(
                input: &$crate::bindings::sandscribe::plugin::audio::Audio,
                segments: ::std::vec::Vec<$crate::Segment>,
                speakers: $crate::SpeakerCount,
                config_json: ::std::string::String,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::SpeakerTurn>, $crate::PluginError>
            {
                $crate::panic::install_hook();
                let config = $crate::parse_config::<<$plugin as $crate::Diarizer>::Config>(
                    &config_json,
                )?;
                <$plugin as $crate::Diarizer>::diarize(
                    &$crate::AudioInput::new(input),
                    &segments,
                    speakers,
                    config,
                )
            }
        }

        $crate::diarizer_bindings::__export_diarizer!(
            __SandscribeDiarizerExports with_types_in $crate::diarizer_bindings
        );
    };
}

impl SpeakerTurn {
    /// A turn without confidence.
    pub fn new(start_ms: u64, end_ms: u64, speaker: impl Into<String>) -> Self {
        Self {
            start_ms,
            end_ms,
            speaker: speaker.into(),
            confidence: None,
        }
    }

    /// The same turn with `confidence` (clamped to 0..=1).
    pub fn with_confidence(mut self, confidence: f32) -> Self {
        self.confidence = Some(if confidence.is_nan() {
            0.0
        } else {
            confidence.clamp(0.0, 1.0)
        });
        self
    }
}

impl SpeakerCount {
    /// The smallest and largest number of speakers to consider, at least 1 each: `auto`
    /// is `1..=default_max`, `exact(n)` is `n..=n`, and a range whose ends are swapped is
    /// put right.
    pub fn bounds(&self, default_max: u32) -> (u32, u32) {
        match *self {
            SpeakerCount::Auto => (1, default_max.max(1)),
            SpeakerCount::Exact(n) => (n.max(1), n.max(1)),
            SpeakerCount::Between(range) => {
                let (lo, hi) = (range.min.min(range.max), range.min.max(range.max));
                (lo.max(1), hi.max(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpeakerRange;

    #[test]
    fn speaker_count_bounds_cover_every_hint() {
        assert_eq!(SpeakerCount::Auto.bounds(8), (1, 8));
        assert_eq!(SpeakerCount::Auto.bounds(0), (1, 1));
        assert_eq!(SpeakerCount::Exact(3).bounds(8), (3, 3));
        assert_eq!(SpeakerCount::Exact(0).bounds(8), (1, 1));
        let range = |min, max| SpeakerCount::Between(SpeakerRange { min, max });
        assert_eq!(range(2, 4).bounds(8), (2, 4));
        assert_eq!(range(5, 2).bounds(8), (2, 5));
        assert_eq!(range(0, 0).bounds(8), (1, 1));
    }

    #[test]
    fn a_turn_has_no_confidence_until_given_one_in_range() {
        let turn = SpeakerTurn::new(10, 20, "SPEAKER_1");
        assert_eq!((turn.start_ms, turn.end_ms), (10, 20));
        assert_eq!(turn.speaker, "SPEAKER_1");
        assert_eq!(turn.confidence, None);
        assert_eq!(turn.clone().with_confidence(1.5).confidence, Some(1.0));
        assert_eq!(turn.with_confidence(f32::NAN).confidence, Some(0.0));
    }
}
