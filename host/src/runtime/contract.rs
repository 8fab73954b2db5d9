//! The host's own model of the plugin contract, the same for every WIT version.
//!
//! Each supported WIT version has a bindings module ([`super::bindings`]) that converts its
//! generated types into these, so nothing outside that module sees a generated type and
//! adding a version is a module swap.

use crate::transcript::Transcript;

/// How important a plugin's log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [Self; 4] = [Self::Debug, Self::Info, Self::Warn, Self::Error];

    /// The name the job log and the CLI print.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Which world a plugin implements: a job's first stage, or its optional second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Exports `transcribe`: audio to a transcript.
    Transcriber,
    /// Exports `diarize` (0.3.0 on): who spoke when, after a transcriber.
    Diarizer,
}

impl PluginKind {
    /// The export that makes a component this kind.
    pub fn export(self) -> &'static str {
        match self {
            Self::Transcriber => "transcribe",
            Self::Diarizer => "diarize",
        }
    }
}

/// What a plugin's `info()` returned, before the host checked it.
#[derive(Debug, Clone)]
pub struct RawInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub languages: Vec<String>,
    pub sample_rate: u32,
    pub segment_timestamps: bool,
    pub word_timestamps: bool,
    pub language_detection: bool,
    pub translation: bool,
    pub config_schema: String,
}

/// Why a plugin says it could not transcribe (its `plugin-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginFailure {
    BadConfig(String),
    UnsupportedAudio(String),
    Internal(String),
    /// It saw the cancellation hint and stopped (WIT 0.2.0 and later).
    Cancelled,
}

/// What `transcribe` returned: a transcript not yet validated, or the plugin's error.
pub type RawOutcome = Result<Transcript, PluginFailure>;

/// What `diarize` returned: turns not yet checked, or the plugin's error.
pub type RawTurns = Result<Vec<crate::diarize::SpeakerTurn>, PluginFailure>;
