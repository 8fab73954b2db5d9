//! `sandscribe plugin new NAME`: a plugin folder that builds and runs as it is.
//!
//! The templates are embedded in the binary (`templates/<language>/`), so a scaffold
//! needs nothing but the binary. Each template has `{{placeholders}}` for the plugin's
//! id, name, crate name and the SDK dependency line. The Rust template's code is the
//! guide's example plugin itself (`example-plugins/energy-vad/src/lib.rs`, which takes its
//! id from the crate's name), so the example and the scaffold cannot drift apart; its
//! name, [`EXAMPLE_NAME`], becomes the new plugin's.

use std::path::{Path, PathBuf};

use super::PluginLanguage;
use crate::runtime::is_plugin_id;

/// One file of a template: where it goes in the new folder, and its text.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

/// `template!("rust", "src/lib.rs")`: the embedded file `templates/rust/src/lib.rs`, made
/// as `src/lib.rs`; a third argument names the file made when it differs.
macro_rules! template {
    ($language:literal, $file:literal) => {
        template!($language, $file, $file)
    };
    ($language:literal, $file:literal, $made_as:literal) => {
        TemplateFile {
            path: $made_as,
            text: include_str!(concat!("templates/", $language, "/", $file)),
        }
    };
}

/// The Rust template: a small energy-based voice-activity plugin.
const RUST_TEMPLATE: &[TemplateFile] = &[
    template!("rust", "Cargo.toml"),
    TemplateFile {
        path: "src/lib.rs",
        text: include_str!("../../../example-plugins/energy-vad/src/lib.rs"),
    },
    template!("rust", "plugin.toml"),
    template!("rust", "README.md"),
    template!("rust", "gitignore", ".gitignore"),
];

/// The Python template: the same detector, with the Python SDK's helpers.
const PYTHON_TEMPLATE: &[TemplateFile] = &[
    template!("python", "plugin.py"),
    template!("python", "plugin.toml"),
    template!("python", "README.md"),
    template!("python", "gitignore", ".gitignore"),
];

/// The C template: the same detector on the generated C bindings.
const C_TEMPLATE: &[TemplateFile] = &[
    template!("c", "plugin.c"),
    template!("c", "schema.json"),
    template!("c", "plugin.toml"),
    template!("c", "README.md"),
    template!("c", "gitignore", ".gitignore"),
];

/// Where the scaffold's SDK dependency points (Rust; a Python plugin names no SDK, the
/// build brings it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A local checkout of `plugin-sdk/` (an absolute path).
    Path(PathBuf),
    /// The published crate, by version requirement.
    Registry(String),
}

impl SdkSource {
    /// The SDK of the source tree this binary was built from, when it is still there;
    /// else the published crate of the same minor version.
    pub fn default_for_this_build() -> Self {
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        match built_from.canonicalize() {
            Ok(path) if path.join("Cargo.toml").is_file() => Self::Path(path),
            _ => Self::Registry("0.3".to_owned()),
        }
    }

    /// The right-hand side of the `sandscribe-plugin-sdk = ...` line.
    fn dependency(&self) -> String {
        match self {
            // A TOML basic string: backslashes (Windows paths) and quotes escaped.
            Self::Path(path) => {
                let text = path.display().to_string();
                format!(
                    "{{ path = \"{}\" }}",
                    text.replace('\\', "\\\\").replace('"', "\\\"")
                )
            }
            Self::Registry(version) => format!("\"{version}\""),
        }
    }
}

/// What to make.
#[derive(Debug, Clone)]
pub struct ScaffoldRequest {
    /// The plugin id, which names the folder, the crate and the plugin.
    pub id: String,
    pub language: PluginLanguage,
    /// The folder the plugin's folder is made in.
    pub parent: PathBuf,
    pub sdk: SdkSource,
}

/// Why no scaffold was made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "\"{0}\" cannot be a plugin id: use 1 to 64 lower-case letters, digits and '-', starting with a letter or digit (e.g. \"my-vad\")"
    )]
    BadId(String),
    #[error("{0} already exists; pick another name or --dir, or remove it")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes a new plugin folder `<parent>/<id>/` and returns its path and the files made.
pub fn create(request: &ScaffoldRequest) -> Result<(PathBuf, Vec<PathBuf>), ScaffoldError> {
    if !is_plugin_id(&request.id) {
        return Err(ScaffoldError::BadId(request.id.clone()));
    }
    let template = match request.language {
        PluginLanguage::Rust => RUST_TEMPLATE,
        PluginLanguage::Python => PYTHON_TEMPLATE,
        PluginLanguage::C => C_TEMPLATE,
    };
    let root = request.parent.join(&request.id);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let mut written = Vec::new();
    for file in template {
        let path = root.join(file.path);
        let write = |source| ScaffoldError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        std::fs::write(&path, render(file.text, request)).map_err(write)?;
        written.push(path);
    }
    Ok((root, written))
}

/// The display name of the example the Rust template's code is (see the module's doc).
const EXAMPLE_NAME: &str = "Energy VAD";

/// Fills a template's placeholders.
fn render(text: &str, request: &ScaffoldRequest) -> String {
    text.replace(EXAMPLE_NAME, "{{name}}")
        .replace("{{id}}", &request.id)
        .replace("{{crate_name}}", &request.id)
        .replace("{{name}}", &display_name(&request.id))
        .replace("{{sdk_dependency}}", &request.sdk.dependency())
}

