//! The plugin's configuration: the typed struct, its validation and its JSON Schema.
//!
//! The schema depends on the model: an English-only model offers no language choice and
//! no translation, a multilingual one offers every Whisper language plus "auto".

use serde::Deserialize;

/// Whisper's languages in token order (the first 99 are in every multilingual model).
pub const LANGUAGES: [&str; 99] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su",
];

/// Longest accepted `initial_prompt`, in characters.
pub const MAX_PROMPT_CHARS: usize = 1000;
/// Largest accepted `beam_size`.
pub const MAX_BEAM_SIZE: u32 = 8;
/// Beams by default (openai-whisper's command line and faster-whisper use 5).
pub const DEFAULT_BEAM_SIZE: u32 = 5;
/// Most tokens Whisper samples in one 30-second window (half its text context).
pub const MAX_TOKENS_PER_WINDOW: u32 = 224;

/// What to do with the speech.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Write down what is said, in the spoken language.
    #[default]
    Transcribe,
    /// Write it down in English.
    Translate,
}

/// How the weights of the linear layers are kept in the host (the compute interface's
/// precisions). Norms, biases, positions and the embedding lookup stay `float32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The model's own numbers (f16 files are widened exactly).
    #[default]
    Float32 = 0,
    /// Per-row int8 weights: the fastest and smallest, slightly different results.
    Int8 = 1,
    /// Weights rounded to bfloat16.
    #[serde(rename = "bfloat16")]
    BFloat16 = 2,
}

impl Precision {
    /// Every value, as the schema offers them.
    pub const ALL: [Precision; 3] = [Precision::Float32, Precision::Int8, Precision::BFloat16];

    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Int8 => "int8",
            Precision::BFloat16 => "bfloat16",
        }
    }

    /// The SDK's precision.
    pub fn compute(self) -> sandscribe_plugin_sdk::compute::Precision {
        use sandscribe_plugin_sdk::compute::Precision as P;
        match self {
            Precision::Float32 => P::Float32,
            Precision::Int8 => P::Int8,
            Precision::BFloat16 => P::BFloat16,
        }
    }
}

/// The configuration object `transcribe` accepts (see [`schema`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Spoken language code, or "auto" to detect it (multilingual models only).
    pub language: String,
    pub task: Task,
    /// Text that conditions the first window (names, spelling, style).
    pub initial_prompt: String,
    /// Sampling temperature of the first attempt; 0 is greedy. Failed windows retry
    /// at +0.2 steps up to 1.0.
    pub temperature: f32,
    /// Beams kept by the search at temperature 0 (1 = greedy).
    pub beam_size: u32,
    /// Timestamped segments (`true`) or one segment per 30-second window.
    pub timestamps: bool,
    /// Cap on the tokens sampled per window.
    pub max_tokens_per_window: u32,
    /// Feed the previous window's text as context to the next. Off by default: with it,
    /// audio that repeats a passage made the model skip speech (measured on tiny.en).
    pub condition_on_previous_text: bool,
    /// Precision of the linear layers' weights in the host.
    pub precision: Precision,
    /// Time each word too (default `false`): one more decoder pass per window over
    /// its text, reading the alignment heads' cross-attention (see
    /// [`crate::timing`]).
    pub words: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            language: "auto".into(),
            task: Task::Transcribe,
            initial_prompt: String::new(),
            temperature: 0.0,
            beam_size: DEFAULT_BEAM_SIZE,
            timestamps: true,
            max_tokens_per_window: MAX_TOKENS_PER_WINDOW,
            condition_on_previous_text: false,
            precision: Precision::Float32,
            words: false,
        }
    }
}

/// A configuration value the model cannot use.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{field}`: {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

impl Config {
    /// Checks the values against the bounds of the schema and the model's abilities.
    pub fn validate(&self, multilingual: bool) -> Result<(), ConfigError> {
        let fail = |field, message: String| Err(ConfigError { field, message });
        if multilingual {
            if self.language != "auto" && !LANGUAGES.contains(&self.language.as_str()) {
                return fail(
                    "language",
                    format!(
                        "unknown language code {:?}; use \"auto\" or one of Whisper's codes",
                        self.language
                    ),
                );
            }
        } else {
            if !matches!(self.language.as_str(), "auto" | "en") {
                return fail(
                    "language",
                    format!(
                        "this model only knows English (\"en\"), not {:?}",
                        self.language
                    ),
                );
            }
            if self.task == Task::Translate {
                return fail(
                    "task",
                    "this English-only model cannot translate; use \"transcribe\"".into(),
                );
            }
        }
        if self.initial_prompt.chars().count() > MAX_PROMPT_CHARS {
            return fail(
                "initial_prompt",
                format!("longer than {MAX_PROMPT_CHARS} characters"),
            );
        }
        if !(0.0..=1.0).contains(&self.temperature) {
            return fail(
                "temperature",
                format!("{} is outside 0..=1", self.temperature),
            );
        }
        if !(1..=MAX_BEAM_SIZE).contains(&self.beam_size) {
            return fail(
                "beam_size",
                format!("{} is outside 1..={MAX_BEAM_SIZE}", self.beam_size),
            );
        }
        if !(1..=MAX_TOKENS_PER_WINDOW).contains(&self.max_tokens_per_window) {
            return fail(
                "max_tokens_per_window",
                format!(
                    "{} is outside 1..={MAX_TOKENS_PER_WINDOW}",
                    self.max_tokens_per_window
                ),
            );
        }
        Ok(())
    }
}

