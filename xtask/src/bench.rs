//! `cargo xtask bench whisper`: real-time factor of the Whisper plugin inside the
//! sandbox and natively, side by side in one run.

pub fn bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("whisper") => Err("the whisper benchmark is not wired yet".into()),
        _ => Err("usage: cargo xtask bench whisper".into()),
    }
}
