//! `sandscribe plugin new NAME --lang rust [--dir D]`.

use std::path::PathBuf;
use std::process::ExitCode;

use sandscribe::authoring::PluginLanguage;
use sandscribe::authoring::scaffold::{self, ScaffoldRequest, SdkSource};

#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's id, which also names its folder and crate (lower case, digits, '-').
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum, default_value = "rust")]
    lang: PluginLanguage,
    /// The folder to make `NAME/` in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Rust: a local `plugin-sdk/` to depend on (default: the one this binary was built
    /// from, else the published crate).
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let sdk = match args.sdk {
        Some(path) => SdkSource::Path(std::path::absolute(&path)?),
        None => SdkSource::default_for_this_build(),
    };
    let request = ScaffoldRequest {
        id: args.name,
        language: args.lang,
        parent: args.dir,
        sdk: sdk.clone(),
    };
    let (root, files) = scaffold::create(&request)?;
    let sdk = match (&request.language, &sdk) {
        // A Python plugin names no SDK: `plugin build` bundles the Python SDK.
        (PluginLanguage::Python, _) => "plugin-sdk/python, bundled by `plugin build`".to_owned(),
        (_, SdkSource::Path(path)) => path.display().to_string(),
        (_, SdkSource::Registry(version)) => {
            format!("sandscribe-plugin-sdk {version} from crates.io")
        }
    };
    println!(
        "created {} ({} plugin, SDK: {sdk})",
        root.display(),
        request.language
    );
    for file in files {
        println!("  {}", file.strip_prefix(&root).unwrap_or(&file).display());
    }
    println!("next:");
    println!("  sandscribe plugin build {}", root.display());
    println!("  sandscribe plugins validate plugins/{}", request.id);
    Ok(ExitCode::SUCCESS)
}
