//! A plugin's JSON Schema as an HTML form, and the submitted form back as JSON.
//!
//! Each top-level property becomes one control: `boolean` a checkbox, `integer` and
//! `number` a number input with the schema's `minimum`/`maximum`, an `enum` a select,
//! `string` a text input (a text area when it may be long), anything else (objects,
//! arrays) a JSON text area. `title` is the label, `description` the help text, and the
//! default is shown beside it. Properties keep the order the schema lists them in, with
//! `x-order` (or `propertyOrder`) moving a property ahead of those without one.
//!
//! Parsing turns each control's text back into the schema's type and reports what cannot
//! be converted next to the field; everything else (ranges, enums, lengths) is left to the
//! plugin's own schema validator, whose problems are mapped back onto the fields by
//! [`problems_by_field`]. All text comes from the plugin and is escaped by the template.

use std::collections::BTreeMap;

use askama::Template;
use serde_json::{Map, Value};

use crate::runtime::ConfigProblem;

/// Prefix of every config control's name, so config fields never clash with the form's
/// own (`action`).
pub const FIELD_PREFIX: &str = "cfg.";

/// Strings longer than this may be typed in a text area.
const TEXTAREA_FROM_CHARS: u64 = 200;

/// One option of a select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectOption {
    /// The option's value as submitted (JSON text for non-strings).
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One control of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The property name.
    pub name: String,
    /// The element id (unique, safe).
    pub id: String,
    pub label: String,
    pub help: String,
    /// "text", "textarea", "integer", "number", "checkbox", "select" or "json".
    pub control: &'static str,
    pub value: String,
    pub checked: bool,
    pub min: Option<String>,
    pub max: Option<String>,
    pub max_length: Option<u64>,
    pub options: Vec<SelectOption>,
    /// Shown beside the field, e.g. "Default: en".
    pub default_note: Option<String>,
    pub error: Option<String>,
}

/// The configuration form of one plugin.
pub struct ConfigForm {
    pub plugin_id: String,
    pub plugin_name: String,
    pub fields: Vec<Field>,
    /// A problem with the configuration as a whole.
    pub form_error: Option<String>,
    /// What just happened ("Saved as your defaults.").
    pub notice: Option<String>,
    pub auto_save: bool,
}

/// The form alone, as HTMX swaps it in (the plugin page includes the same partial).
#[derive(Template)]
#[template(path = "partials/config_form_response.html")]
pub struct ConfigFormView {
    pub form: ConfigForm,
}

/// The schema's type of a property (the first non-null one of a type list).
fn type_of(property: &Value) -> Option<&str> {
    match property.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// Human text for a value shown in the form.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The text a select option submits for an enum value.
fn option_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number_text(value: Option<&Value>) -> Option<String> {
    value.filter(|v| v.is_number()).map(Value::to_string)
}

/// The schema's properties in display order.
fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut list: Vec<(&String, &Value)> = properties.iter().collect();
    let order = |p: &Value| {
        p.get("x-order")
            .or_else(|| p.get("propertyOrder"))
            .and_then(Value::as_f64)
            .unwrap_or(f64::MAX)
    };
    // Stable: properties with the same (or no) order keep the schema's own order.
    list.sort_by(|(_, a), (_, b)| order(a).total_cmp(&order(b)));
    list
}

/// An element id from a property name: only safe characters, unique by position.
fn field_id(index: usize, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("cfg-{index}-{safe}")
}

