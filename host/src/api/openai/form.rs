//! The OpenAI form fields, checked, and mapped onto a plugin's configuration.
//!
//! The mapping is generic: it reads the plugin's config schema and capabilities instead
//! of knowing plugins by name. `language` goes to a `language` property, `prompt` to
//! `initial_prompt` or `prompt`, `temperature` to `temperature`, the `word` granularity
//! needs the `word_timestamps` capability (and switches on a boolean `words` property if
//! there is one), and a translation needs the `translation` capability and a `task`
//! property. A field the plugin cannot take is a 400 naming the field, never silently
//! dropped.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::OpenAiError;
use crate::api::ApiError;
use crate::export::ExportFormat;
use crate::runtime::PluginMeta;

/// Which endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `/v1/audio/transcriptions`: the spoken language.
    Transcribe,
    /// `/v1/audio/translations`: into English.
    Translate,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transcribe => "transcribe",
            Self::Translate => "translate",
        }
    }

    /// The form fields the endpoint accepts (besides `file`).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Transcribe => &[
                "model",
                "language",
                "prompt",
                "temperature",
                "response_format",
                "timestamp_granularities[]",
                "timestamp_granularities",
                "stream",
                "chunking_strategy",
            ],
            Self::Translate => &["model", "prompt", "temperature", "response_format"],
        }
    }
}

/// `response_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `{"text": …}`.
    Json,
    /// Text, segments and words with timings.
    VerboseJson,
    /// A written file: plain text, SRT or WebVTT, from the shared export writers.
    File(ExportFormat),
}

impl ResponseFormat {
    fn parse(given: &str) -> Option<Self> {
        match given {
            "json" => Some(Self::Json),
            "verbose_json" => Some(Self::VerboseJson),
            "text" => Some(Self::File(ExportFormat::Txt)),
            "srt" => Some(Self::File(ExportFormat::Srt)),
            "vtt" => Some(Self::File(ExportFormat::Vtt)),
            _ => None,
        }
    }
}

/// What the client asked for, checked field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRequest {
    pub task: Task,
    /// The plugin id.
    pub model: String,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub temperature: Option<f64>,
    pub response_format: ResponseFormat,
    /// `timestamp_granularities[]` contains `segment`.
    pub segment_timestamps: bool,
    /// `timestamp_granularities[]` contains `word`.
    pub word_timestamps: bool,
    pub stream: bool,
}

impl TranscriptionRequest {
    /// Reads the form's text fields. Empty values count as not given, as some clients
    /// send every optional field.
    pub fn parse(fields: &HashMap<String, Vec<String>>, task: Task) -> Result<Self, OpenAiError> {
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        for name in names {
            if !task.fields().contains(&name.as_str()) {
                return Err(OpenAiError::bad_param(
                    name,
                    format!(
                        "unknown parameter `{name}`; this endpoint takes file, {}",
                        task.fields().join(", ")
                    ),
                ));
            }
        }
        let single = |name: &str| -> Result<Option<String>, OpenAiError> {
            match fields.get(name).map(Vec::as_slice) {
                None | Some([]) => Ok(None),
                Some([value]) => Ok(Some(value.trim().to_owned()).filter(|v| !v.is_empty())),
                Some(_) => Err(OpenAiError::bad_param(
                    name,
                    format!("`{name}` is given more than once"),
                )),
            }
        };

        let model = single("model")?.ok_or_else(|| {
            OpenAiError::bad_param(
                "model",
                "you must provide a model parameter (a plugin id; GET /v1/models lists them)",
            )
        })?;
        let response_format = match single("response_format")? {
            None => ResponseFormat::Json,
            Some(given) => ResponseFormat::parse(&given).ok_or_else(|| {
                OpenAiError::bad_param(
                    "response_format",
                    format!(
                        "unsupported response_format {given:?}; use json, text, srt, verbose_json or vtt"
                    ),
                )
            })?,
        };
        let temperature = match single("temperature")? {
            None => None,
            Some(given) => Some(
                given
                    .parse::<f64>()
                    .ok()
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| {
                        OpenAiError::bad_param(
                            "temperature",
                            format!("temperature must be a number, not {given:?}"),
                        )
                    })?,
            ),
        };
        let stream = match single("stream")?.map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(given) => {
                return Err(OpenAiError::bad_param(
                    "stream",
                    format!("stream must be true or false, not {given:?}"),
                ));
            }
        };
        if let Some(strategy) = single("chunking_strategy")?
            && strategy != "auto"
        {
            return Err(OpenAiError::bad_param(
                "chunking_strategy",
                "only chunking_strategy \"auto\" is supported (the plugin chooses its windows)",
            ));
        }

        let mut segment_timestamps = false;
        let mut word_timestamps = false;
        let granularities = ["timestamp_granularities[]", "timestamp_granularities"]
            .iter()
            .filter_map(|name| fields.get(*name))
            .flatten()
            .map(|value| value.trim())
            .filter(|value| !value.is_empty());
        for granularity in granularities {
            match granularity {
                "segment" => segment_timestamps = true,
                "word" => word_timestamps = true,
                other => {
                    return Err(OpenAiError::bad_param(
                        "timestamp_granularities",
                        format!("unknown timestamp granularity {other:?}; use segment or word"),
                    ));
                }
            }
        }
        if (segment_timestamps || word_timestamps) && response_format != ResponseFormat::VerboseJson
        {
            return Err(OpenAiError::bad_param(
                "timestamp_granularities",
                "timestamp_granularities need response_format verbose_json",
            ));
        }
        if stream
            && !matches!(
                response_format,
                ResponseFormat::Json | ResponseFormat::File(ExportFormat::Txt)
            )
        {
            return Err(OpenAiError::bad_param(
                "stream",
                "streaming sends text events; use response_format json or text with stream=true",
            ));
        }

        Ok(Self {
            task,
            model,
            language: single("language")?,
            prompt: single("prompt")?,
            temperature,
            response_format,
            segment_timestamps,
            word_timestamps,
            stream,
        })
    }
}