/// The JSON Schema (draft 2020-12) of [`Config`] for a multilingual or English-only model.
pub fn schema(multilingual: bool) -> String {
    let (languages, default_language, language_help, tasks, task_help) = if multilingual {
        let mut codes = vec!["auto"];
        codes.extend(LANGUAGES);
        (
            codes,
            "auto",
            "Spoken language (Whisper code), or \"auto\" to detect it from the first 30 seconds.",
            vec!["transcribe", "translate"],
            "\"transcribe\" writes the spoken language; \"translate\" writes English.",
        )
    } else {
        (
            vec!["en"],
            "en",
            "This model is English-only.",
            vec!["transcribe"],
            "This model can only transcribe English.",
        )
    };
    let value = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "language": {
                "type": "string",
                "title": "Language",
                "description": language_help,
                "enum": languages,
                "default": default_language
            },
            "task": {
                "type": "string",
                "title": "Task",
                "description": task_help,
                "enum": tasks,
                "default": "transcribe"
            },
            "initial_prompt": {
                "type": "string",
                "title": "Initial prompt",
                "description": "Text the first window is conditioned on: names, spellings, punctuation style.",
                "default": "",
                "maxLength": MAX_PROMPT_CHARS
            },
            "temperature": {
                "type": "number",
                "title": "Temperature",
                "description": "Sampling temperature of the first attempt (0 = greedy). A window that looks repetitive or unlikely is retried 0.2 higher, up to 1.0.",
                "default": 0.0,
                "minimum": 0.0,
                "maximum": 1.0
            },
            "beam_size": {
                "type": "integer",
                "title": "Beam size",
                "description": "Candidate texts kept while decoding at temperature 0; more is slower but more accurate. 1 is greedy decoding.",
                "default": DEFAULT_BEAM_SIZE,
                "minimum": 1,
                "maximum": MAX_BEAM_SIZE
            },
            "timestamps": {
                "type": "boolean",
                "title": "Timestamped segments",
                "description": "Split the text into timed segments; when off, one segment per 30-second window.",
                "default": true
            },
            "max_tokens_per_window": {
                "type": "integer",
                "title": "Max tokens per window",
                "description": "Upper limit on the tokens decoded per 30-second window (also capped by the window's length).",
                "default": MAX_TOKENS_PER_WINDOW,
                "minimum": 1,
                "maximum": MAX_TOKENS_PER_WINDOW
            },
            "condition_on_previous_text": {
                "type": "boolean",
                "title": "Use previous text as context",
                "description": "Feed each window's text to the next one as context (openai-whisper's default). More consistent style, but one mistake or a repeated passage can make the model skip or repeat text.",
                "default": false
            },
            "precision": {
                "type": "string",
                "title": "Precision",
                "description": "How the model's weights are kept for the matrix products: \"float32\" gives the model's own results; \"int8\" is about 1.5 times as fast with weights four times smaller, at nearly the same accuracy; \"bfloat16\" is about 1.3 times as fast with half the memory, and changes results less than int8.",
                "enum": Precision::ALL.map(Precision::name),
                "default": "float32"
            },
            "words": {
                "type": "boolean",
                "title": "Word timestamps",
                "description": "Give each segment its words with start and end times, found from where the model's alignment heads look in the audio. Costs one more decoder pass per 30-second window.",
                "default": false
            }
        }
    });
    serde_json::to_string_pretty(&value).expect("a JSON value always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn empty_object_gives_the_defaults() {
        assert_eq!(parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn precision_is_named_as_in_the_schema() {
        for p in Precision::ALL {
            let config = parse(&format!(r#"{{"precision": "{}"}}"#, p.name())).unwrap();
            assert_eq!(config.precision, p);
        }
        assert!(parse(r#"{"precision": "float16"}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(parse(r#"{"patience": 2}"#).is_err());
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let c = parse(r#"{"temperature": 1.5}"#).unwrap();
        assert_eq!(c.validate(true).unwrap_err().field, "temperature");
        let c = parse(r#"{"max_tokens_per_window": 0}"#).unwrap();
        assert_eq!(c.validate(true).unwrap_err().field, "max_tokens_per_window");
        let c = parse(r#"{"language": "xx"}"#).unwrap();
        assert_eq!(c.validate(true).unwrap_err().field, "language");
    }

    #[test]
    fn english_only_model_refuses_other_languages_and_translation() {
        let c = parse(r#"{"language": "de"}"#).unwrap();
        assert_eq!(c.validate(false).unwrap_err().field, "language");
        let c = parse(r#"{"task": "translate"}"#).unwrap();
        assert_eq!(c.validate(false).unwrap_err().field, "task");
        assert!(
            parse(r#"{"language": "en"}"#)
                .unwrap()
                .validate(false)
                .is_ok()
        );
        assert!(
            parse(r#"{"language": "de", "task": "translate"}"#)
                .unwrap()
                .validate(true)
                .is_ok()
        );
    }

    #[test]
    fn schema_describes_every_field_with_title_description_and_default() {
        for multilingual in [false, true] {
            let schema: serde_json::Value = serde_json::from_str(&schema(multilingual)).unwrap();
            assert_eq!(schema["additionalProperties"], false);
            let props = schema["properties"].as_object().unwrap();
            for (name, p) in props {
                for key in ["title", "description", "default"] {
                    assert!(p.get(key).is_some(), "{name} lacks {key}");
                }
                // Every default must itself pass validation.
                let one = serde_json::json!({ name: p["default"] });
                let config: Config = serde_json::from_value(one).unwrap();
                config.validate(multilingual).unwrap();
            }
            let languages = props["language"]["enum"].as_array().unwrap();
            assert_eq!(languages.len(), if multilingual { 100 } else { 1 });
        }
    }
}
