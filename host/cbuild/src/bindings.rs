//! The C bindings of a WIT world, generated with `wit-bindgen-c` as a library.

use std::path::{Path, PathBuf};

use crate::{CBuildError, io};

/// Where the WIT package comes from: a folder (a checkout's `wit/v0.2.0/`) or files
/// embedded in a binary (`sandscribe plugin build` carries the contract it serves).
#[derive(Debug, Clone, Copy)]
pub enum WitSource<'a> {
    Folder(&'a Path),
    /// `(file name, text)` of each `.wit` file of one package.
    Files(&'a [(&'a str, &'a str)]),
}

impl WitSource<'_> {
    fn origin(&self) -> String {
        match self {
            Self::Folder(dir) => dir.display().to_string(),
            Self::Files(_) => "the contract built into sandscribe".to_owned(),
        }
    }

    fn load(&self, resolve: &mut wit_parser::Resolve) -> Result<wit_parser::PackageId, String> {
        match self {
            Self::Folder(dir) => resolve
                .push_path(dir)
                .map(|(package, _)| package)
                .map_err(|e| format!("{e:#}")),
            Self::Files(files) => {
                let mut sources = wit_parser::SourceMap::default();
                for (name, text) in *files {
                    sources.push(Path::new(name), *text);
                }
                let group = sources.parse().map_err(|(_, e)| format!("{e:#}"))?;
                resolve.push_group(group).map_err(|e| format!("{e:#}"))
            }
        }
    }
}

/// Writes the C bindings of `world` (`<world>.h`, `<world>.c` and the object
/// `<world>_component_type.o` holding the component type) into `dir`, rewriting only
/// files whose bytes change (so cached objects stay valid); returns `dir`.
pub fn generate_bindings(
    wit: WitSource<'_>,
    world: &str,
    dir: &Path,
) -> Result<PathBuf, CBuildError> {
    let wit_error = |message| CBuildError::Wit {
        origin: wit.origin(),
        message,
    };
    let mut resolve = wit_parser::Resolve::default();
    let package = wit.load(&mut resolve).map_err(wit_error)?;
    let world = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| wit_error(format!("{e:#}")))?;
    let options = wit_bindgen_c::Opts {
        // The host lends the audio for the call; the bindings give the borrow back when
        // the export returns, as the component model requires.
        autodrop_borrows: wit_bindgen_c::Enabled::Yes,
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    options
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| CBuildError::Bindgen(format!("{e:#}")))?;
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    for (name, bytes) in files.iter() {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
            continue;
        }
        std::fs::write(&path, bytes).map_err(io("write", &path))?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIT: &str = "package test:demo@0.1.0;\nworld greeter {\n  export greet: func(name: string) -> string;\n}\n";

    #[test]
    fn embedded_wit_gives_a_header_source_and_type_object() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let out = generate_bindings(
            WitSource::Files(&[("demo.wit", WIT)]),
            "greeter",
            dir.path(),
        )
        .expect("bindings");
        let header = std::fs::read_to_string(out.join("greeter.h")).expect("the header");
        assert!(header.contains("exports_greeter_greet"), "{header}");
        assert!(out.join("greeter.c").is_file());
        assert!(out.join("greeter_component_type.o").is_file());
    }

    #[test]
    fn an_unknown_world_names_the_origin() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let err = generate_bindings(WitSource::Files(&[("demo.wit", WIT)]), "nope", dir.path())
            .expect_err("no such world");
        assert!(err.to_string().contains("built into sandscribe"), "{err}");
    }
}
