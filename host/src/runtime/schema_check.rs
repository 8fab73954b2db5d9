//! Checking a plugin's own `config-schema` when it loads, before any job relies on it.
//!
//! A schema with a mistake does not always fail to compile: JSON Schema ignores keywords
//! it does not know, so `"minimun": 100` silently allows anything, and a `default` that
//! breaks its own schema makes every job that leaves the field out invalid (the host fills
//! defaults in before it validates). So the host reports, each with its JSON pointer in
//! the schema:
//! - errors, which refuse the plugin: the schema is not valid against its meta-schema
//!   (every violation, not only the first), does not compile (a bad `pattern`, an
//!   unresolvable `$ref`), or a `default` fails the subschema it sits in;
//! - warnings, which do not: keywords no JSON Schema draft defines (with the nearest known
//!   one suggested). Keys that start with `x-` are extensions and pass silently.

use serde::Serialize;
use serde_json::{Map, Value};

/// One finding about a schema: where (JSON pointer into the schema) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaIssue {
    /// JSON pointer of the offending place in the schema, e.g. `/properties/window_ms`
    /// (empty for the schema itself).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Every problem found in a schema, errors and warnings apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaReport {
    pub errors: Vec<SchemaIssue>,
    pub warnings: Vec<SchemaIssue>,
}

/// Keywords of JSON Schema drafts 4 to 2020-12 (a plugin may name its draft with
/// `$schema`), and `propertyOrder`, which this host's settings form reads.
const KNOWN_KEYWORDS: &[&str] = &[
    // core
    "$schema",
    "$id",
    "id",
    "$ref",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "$comment",
    "$defs",
    "definitions",
    // applicators
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependencies",
    "prefixItems",
    "items",
    "additionalItems",
    "contains",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    // validation
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "format",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    // annotations
    "title",
    "description",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "examples",
    // this host's extension
    "propertyOrder",
];

/// Keywords whose value is a map of names to subschemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Keywords whose value is one subschema.
const SCHEMA_VALUES: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "contains",
    "additionalProperties",
    "additionalItems",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
    "items",
];

/// Keywords whose value is a list of subschemas (`items` too, in drafts before 2020-12).
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems", "items"];

/// Checks `schema`; an empty report's `errors` means it can be compiled and used.
pub fn check(schema: &Value) -> SchemaReport {
    let mut report = SchemaReport::default();
    match jsonschema::meta::validator_for(schema) {
        Ok(meta) => {
            for error in meta.iter_errors(schema) {
                report.errors.push(SchemaIssue {
                    path: error.instance_path().to_string(),
                    message: error.to_string(),
                });
            }
        }
        Err(e) => report.errors.push(SchemaIssue {
            path: "/$schema".into(),
            message: format!("cannot find the meta-schema to check against: {e}"),
        }),
    }
    // Compiling finds what the meta-schema cannot see (a bad regex, a dangling `$ref`);
    // after meta-schema errors it would only repeat the first of them.
    if report.errors.is_empty()
        && let Err(e) = jsonschema::validator_for(schema)
    {
        report.errors.push(SchemaIssue {
            path: e.schema_path().to_string(),
            message: e.to_string(),
        });
    }
    walk(schema, schema, "", &mut report);
    report
}

/// Visits one subschema at `path`: its keywords, its `default`, then its subschemas.
fn walk(root: &Value, schema: &Value, path: &str, report: &mut SchemaReport) {
    let Some(object) = schema.as_object() else {
        return; // `true`/`false` schemas, or a type error the meta-schema reported
    };
    for key in object.keys() {
        if !KNOWN_KEYWORDS.contains(&key.as_str()) && !key.starts_with("x-") {
            let hint = nearest_keyword(key)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            report.warnings.push(SchemaIssue {
                path: format!("{path}/{}", escape(key)),
                message: format!(
                    "unknown keyword `{key}` is ignored by JSON Schema, so it checks nothing{hint}"
                ),
            });
        }
    }
    if let Some(default) = object.get("default") {
        check_default(root, object, default, &format!("{path}/default"), report);
    }
    for (key, value) in object {
        let here = format!("{path}/{}", escape(key));
        if SCHEMA_MAPS.contains(&key.as_str())
            && let Some(map) = value.as_object()
        {
            for (name, sub) in map {
                walk(root, sub, &format!("{here}/{}", escape(name)), report);
            }
        } else if SCHEMA_LISTS.contains(&key.as_str())
            && let Some(list) = value.as_array()
        {
            for (i, sub) in list.iter().enumerate() {
                walk(root, sub, &format!("{here}/{i}"), report);
            }
        } else if SCHEMA_VALUES.contains(&key.as_str()) {
            walk(root, value, &here, report);
        }
    }
}

