//! The `sandscribe` command: `serve`, `transcribe`, `plugins list`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