/// The controls for `schema`, showing `values` (falling back to the schema's defaults)
/// and `errors` (by property name).
pub fn fields(
    schema: &Value,
    values: &Map<String, Value>,
    errors: &BTreeMap<String, String>,
) -> Vec<Field> {
    properties(schema)
        .into_iter()
        .enumerate()
        .map(|(index, (name, property))| {
            let default = property.get("default");
            let value = values.get(name).or(default).unwrap_or(&Value::Null);
            let kind = type_of(property);
            let enum_values = property.get("enum").and_then(Value::as_array);
            let control = match (enum_values, kind) {
                (Some(_), _) => "select",
                (None, Some("boolean")) => "checkbox",
                (None, Some("integer")) => "integer",
                (None, Some("number")) => "number",
                (None, Some("string")) => {
                    let long = property
                        .get("maxLength")
                        .and_then(Value::as_u64)
                        .is_none_or(|n| n > TEXTAREA_FROM_CHARS);
                    if long { "textarea" } else { "text" }
                }
                _ => "json",
            };
            let current = option_value(value);
            let mut options: Vec<SelectOption> = enum_values
                .map(|values| {
                    values
                        .iter()
                        .map(|v| SelectOption {
                            value: option_value(v),
                            label: display(v),
                            selected: !value.is_null() && option_value(v) == current,
                        })
                        .collect()
                })
                .unwrap_or_default();
            if control == "select" && default.is_none() {
                // Without a default, "not set" must stay possible.
                options.insert(
                    0,
                    SelectOption {
                        value: String::new(),
                        label: "(not set)".into(),
                        selected: value.is_null(),
                    },
                );
            }
            let field_value = match control {
                "json" if value.is_null() => String::new(),
                "json" => serde_json::to_string_pretty(value).unwrap_or_default(),
                _ => display(value),
            };
            Field {
                name: name.clone(),
                id: field_id(index, name),
                label: property
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_owned(),
                help: property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                control,
                checked: value.as_bool().unwrap_or(false),
                value: field_value,
                min: number_text(property.get("minimum")),
                max: number_text(property.get("maximum")),
                max_length: property.get("maxLength").and_then(Value::as_u64),
                options,
                default_note: default.map(|d| match d {
                    Value::Bool(true) => "Default: on".to_owned(),
                    Value::Bool(false) => "Default: off".to_owned(),
                    Value::String(s) if s.is_empty() => "Default: empty".to_owned(),
                    other => format!("Default: {}", display(other)),
                }),
                error: errors.get(name.as_str()).cloned(),
            }
        })
        .collect()
}

/// The submitted controls as a configuration object, plus what could not be converted
/// (by property name). Empty controls are left out, so the schema's default applies.
pub fn parse(
    schema: &Value,
    pairs: &[(String, String)],
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let submitted = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key.strip_prefix(FIELD_PREFIX) == Some(name))
            .map(|(_, value)| value.as_str())
    };
    let mut config = Map::new();
    let mut errors = BTreeMap::new();
    for (name, property) in properties(schema) {
        let raw = submitted(name);
        let kind = type_of(property);
        if let Some(allowed) = property.get("enum").and_then(Value::as_array) {
            let Some(text) = raw.filter(|t| !t.is_empty()) else {
                continue;
            };
            match allowed.iter().find(|v| option_value(v) == text) {
                Some(v) => {
                    config.insert(name.clone(), v.clone());
                }
                None => {
                    errors.insert(name.clone(), "Choose one of the listed values.".into());
                }
            }
            continue;
        }
        match kind {
            Some("boolean") => {
                let on = raw.is_some_and(|t| matches!(t, "on" | "true" | "1"));
                config.insert(name.clone(), Value::Bool(on));
            }
            Some("integer") => {
                let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
                    continue;
                };
                match text.parse::<i64>() {
                    Ok(n) => {
                        config.insert(name.clone(), Value::from(n));
                    }
                    Err(_) => {
                        errors.insert(name.clone(), "Enter a whole number.".into());
                    }
                }
            }
            Some("number") => {
                let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
                    continue;
                };
                match text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => {
                        config.insert(name.clone(), Value::Number(n));
                    }
                    None => {
                        errors.insert(name.clone(), "Enter a number, like 0.5.".into());
                    }
                }
            }
            Some("string") => {
                if let Some(text) = raw.filter(|t| !t.is_empty()) {
                    config.insert(name.clone(), Value::String(text.to_owned()));
                }
            }
            _ => {
                let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
                    continue;
                };
                match serde_json::from_str::<Value>(text) {
                    Ok(v) => {
                        config.insert(name.clone(), v);
                    }
                    Err(e) => {
                        errors.insert(name.clone(), format!("Enter valid JSON ({e})."));
                    }
                }
            }
        }
    }
    (config, errors)
}