/// "my-vad" → "My Vad": the human-readable name `info()` starts with.
fn display_name(id: &str) -> String {
    id.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(parent: &Path, id: &str) -> ScaffoldRequest {
        ScaffoldRequest {
            id: id.to_owned(),
            language: PluginLanguage::Rust,
            parent: parent.to_owned(),
            sdk: SdkSource::Path(PathBuf::from("/opt/sandscribe/plugin-sdk")),
        }
    }

    fn assert_no_placeholders(files: &[PathBuf]) {
        for file in files {
            let text = std::fs::read_to_string(file).expect("written");
            assert!(
                !text.contains("{{"),
                "{} keeps a placeholder",
                file.display()
            );
        }
    }

    #[test]
    fn the_rust_scaffold_fills_every_placeholder() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (root, files) = create(&request(dir.path(), "my-vad")).expect("scaffold");
        assert_eq!(root, dir.path().join("my-vad"));
        assert_eq!(files.len(), RUST_TEMPLATE.len());
        assert_no_placeholders(&files);
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        let parsed: toml::Table = toml::from_str(&manifest).expect("Cargo.toml is TOML");
        assert_eq!(parsed["package"]["name"].as_str(), Some("my-vad"));
        assert_eq!(
            parsed["dependencies"]["sandscribe-plugin-sdk"]["path"].as_str(),
            Some("/opt/sandscribe/plugin-sdk")
        );
        assert_eq!(
            parsed["lib"]["crate-type"].as_array().map(Vec::len),
            Some(1)
        );
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
        let info: String = lib.split_whitespace().collect();
        assert!(
            info.contains(r#"PluginInfo::new(env!("CARGO_PKG_NAME"),"MyVad","#),
            "{lib}"
        );
        let plugin_toml = std::fs::read_to_string(root.join("plugin.toml")).expect("plugin.toml");
        crate::runtime::Manifest::read(&root).expect("plugin.toml is a valid manifest");
        assert!(plugin_toml.contains("[limits]"));
    }

    #[test]
    fn the_embedded_schemas_pass_the_hosts_schema_check() {
        let rust = include_str!("../../../example-plugins/energy-vad/src/lib.rs")
            .split_once("r#\"")
            .and_then(|(_, rest)| rest.split_once("\"#"))
            .map(|(schema, _)| schema)
            .expect("the Rust template has a raw-string schema");
        let python = include_str!("templates/python/plugin.py")
            .split_once("SCHEMA = \"\"\"")
            .and_then(|(_, rest)| rest.split_once("\"\"\""))
            .map(|(schema, _)| schema)
            .expect("the Python template has a triple-quoted schema");
        assert_eq!(rust, python, "the templates take the same configuration");
        let c = include_str!("templates/c/schema.json");
        assert_eq!(
            c.trim(),
            rust.trim(),
            "the templates take the same configuration"
        );
        let schema: serde_json::Value = serde_json::from_str(rust).expect("JSON");
        assert_eq!(
            crate::runtime::check_schema(&schema),
            crate::runtime::SchemaReport::default()
        );
    }

    #[test]
    fn an_existing_folder_is_left_alone() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir(dir.path().join("taken")).expect("folder");
        let err = create(&request(dir.path(), "taken")).expect_err("refused");
        assert!(matches!(err, ScaffoldError::Exists(_)), "{err}");
    }

    #[test]
    fn a_name_that_is_no_id_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for bad in ["My Plugin", "../escape", "", "-dash", "UPPER"] {
            let err = create(&request(dir.path(), bad)).expect_err("refused");
            assert!(matches!(err, ScaffoldError::BadId(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn the_c_scaffold_fills_every_placeholder() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut c = request(dir.path(), "c-vad");
        c.language = PluginLanguage::C;
        let (root, files) = create(&c).expect("scaffold");
        assert_eq!(files.len(), C_TEMPLATE.len());
        assert_no_placeholders(&files);
        let plugin = std::fs::read_to_string(root.join("plugin.c")).expect("plugin.c");
        assert!(plugin.contains("#define PLUGIN_ID \"c-vad\""), "{plugin}");
        assert!(plugin.contains("owned_string(\"C Vad\")"), "{plugin}");
        assert_eq!(PluginLanguage::detect(&root).ok(), Some(PluginLanguage::C));
        crate::runtime::Manifest::read(&root).expect("plugin.toml is a valid manifest");
    }

    #[test]
    fn the_python_scaffold_fills_every_placeholder() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut python = request(dir.path(), "py-vad");
        python.language = PluginLanguage::Python;
        let (root, files) = create(&python).expect("scaffold");
        assert_eq!(files.len(), PYTHON_TEMPLATE.len());
        assert_no_placeholders(&files);
        let plugin = std::fs::read_to_string(root.join("plugin.py")).expect("plugin.py");
        assert!(
            plugin.contains("\"py-vad\",\n            \"Py Vad\","),
            "{plugin}"
        );
        assert_eq!(
            PluginLanguage::detect(&root).ok(),
            Some(PluginLanguage::Python)
        );
        crate::runtime::Manifest::read(&root).expect("plugin.toml is a valid manifest");
    }

    #[test]
    fn sdk_paths_are_escaped_for_toml() {
        let sdk = SdkSource::Path(PathBuf::from(r#"C:\sdk "x""#));
        assert_eq!(sdk.dependency(), r#"{ path = "C:\\sdk \"x\"" }"#);
        assert_eq!(SdkSource::Registry("0.3".into()).dependency(), "\"0.3\"");
    }

    #[test]
    fn display_names_are_capitalised_words() {
        assert_eq!(display_name("my-vad"), "My Vad");
        assert_eq!(display_name("vad2"), "Vad2");
    }
}
