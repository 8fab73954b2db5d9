//! A plugin's configuration schema: checking a job's configuration against it and
//! filling in its defaults, so the plugin always receives a complete, valid object.
//!
//! The configuration comes from the person or program submitting the job, so it is
//! untrusted JSON; the schema comes from the plugin, compiled once when it loads.

use serde::Serialize;
use serde_json::Value;

/// One problem with a configuration object: where (JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConfigProblem {
    /// JSON pointer of the offending field, e.g. `/window_ms` (empty for the whole object).
    pub field: String,
    pub message: String,
}

/// A compiled JSON Schema and the top-level defaults it declares.
pub struct ConfigSchema {
    validator: jsonschema::Validator,
    /// `properties.<name>.default` of the schema, in its order.
    defaults: Vec<(String, Value)>,
}

impl ConfigSchema {
    /// Compiles `schema`; the error says why it is not a usable JSON Schema.
    pub fn new(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
        let defaults = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .filter_map(|(name, p)| Some((name.clone(), p.get("default")?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            validator,
            defaults,
        })
    }

    /// Validates `config` and fills in the top-level defaults it leaves out, giving the
    /// configuration the job really runs with; or every problem, each with its field.
    pub fn resolve(&self, config: &Value) -> Result<Value, Vec<ConfigProblem>> {
        let problems: Vec<ConfigProblem> = self
            .validator
            .iter_errors(config)
            .map(|e| ConfigProblem {
                field: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut resolved = config.clone();
        if let Some(object) = resolved.as_object_mut() {
            for (name, default) in &self.defaults {
                if !object.contains_key(name) {
                    object.insert(name.clone(), default.clone());
                }
            }
        }
        Ok(resolved)
    }

    /// Whether `config` is valid as it stands.
    pub fn is_valid(&self, config: &Value) -> bool {
        self.validator.is_valid(config)
    }
}
