//! End-to-end tests: the real `sandscribe` server with the real fixture plugins, over HTTP.
//!
//! One test binary with a module per area. Every test starts its own server (a free
//! port, its own data folder), so the tests run in parallel. Build the server and the
//! fixtures first with `cargo xtask setup`; run with `cargo test --release -p sandscribe-e2e`.

mod author_tools;
mod bad_input;
mod cluster;
mod compute;
mod diarization;
mod echo;
mod events;
mod faults;
mod form_fields;
mod formats;
mod fuel;
mod http_limits;
mod load;
mod logins;
mod origins;
mod plugins;
mod pocketsphinx;
mod python_plugin;
mod queue;
mod restart;
mod results;
mod sandbox;
mod served_files;
mod sessions;
mod speakers;
mod speakers_plugin;
mod tenants;
mod webhooks;
mod whisper;