/// A `default` must satisfy the subschema it sits in. The subschema is compiled alone,
/// with the root's `$defs`/`definitions` beside it so that local `$ref`s resolve; one that
/// still does not compile is left to the whole schema's checks.
fn check_default(
    root: &Value,
    schema: &Map<String, Value>,
    default: &Value,
    path: &str,
    report: &mut SchemaReport,
) {
    let mut alone = schema.clone();
    alone.remove("default");
    for defs in ["$defs", "definitions"] {
        if let Some(shared) = root.get(defs)
            && !alone.contains_key(defs)
        {
            alone.insert(defs.to_owned(), shared.clone());
        }
    }
    if let Some(draft) = root.get("$schema") {
        alone.insert("$schema".to_owned(), draft.clone());
    }
    let Ok(validator) = jsonschema::validator_for(&Value::Object(alone)) else {
        return;
    };
    for error in validator.iter_errors(default) {
        let inside = error.instance_path().to_string();
        let which = if inside.is_empty() {
            String::new()
        } else {
            format!(" (at {inside})")
        };
        report.errors.push(SchemaIssue {
            path: path.to_owned(),
            message: format!("the default breaks its own schema{which}: {error}"),
        });
    }
}

/// A known keyword within two edits of `key` (case-insensitive), the closest first.
fn nearest_keyword(key: &str) -> Option<&'static str> {
    let key = key.to_lowercase();
    KNOWN_KEYWORDS
        .iter()
        .map(|k| (edit_distance(&key, &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(issues: &[SchemaIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.path.as_str()).collect()
    }

    #[test]
    fn a_clean_schema_has_no_findings() {
        let report = check(&json!({
            "type": "object",
            "additionalProperties": false,
            "propertyOrder": ["language", "beam"],
            "x-ui": {"hidden": true},
            "properties": {
                "language": {"type": "string", "enum": ["en", "de"], "default": "en"},
                "beam": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
                "voice": {"$ref": "#/$defs/voice", "default": {"rate": 1.0}}
            },
            "$defs": {"voice": {"type": "object", "properties": {"rate": {"type": "number"}}}}
        }));
        assert_eq!(report, SchemaReport::default());
    }

    #[test]
    fn an_unknown_keyword_is_a_warning_with_its_path_and_the_nearest_keyword() {
        let report = check(&json!({
            "type": "object",
            "properties": {"window_ms": {"type": "integer", "minimun": 100, "default": 1000}}
        }));
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(paths(&report.warnings), ["/properties/window_ms/minimun"]);
        let message = &report.warnings[0].message;
        assert!(message.contains("did you mean `minimum`?"), "{message}");
    }

    #[test]
    fn a_keyword_far_from_every_known_one_gets_no_suggestion() {
        let report = check(&json!({"type": "object", "widget": "slider"}));
        assert_eq!(paths(&report.warnings), ["/widget"]);
        assert!(!report.warnings[0].message.contains("did you mean"));
    }

    #[test]
    fn property_names_are_not_mistaken_for_keywords() {
        let report = check(&json!({
            "type": "object",
            "properties": {"minimun": {"type": "string"}, "items": {"type": "integer"}}
        }));
        assert_eq!(report, SchemaReport::default());
    }

    #[test]
    fn a_default_that_breaks_its_own_schema_is_an_error_at_the_default() {
        let report = check(&json!({
            "type": "object",
            "properties": {
                "window_ms": {"type": "integer", "minimum": 100, "default": 50},
                "language": {"type": "string", "enum": ["en", "de"], "default": "fr"},
                "nested": {
                    "type": "object",
                    "properties": {"on": {"type": "boolean", "default": "yes"}}
                }
            }
        }));
        assert_eq!(
            paths(&report.errors),
            [
                "/properties/window_ms/default",
                "/properties/language/default",
                "/properties/nested/properties/on/default"
            ]
        );
        assert!(
            report.errors[0].message.contains("breaks its own schema"),
            "{report:?}"
        );
        assert!(report.errors[0].message.contains("100"), "{report:?}");
    }

    #[test]
    fn every_meta_schema_violation_is_reported_with_its_path() {
        let report = check(&json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": "ten"},
                "b": {"type": "strin"},
                "c": {"type": "string", "maxLength": -1}
            }
        }));
        let found = paths(&report.errors);
        for expected in [
            "/properties/a/minimum",
            "/properties/b/type",
            "/properties/c/maxLength",
        ] {
            assert!(found.contains(&expected), "{expected} missing: {report:?}");
        }
    }

    #[test]
    fn what_only_compiling_finds_is_an_error_too() {
        let report = check(&json!({
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": "([a-z"}}
        }));
        assert_eq!(report.errors.len(), 1, "{report:?}");
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let report = check(&json!({
            "type": "object",
            "properties": {"a/b": {"type": "string", "titel": "x"}}
        }));
        assert_eq!(paths(&report.warnings), ["/properties/a~1b/titel"]);
        assert!(report.warnings[0].message.contains("`title`"));
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("minimun", "minimum"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("maxlenght", "maxlength"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
