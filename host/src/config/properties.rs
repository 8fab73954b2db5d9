//! Property tests: the config file, a plugin's `plugin.toml` and a job's JSON
//! configuration are untrusted text; none of them can make the server panic, a config
//! that is accepted is one a job can run under, and a manifest can only lower limits.
//!
//! Run longer with `PROPTEST_CASES=20000 cargo test --release -p sandscribe --lib properties`.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Config, Limits};
use crate::runtime::{ConfigSchema, Manifest};

/// A TOML value of any kind, including the awkward ones (negative, huge, empty, nested).
fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        1 => any::<i64>().prop_map(toml::Value::Integer),
        4 => (0i64..100_000_000).prop_map(toml::Value::Integer),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => any::<f64>().prop_map(toml::Value::Float),
        1 => ".{0,12}".prop_map(toml::Value::String),
        1 => "[0-9a-fA-F]{60,68}".prop_map(toml::Value::String),
        1 => prop_oneof![
            Just("admin"), Just("user"), Just("127.0.0.1:0"), Just("[::1]:80"),
            Just("https://a.example"), Just("http://[::1]:8080/"), Just("a.example"),
        ]
            .prop_map(|s| toml::Value::String(s.into())),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(toml::Value::Array)
    })
}

/// A key the config knows (in some section) or a stray one.
fn config_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "listen", "plugins_dir", "data_dir", "media_folders", "max_running", "max_queued",
            "keep_finished", "heartbeat_seconds", "shutdown_grace_seconds", "memory_bytes",
            "job_seconds", "stack_bytes", "log_bytes", "output_bytes", "upload_bytes",
            "audio_seconds", "fuel_per_job", "cancel_on_disconnect", "audio_minutes_per_day",
            "stored_bytes", "plugins", "sha256", "tenant", "role", "public_url",
            "token_sha256",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
    ]
}

/// A config document: entries under the sections the config has (and a stray one),
/// plus `[[api_keys]]` entries.
fn config_document() -> impl Strategy<Value = String> {
    let section = prop::sample::select(vec![
        "",
        "jobs",
        "limits",
        "openai",
        "metrics",
        "tenants.a",
        "tenants.\"b c\"",
        "nonsense",
    ]);
    let entries = prop::collection::vec((config_key(), toml_value()), 0..6);
    let sections = prop::collection::vec((section, entries), 0..5);
    let key = (
        prop_oneof!["[0-9a-f]{64}", "[0-9A-F]{64}", "[0-9a-z]{0,70}"],
        prop_oneof![Just(String::new()), "[a-z]{1,8}"],
        prop_oneof![Just("admin"), Just("user"), Just("root")],
    );
    let keys = prop::collection::vec(key, 0..3);
    (sections, keys).prop_map(|(sections, keys)| {
        let mut text = String::new();
        for (name, entries) in sections {
            if !name.is_empty() {
                text.push_str(&format!("[{name}]\n"));
            }
            for (key, value) in entries {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        for (hash, tenant, role) in keys {
            text.push_str(&format!(
                "[[api_keys]]\nsha256 = \"{hash}\"\ntenant = \"{tenant}\"\nrole = \"{role}\"\n"
            ));
        }
        text
    })
}

/// A config document with the right keys in the right sections and numbers of the right
/// type, some of them out of range (zero, enormous): most of these parse, so the checks
/// and the round trip are exercised, not only the refusals.
fn typed_document() -> impl Strategy<Value = String> {
    // Some of `keys`, each with a number that may be zero or enormous.
    let section = |keys: &[&'static str]| {
        let number = prop_oneof![
            Just(0u64),
            1u64..4096,
            4096u64..(1 << 40),
            Just(i64::MAX as u64)
        ];
        prop::collection::btree_map(prop::sample::select(keys.to_vec()), number, 0..keys.len())
    };
    let jobs = section(&[
        "max_running",
        "max_queued",
        "keep_finished",
        "shutdown_grace_seconds",
    ]);
    let limits = section(&[
        "memory_bytes",
        "job_seconds",
        "stack_bytes",
        "log_bytes",
        "output_bytes",
        "upload_bytes",
        "audio_seconds",
        "fuel_per_job",
        "threads_per_job",
        "shared_model_bytes",
    ]);
    let tenant = section(&[
        "max_running",
        "max_queued",
        "audio_minutes_per_day",
        "stored_bytes",
        "fuel_per_job",
    ]);
    (jobs, limits, tenant, any::<bool>()).prop_map(|(jobs, limits, tenant, cancel)| {
        let mut text = format!("[openai]\ncancel_on_disconnect = {cancel}\n");
        for (name, entries) in [("jobs", jobs), ("limits", limits), ("tenants.t", tenant)] {
            text.push_str(&format!("[{name}]\n"));
            for (key, value) in entries {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text
    })
}

/// The configuration schema of the `echo` test plugin, plus nesting, arrays and a
/// required field, as plugin authors write them.
fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["mode"],
        "properties": {
            "mode": {"type": "string", "enum": ["fast", "accurate"], "default": "fast"},
            "prefix": {"type": "string", "default": "", "maxLength": 20},
            "window_ms": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 1000},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "words": {"type": "boolean", "default": false},
            "vocabulary": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
            "advanced": {
                "type": "object",
                "properties": {"beam": {"type": "integer", "minimum": 1}},
                "additionalProperties": false
            }
        }
    })
}

