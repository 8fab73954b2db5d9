//! Builders for the WIT records and typed configuration parsing.

use crate::{Capabilities, PluginError, PluginInfo, Segment, Transcript, Word};

/// Parses the JSON configuration the host passes into the plugin's own type.
///
/// An empty string counts as `{}`. A parse failure becomes
/// [`PluginError::BadConfig`] naming the field serde complained about.
pub fn parse_config<C: serde::de::DeserializeOwned>(json: &str) -> Result<C, PluginError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| PluginError::BadConfig(e.to_string()))
}

impl PluginInfo {
    /// A description with no languages, no capabilities and an empty object schema.
    pub fn new(id: &str, name: &str, version: &str, sample_rate: u32) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            description: String::new(),
            languages: Vec::new(),
            sample_rate,
            capabilities: Capabilities::none(),
            config_schema: r#"{"type":"object","properties":{}}"#.to_owned(),
        }
    }

    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// ISO 639-1 codes of the languages the plugin handles.
    pub fn languages(mut self, codes: &[&str]) -> Self {
        self.languages = codes.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The JSON Schema of the configuration object.
    pub fn config_schema(mut self, schema: &str) -> Self {
        self.config_schema = schema.to_owned();
        self
    }
}

impl Capabilities {
    pub fn none() -> Self {
        Self {
            segment_timestamps: false,
            word_timestamps: false,
            language_detection: false,
            translation: false,
        }
    }
}

impl Segment {
    /// A segment without confidence, words or speaker.
    pub fn new(start_ms: u64, end_ms: u64, text: impl Into<String>) -> Self {
        Self {
            start_ms,
            end_ms,
            text: text.into(),
            confidence: None,
            words: Vec::new(),
            speaker: None,
        }
    }
}

impl Word {
    /// A word without confidence or speaker.
    pub fn new(text: impl Into<String>, start_ms: u64, end_ms: u64) -> Self {
        Self {
            text: text.into(),
            start_ms,
            end_ms,
            confidence: None,
            speaker: None,
        }
    }
}

impl Transcript {
    /// A transcript whose text is the segments' texts joined by spaces.
    pub fn from_segments(segments: Vec<Segment>, language: Option<String>) -> Self {
        let text = segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            text,
            language,
            segments,
        }
    }
}