/// A plugin configuration built from a request, and which form field set which key.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedConfig {
    pub config: Value,
    /// `(config key, form field)` for every key the form set.
    sources: Vec<(String, &'static str)>,
}

impl MappedConfig {
    /// Names the form field behind a configuration error, so the client learns which of
    /// its parameters the plugin's schema refused.
    pub fn explain(&self, error: ApiError) -> OpenAiError {
        let param = error.fields.iter().find_map(|problem| {
            let key = problem.field.trim_start_matches('/');
            let key = key.split('/').next().unwrap_or(key);
            self.sources
                .iter()
                .find(|(source, _)| source == key)
                .map(|(_, field)| *field)
        });
        let mut error = OpenAiError::from(error);
        if let Some(param) = param {
            error = error.param(param);
        }
        error
    }
}

/// The plugin configuration for `request`, or a 400 naming the field the plugin cannot
/// take.
pub fn plugin_config(
    request: &TranscriptionRequest,
    meta: &PluginMeta,
) -> Result<MappedConfig, OpenAiError> {
    let empty = Map::new();
    let properties = meta
        .config_schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let has_boolean = |name: &str| {
        properties
            .get(name)
            .is_some_and(|p| p.get("type").and_then(Value::as_str) == Some("boolean"))
    };
    let id = &meta.id;
    let mut config = Map::new();
    let mut sources = Vec::new();
    let mut set = |key: &str, value: Value, field: &'static str| {
        config.insert(key.to_owned(), value);
        sources.push((key.to_owned(), field));
    };

    if let Some(language) = &request.language {
        if !properties.contains_key("language") {
            return Err(OpenAiError::bad_param(
                "language",
                format!("the model `{id}` has no language setting; leave language out"),
            ));
        }
        set("language", Value::from(language.as_str()), "language");
    }
    if let Some(prompt) = &request.prompt {
        let Some(key) = ["initial_prompt", "prompt"]
            .into_iter()
            .find(|key| properties.contains_key(*key))
        else {
            return Err(OpenAiError::bad_param(
                "prompt",
                format!("the model `{id}` takes no prompt; leave prompt out"),
            ));
        };
        set(key, Value::from(prompt.as_str()), "prompt");
    }
    if let Some(temperature) = request.temperature {
        if !properties.contains_key("temperature") {
            return Err(OpenAiError::bad_param(
                "temperature",
                format!("the model `{id}` has no temperature setting; leave temperature out"),
            ));
        }
        set("temperature", Value::from(temperature), "temperature");
    }
    if request.segment_timestamps && !meta.capabilities.segment_timestamps {
        return Err(OpenAiError::bad_param(
            "timestamp_granularities",
            format!("the model `{id}` gives no segment timestamps"),
        ));
    }
    if request.word_timestamps {
        if !meta.capabilities.word_timestamps {
            return Err(OpenAiError::bad_param(
                "timestamp_granularities",
                format!("the model `{id}` gives no word timestamps; ask for segment only"),
            ));
        }
        if let Some(key) = ["words", "word_timestamps"]
            .into_iter()
            .find(|key| has_boolean(key))
        {
            set(key, Value::Bool(true), "timestamp_granularities");
        }
    }
    if request.task == Task::Translate {
        if !meta.capabilities.translation || !properties.contains_key("task") {
            return Err(OpenAiError::bad_param(
                "model",
                format!(
                    "the model `{id}` cannot translate; use a multilingual model that lists the translation capability"
                ),
            ));
        }
        set("task", Value::from("translate"), "model");
    }
    Ok(MappedConfig {
        config: Value::Object(config),
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Capabilities, ConfigProblem};
    use axum::http::StatusCode;
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        let mut fields: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in pairs {
            fields
                .entry((*name).to_owned())
                .or_default()
                .push((*value).to_owned());
        }
        fields
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<TranscriptionRequest, OpenAiError> {
        TranscriptionRequest::parse(&form(pairs), Task::Transcribe)
    }

    fn param_of(error: OpenAiError) -> String {
        assert_eq!(error.error.status, StatusCode::BAD_REQUEST);
        error.param.expect("the error names a parameter")
    }

    fn whisper_like(translation: bool) -> PluginMeta {
        PluginMeta {
            id: "whisper".into(),
            name: "Whisper".into(),
            version: "1".into(),
            description: String::new(),
            languages: vec!["en".into()],
            sample_rate: 16_000,
            capabilities: Capabilities {
                segment_timestamps: true,
                word_timestamps: false,
                language_detection: translation,
                translation,
            },
            config_schema: json!({"type": "object", "properties": {
                "language": {"type": "string"},
                "task": {"type": "string"},
                "initial_prompt": {"type": "string"},
                "temperature": {"type": "number"},
                "timestamps": {"type": "boolean"},
            }}),
            wit_version: crate::runtime::WitVersion::LATEST,
            kind: crate::runtime::PluginKind::Transcriber,
        }
    }

    fn echo_like() -> PluginMeta {
        PluginMeta {
            id: "echo".into(),
            name: "Echo".into(),
            version: "1".into(),
            description: String::new(),
            languages: vec![],
            sample_rate: 16_000,
            capabilities: Capabilities {
                segment_timestamps: true,
                word_timestamps: true,
                language_detection: false,
                translation: false,
            },
            config_schema: json!({"type": "object", "properties": {
                "language": {"type": "string", "enum": ["en", "de"]},
                "words": {"type": "boolean"},
                "prompt": {"type": "string"},
            }}),
            wit_version: crate::runtime::WitVersion::LATEST,
            kind: crate::runtime::PluginKind::Transcriber,
        }
    }

    #[test]
    fn only_model_is_required_and_json_is_the_default() {
        let request = parse(&[("model", "echo")]).unwrap();
        assert_eq!(request.model, "echo");
        assert_eq!(request.response_format, ResponseFormat::Json);
        assert!(!request.stream && !request.word_timestamps && !request.segment_timestamps);
        assert_eq!(param_of(parse(&[]).unwrap_err()), "model");
        assert_eq!(param_of(parse(&[("model", " ")]).unwrap_err()), "model");
    }

    #[test]
    fn every_response_format_parses_and_others_are_refused() {
        for (given, expected) in [
            ("json", ResponseFormat::Json),
            ("verbose_json", ResponseFormat::VerboseJson),
            ("text", ResponseFormat::File(ExportFormat::Txt)),
            ("srt", ResponseFormat::File(ExportFormat::Srt)),
            ("vtt", ResponseFormat::File(ExportFormat::Vtt)),
        ] {
            let request = parse(&[("model", "m"), ("response_format", given)]).unwrap();
            assert_eq!(request.response_format, expected);
        }
        let error = parse(&[("model", "m"), ("response_format", "diarized_json")]).unwrap_err();
        assert_eq!(param_of(error), "response_format");
    }

    #[test]
    fn unknown_and_repeated_fields_are_named() {
        let error = parse(&[("model", "m"), ("include[]", "logprobs")]).unwrap_err();
        assert_eq!(param_of(error), "include[]");
        let error = parse(&[("model", "m"), ("model", "n")]).unwrap_err();
        assert_eq!(param_of(error), "model");
        let error = TranscriptionRequest::parse(
            &form(&[("model", "m"), ("language", "de")]),
            Task::Translate,
        )
        .unwrap_err();
        assert_eq!(param_of(error), "language");
    }

    #[test]
    fn granularities_need_verbose_json() {
        let request = parse(&[
            ("model", "m"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
        ])
        .unwrap();
        assert!(request.word_timestamps && request.segment_timestamps);
        let error = parse(&[("model", "m"), ("timestamp_granularities[]", "word")]).unwrap_err();
        assert_eq!(param_of(error), "timestamp_granularities");
        let error = parse(&[
            ("model", "m"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "phoneme"),
        ])
        .unwrap_err();
        assert_eq!(param_of(error), "timestamp_granularities");
    }

    #[test]
    fn stream_takes_booleans_and_only_text_formats() {
        assert!(parse(&[("model", "m"), ("stream", "true")]).unwrap().stream);
        assert!(
            !parse(&[("model", "m"), ("stream", "False")])
                .unwrap()
                .stream
        );
        assert_eq!(
            param_of(parse(&[("model", "m"), ("stream", "yes")]).unwrap_err()),
            "stream"
        );
        let error = parse(&[
            ("model", "m"),
            ("stream", "true"),
            ("response_format", "srt"),
        ])
        .unwrap_err();
        assert_eq!(param_of(error), "stream");
    }

    #[test]
    fn temperature_must_be_a_number() {
        let request = parse(&[("model", "m"), ("temperature", "0.2")]).unwrap();
        assert_eq!(request.temperature, Some(0.2));
        for bad in ["warm", "NaN", "inf"] {
            let error = parse(&[("model", "m"), ("temperature", bad)]).unwrap_err();
            assert_eq!(param_of(error), "temperature");
        }
    }

    #[test]
    fn fields_map_onto_the_schema_properties() {
        let request = parse(&[
            ("model", "whisper"),
            ("language", "en"),
            ("prompt", "Dashwood"),
            ("temperature", "0"),
        ])
        .unwrap();
        let mapped = plugin_config(&request, &whisper_like(false)).unwrap();
        assert_eq!(
            mapped.config,
            json!({"language": "en", "initial_prompt": "Dashwood", "temperature": 0.0})
        );
        let request = parse(&[("model", "echo"), ("prompt", "hi")]).unwrap();
        let mapped = plugin_config(&request, &echo_like()).unwrap();
        assert_eq!(mapped.config, json!({"prompt": "hi"}));
    }

    #[test]
    fn fields_the_plugin_cannot_take_are_refused_by_name() {
        let request = parse(&[("model", "echo"), ("temperature", "0")]).unwrap();
        assert_eq!(
            param_of(plugin_config(&request, &echo_like()).unwrap_err()),
            "temperature"
        );
        let mut meta = echo_like();
        meta.config_schema = json!({"type": "object"});
        for field in ["language", "prompt"] {
            let request = parse(&[("model", "echo"), (field, "x")]).unwrap();
            assert_eq!(param_of(plugin_config(&request, &meta).unwrap_err()), field);
        }
    }

    #[test]
    fn word_timestamps_need_the_capability_and_switch_on_words() {
        let request = parse(&[
            ("model", "m"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
        ])
        .unwrap();
        let mapped = plugin_config(&request, &echo_like()).unwrap();
        assert_eq!(mapped.config, json!({"words": true}));
        let error = plugin_config(&request, &whisper_like(true)).unwrap_err();
        assert_eq!(param_of(error), "timestamp_granularities");
    }

    #[test]
    fn translation_needs_the_capability_and_sets_the_task() {
        let request =
            TranscriptionRequest::parse(&form(&[("model", "whisper")]), Task::Translate).unwrap();
        let mapped = plugin_config(&request, &whisper_like(true)).unwrap();
        assert_eq!(mapped.config, json!({"task": "translate"}));
        let error = plugin_config(&request, &whisper_like(false)).unwrap_err();
        assert_eq!(param_of(error), "model");
    }

    #[test]
    fn schema_problems_are_traced_back_to_the_form_field() {
        let request = parse(&[("model", "whisper"), ("language", "xx"), ("prompt", "p")]).unwrap();
        let mapped = plugin_config(&request, &whisper_like(false)).unwrap();
        let explain = |field: &str| {
            mapped.explain(ApiError::invalid_config(vec![ConfigProblem {
                field: field.into(),
                message: "bad".into(),
            }]))
        };
        assert_eq!(explain("/language").param.as_deref(), Some("language"));
        assert_eq!(explain("/initial_prompt").param.as_deref(), Some("prompt"));
        assert_eq!(explain("").param, None);
    }
}
