//! The diarizer's configuration and its JSON Schema (one source for both: the defaults
//! in the schema are the `Default` impl's).

use sandscribe_plugin_sdk::PluginError;
use sandscribe_plugin_sdk::serde::Deserialize;

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(crate = "sandscribe_plugin_sdk::serde", default, deny_unknown_fields)]
pub struct Config {
    /// Audio per embedding, in ms (the model was trained on 1600).
    pub window_ms: u64,
    /// Turns shorter than this go to their longer neighbour.
    pub min_turn_ms: u64,
    /// With `auto`, clusters whose average cosine similarity is at least this merge.
    pub threshold: f32,
    /// With `auto`, a split into several speakers must reach this mean silhouette.
    pub min_silhouette: f32,
    /// The most speakers `auto` (or an open range) may find.
    pub max_speakers: u32,
    /// Stretches of speech shorter than this get no embedding of their own.
    pub min_speech_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_ms: 1600,
            min_turn_ms: 1000,
            threshold: 0.65,
            min_silhouette: 0.3,
            max_speakers: 8,
            min_speech_ms: 300,
        }
    }
}

impl Config {
    /// Ranges the schema states, checked again (the host validates, a native test may not).
    pub fn check(&self) -> Result<(), PluginError> {
        let bad = |m: String| Err(PluginError::BadConfig(m));
        if !(500..=4000).contains(&self.window_ms) {
            return bad(format!(
                "window_ms must be 500..=4000, not {}",
                self.window_ms
            ));
        }
        if self.min_turn_ms > 60_000 {
            return bad(format!(
                "min_turn_ms must be at most 60000, not {}",
                self.min_turn_ms
            ));
        }
        if !(-1.0..=1.0).contains(&self.threshold) {
            return bad(format!(
                "threshold must be in -1..=1, not {}",
                self.threshold
            ));
        }
        if !(-1.0..=1.0).contains(&self.min_silhouette) {
            return bad(format!(
                "min_silhouette must be in -1..=1, not {}",
                self.min_silhouette
            ));
        }
        if !(1..=64).contains(&self.max_speakers) {
            return bad(format!(
                "max_speakers must be 1..=64, not {}",
                self.max_speakers
            ));
        }
        Ok(())
    }
}

/// An `f32` default as the decimal it was written as (0.65, not 0.6499999761581421).
fn shown(value: f32) -> f64 {
    (f64::from(value) * 1e4).round() / 1e4
}

/// The JSON Schema (draft 2020-12) of [`Config`].
pub fn schema() -> String {
    let d = Config::default();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "max_speakers": {
                "type": "integer", "minimum": 1, "maximum": 64, "default": d.max_speakers,
                "description": "The most speakers to find when the number is not given (or the range is open-ended)."
            },
            "threshold": {
                "type": "number", "minimum": -1, "maximum": 1, "default": shown(d.threshold),
                "description": "When estimating the number of speakers: groups of voice windows at least this alike (average cosine similarity) are one speaker. Higher finds more speakers."
            },
            "min_silhouette": {
                "type": "number", "minimum": -1, "maximum": 1, "default": shown(d.min_silhouette),
                "description": "When estimating: a split into several speakers is kept only if its mean silhouette reaches this; otherwise everyone is one speaker."
            },
            "min_turn_ms": {
                "type": "integer", "minimum": 0, "maximum": 60000, "default": d.min_turn_ms,
                "description": "Turns shorter than this (ms) are given to the neighbouring speaker."
            },
            "window_ms": {
                "type": "integer", "minimum": 500, "maximum": 4000, "default": d.window_ms,
                "description": "Audio per voice embedding (ms), windows overlapping by half; the model was trained on 1600."
            },
            "min_speech_ms": {
                "type": "integer", "minimum": 0, "maximum": 10000, "default": d.min_speech_ms,
                "description": "Stretches of speech shorter than this (ms) get no embedding of their own; they take the nearest window's speaker."
            }
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_defaults_are_the_configs() {
        let schema: serde_json::Value = serde_json::from_str(&schema()).unwrap();
        let defaults: serde_json::Map<String, serde_json::Value> = schema["properties"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["default"].clone()))
            .collect();
        let parsed: Config =
            sandscribe_plugin_sdk::parse_config(&serde_json::Value::Object(defaults).to_string())
                .unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn out_of_range_values_are_bad_config() {
        let c = Config {
            window_ms: 100,
            ..Config::default()
        };
        assert!(matches!(c.check(), Err(PluginError::BadConfig(m)) if m.contains("window_ms")));
        let c = Config {
            max_speakers: 0,
            ..Config::default()
        };
        assert!(c.check().is_err());
        assert!(Config::default().check().is_ok());
    }
}