/// Schema-validation problems by property name, plus those about the whole object.
pub fn problems_by_field(problems: &[ConfigProblem]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut by_field: BTreeMap<String, String> = BTreeMap::new();
    let mut general = Vec::new();
    for problem in problems {
        let field = problem
            .field
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            // JSON pointer escapes.
            .replace("~1", "/")
            .replace("~0", "~");
        if field.is_empty() {
            general.push(problem.message.clone());
        } else {
            by_field
                .entry(field)
                .and_modify(|m| {
                    m.push_str("; ");
                    m.push_str(&problem.message);
                })
                .or_insert_with(|| problem.message.clone());
        }
    }
    (by_field, general)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "language": {"type": "string", "title": "Language", "description": "Spoken language.",
                             "enum": ["en", "de"], "default": "en"},
                "beam_size": {"type": "integer", "title": "Beam size", "default": 5,
                              "minimum": 1, "maximum": 8},
                "temperature": {"type": "number", "default": 0.0, "minimum": 0, "maximum": 1},
                "words": {"type": "boolean", "title": "Word timings", "default": false},
                "prompt": {"type": "string", "maxLength": 50},
                "notes": {"type": "string"},
                "mode": {"enum": [1, 2]},
                "extra": {"type": "object"}
            }
        })
    }

    fn by_name<'a>(fields: &'a [Field], name: &str) -> &'a Field {
        fields.iter().find(|f| f.name == name).expect("field")
    }

    #[test]
    fn each_type_gets_its_control() {
        let fields = fields(&schema(), &Map::new(), &BTreeMap::new());
        let control = |name| by_name(&fields, name).control;
        assert_eq!(control("language"), "select");
        assert_eq!(control("beam_size"), "integer");
        assert_eq!(control("temperature"), "number");
        assert_eq!(control("words"), "checkbox");
        assert_eq!(control("prompt"), "text");
        assert_eq!(control("notes"), "textarea");
        assert_eq!(control("mode"), "select");
        assert_eq!(control("extra"), "json");
    }

    #[test]
    fn enums_become_options_with_the_current_value_selected() {
        let mut values = Map::new();
        values.insert("language".into(), json!("de"));
        let fields = fields(&schema(), &values, &BTreeMap::new());
        let language = by_name(&fields, "language");
        let labels: Vec<(&str, bool)> = language
            .options
            .iter()
            .map(|o| (o.value.as_str(), o.selected))
            .collect();
        assert_eq!(labels, [("en", false), ("de", true)]);
        // No default: "not set" comes first and is selected.
        let mode = by_name(&fields, "mode");
        assert_eq!(mode.options[0].value, "");
        assert!(mode.options[0].selected);
        assert_eq!(mode.options[1].value, "1");
    }

    #[test]
    fn defaults_fill_empty_values_and_are_noted() {
        let fields = fields(&schema(), &Map::new(), &BTreeMap::new());
        let beam = by_name(&fields, "beam_size");
        assert_eq!(beam.value, "5");
        assert_eq!(beam.default_note.as_deref(), Some("Default: 5"));
        assert_eq!(by_name(&fields, "language").value, "en");
        assert!(!by_name(&fields, "words").checked);
        assert_eq!(
            by_name(&fields, "words").default_note.as_deref(),
            Some("Default: off")
        );
        assert_eq!(by_name(&fields, "notes").default_note, None);
    }

    #[test]
    fn minimum_maximum_and_max_length_are_carried() {
        let fields = fields(&schema(), &Map::new(), &BTreeMap::new());
        let beam = by_name(&fields, "beam_size");
        assert_eq!(
            (beam.min.as_deref(), beam.max.as_deref()),
            (Some("1"), Some("8"))
        );
        let temperature = by_name(&fields, "temperature");
        assert_eq!(temperature.max.as_deref(), Some("1"));
        assert_eq!(by_name(&fields, "prompt").max_length, Some(50));
    }

    #[test]
    fn titles_label_and_descriptions_help() {
        let fields = fields(&schema(), &Map::new(), &BTreeMap::new());
        let language = by_name(&fields, "language");
        assert_eq!(language.label, "Language");
        assert_eq!(language.help, "Spoken language.");
        // Without a title, the property name is the label.
        assert_eq!(by_name(&fields, "temperature").label, "temperature");
    }

    #[test]
    fn x_order_wins_over_names() {
        let schema = json!({"properties": {
            "b": {"type": "string", "x-order": 1},
            "a": {"type": "string", "x-order": 2},
            "c": {"type": "string"}
        }});
        let names: Vec<String> = fields(&schema, &Map::new(), &BTreeMap::new())
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["b", "a", "c"]);
    }

    #[test]
    fn without_x_order_the_schema_order_is_kept() {
        let schema: Value = serde_json::from_str(
            r#"{"properties": {"language": {}, "task": {}, "beam_size": {}, "temperature": {}}}"#,
        )
        .expect("json");
        let names: Vec<String> = fields(&schema, &Map::new(), &BTreeMap::new())
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["language", "task", "beam_size", "temperature"]);
    }

    #[test]
    fn submitted_text_is_typed_and_bad_numbers_are_reported() {
        let pairs: Vec<(String, String)> = [
            ("cfg.language", "de"),
            ("cfg.beam_size", "3"),
            ("cfg.temperature", "0.5"),
            ("cfg.words", "on"),
            ("cfg.prompt", ""),
            ("cfg.mode", "2"),
            ("cfg.extra", "{\"k\": 1}"),
            ("action", "next"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (config, errors) = parse(&schema(), &pairs);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            Value::Object(config),
            json!({"language": "de", "beam_size": 3, "temperature": 0.5, "words": true,
                   "mode": 2, "extra": {"k": 1}})
        );

        let bad: Vec<(String, String)> = [
            ("cfg.beam_size", "three"),
            ("cfg.temperature", "warm"),
            ("cfg.language", "xx"),
            ("cfg.extra", "{"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (config, errors) = parse(&schema(), &bad);
        assert_eq!(errors["beam_size"], "Enter a whole number.");
        assert!(errors["temperature"].starts_with("Enter a number"));
        assert!(errors["language"].starts_with("Choose one"));
        assert!(errors["extra"].starts_with("Enter valid JSON"));
        // An unticked checkbox is not sent: it means false.
        assert_eq!(config.get("words"), Some(&Value::Bool(false)));
    }

    #[test]
    fn schema_problems_land_beside_their_field() {
        let problems = vec![
            ConfigProblem {
                field: "/beam_size".into(),
                message: "9 is greater than the maximum of 8".into(),
            },
            ConfigProblem {
                field: String::new(),
                message: "unexpected property".into(),
            },
        ];
        let (by_field, general) = problems_by_field(&problems);
        assert_eq!(by_field["beam_size"], "9 is greater than the maximum of 8");
        assert_eq!(general, ["unexpected property"]);
    }

    #[test]
    fn plugin_text_is_escaped_in_the_rendered_form() {
        let schema = json!({"properties": {
            "x\"><script>": {"type": "string", "title": "<script>alert(1)</script>",
                   "description": "<img src=x onerror=alert(1)>",
                   "default": "\"><script>alert(2)</script>"},
            "choice": {"enum": ["<b>bold</b>"]}
        }});
        let mut errors = BTreeMap::new();
        errors.insert("choice".to_owned(), "<i>bad</i>".to_owned());
        let form = ConfigForm {
            plugin_id: "<x-plugin>".into(),
            plugin_name: "<x-name>Name</x-name>".into(),
            fields: fields(&schema, &Map::new(), &errors),
            form_error: Some("<u>whole</u>".into()),
            notice: None,
            auto_save: false,
        };
        let html = ConfigFormView { form }.render().expect("renders");
        for raw in [
            "<script>",
            "<img",
            "<b>",
            "<i>",
            "<u>",
            "<x-plugin>",
            "<x-name>",
            "\"><",
        ] {
            assert!(!html.contains(raw), "{raw} appears unescaped in:\n{html}");
        }
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
    }
}