/// An object close to what the schema accepts: each property present or not, with values
/// of the right type that may still be out of range.
fn near_valid_config() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec!["fast", "accurate", "other"])),
        prop::option::of(".{0,24}"),
        prop::option::of(0i64..70_000),
        prop::option::of(-0.5f64..1.5),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::vec(".{0,6}", 0..6)),
        prop::option::of(prop::option::of(-2i64..10)),
    )
        .prop_map(
            |(mode, prefix, window, temperature, words, vocabulary, beam)| {
                let mut object = serde_json::Map::new();
                let mut put = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        object.insert(key.into(), value);
                    }
                };
                put("mode", mode.map(Value::from));
                put("prefix", prefix.map(Value::from));
                put("window_ms", window.map(Value::from));
                put("temperature", temperature.map(Value::from));
                put("words", words.map(Value::from));
                put("vocabulary", vocabulary.map(Value::from));
                put(
                    "advanced",
                    beam.map(|beam| beam.map_or(json!({}), |b| json!({"beam": b}))),
                );
                Value::Object(object)
            },
        )
}

/// Any JSON value, with object keys that often hit the schema's properties.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-10.0f64..100_000.0).prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        prop::sample::select(vec!["fast", "accurate"]).prop_map(Value::from),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "mode",
            "prefix",
            "window_ms",
            "temperature",
            "words",
            "vocabulary",
            "advanced",
            "beam",
        ])
        .prop_map(str::to_owned),
        ".{0,8}",
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn an_accepted_config_can_run_jobs_and_survives_a_round_trip(text in prop_oneof![config_document(), typed_document()]) {
        if let Ok(config) = Config::from_toml(&text) {
            let limits = &config.limits;
            prop_assert!(limits.memory_bytes > 0 && limits.job_seconds > 0);
            prop_assert!(limits.upload_bytes > 0 && limits.audio_seconds > 0);
            prop_assert!(Limits::STACK_BYTES.contains(&limits.stack_bytes));
            prop_assert!(config.jobs.running_slots() >= 1);
            for key in &config.api_keys {
                prop_assert_eq!(key.sha256.len(), 64);
                prop_assert!(key.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                prop_assert!(!key.tenant.trim().is_empty());
            }
            let written = toml::to_string(&config).expect("an accepted config serialises");
            let again = Config::from_toml(&written).expect("and parses again");
            prop_assert_eq!(again, config);
        }
    }

    #[test]
    fn any_text_as_a_config_or_manifest_is_an_answer_not_a_panic(text in ".{0,200}", cut in any::<prop::sample::Index>(), doc in config_document()) {
        let _ = Config::from_toml(&text);
        let _ = toml::from_str::<Manifest>(&text);
        // A real document cut anywhere (character boundary), as a half-written file is.
        let at = doc.char_indices().map(|(i, _)| i).nth(cut.index(doc.chars().count() + 1)).unwrap_or(doc.len());
        let _ = Config::from_toml(&doc[..at]);
        let _ = toml::from_str::<Manifest>(&doc[..at]);
    }

    #[test]
    fn a_manifest_only_ever_lowers_the_servers_limits(
        memory in prop::option::of(any::<u64>()),
        seconds in prop::option::of(any::<u64>()),
        log in prop::option::of(any::<u64>()),
        output in prop::option::of(any::<u64>()),
        fuel in prop::option::of(1u64..),
        server_fuel in prop::option::of(1u64..),
        server_memory in 1u64..,
    ) {
        let mut text = String::from("[limits]\n");
        for (key, value) in [("memory_bytes", memory), ("job_seconds", seconds), ("log_bytes", log), ("output_bytes", output), ("fuel_per_job", fuel)] {
            // TOML integers are signed 64-bit: larger values are (rightly) refused.
            if let Some(value) = value.filter(|v| i64::try_from(*v).is_ok()) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        let Ok(manifest) = toml::from_str::<Manifest>(&text) else {
            return Err(TestCaseError::fail(format!("valid manifest refused: {text}")));
        };
        let server = Limits {
            memory_bytes: server_memory,
            fuel_per_job: server_fuel.and_then(std::num::NonZeroU64::new),
            ..Limits::default()
        };
        let limits = manifest.effective_limits(&server);
        prop_assert!(limits.memory_bytes <= server.memory_bytes);
        prop_assert!(limits.job_seconds <= server.job_seconds);
        prop_assert!(limits.log_bytes <= server.log_bytes);
        prop_assert!(limits.output_bytes <= server.output_bytes);
        if let Some(ceiling) = server.fuel_per_job {
            prop_assert!(limits.fuel_per_job.is_some_and(|f| f <= ceiling));
        }
        prop_assert_eq!(limits.stack_bytes, server.stack_bytes);
        prop_assert_eq!(limits.upload_bytes, server.upload_bytes);
        prop_assert_eq!(limits.audio_seconds, server.audio_seconds);
    }

    #[test]
    fn a_job_config_is_resolved_to_a_valid_object_or_refused_naming_real_fields(config in prop_oneof![json_value(), near_valid_config()]) {
        let schema = ConfigSchema::new(&schema()).expect("the schema compiles");
        match schema.resolve(&config) {
            Ok(resolved) => {
                prop_assert!(schema.is_valid(&resolved), "{resolved}");
                for key in ["mode", "prefix", "window_ms", "words"] {
                    prop_assert!(resolved.get(key).is_some(), "{key} not filled in: {resolved}");
                }
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert!(config.pointer(&problem.field).is_some(), "{} is not in {config}", problem.field);
                    prop_assert!(!problem.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn changing_one_field_of_a_valid_config_is_caught_or_kept(field in prop::sample::select(vec!["mode", "prefix", "window_ms", "temperature", "words", "vocabulary", "advanced"]), value in json_value()) {
        let schema = ConfigSchema::new(&schema()).expect("the schema compiles");
        let mut config = json!({"mode": "accurate", "window_ms": 500});
        config[field] = value.clone();
        match schema.resolve(&config) {
            Ok(resolved) => prop_assert_eq!(&resolved[field], &value),
            Err(problems) => {
                let pointer = format!("/{field}");
                prop_assert!(problems.iter().any(|p| p.field.starts_with(&pointer) || p.field.is_empty()));
            }
        }
    }
}
