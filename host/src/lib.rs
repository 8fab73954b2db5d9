//! sandscribe: a transcription server that runs speech engines as sandboxed WebAssembly
//! components.
//!
//! The data path runs one way: an upload is decoded ([`audio`]), submitted as a job
//! ([`jobs`]), run by a plugin in its own store ([`runtime`]), stored once
//! ([`storage`]), and read back as exports ([`export`]) and over HTTP: the JSON API
//! ([`api`]) and the pages ([`web`]), put together by [`app`], which holds what they share.
//! Beside the data path, [`authoring`] holds the plugin author's tools (scaffold, build,
//! validate).

pub mod api;
pub mod app;
pub mod audio;
pub mod auth;
pub mod authoring;
pub mod config;
pub mod diarize;
pub mod digest;
pub mod export;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod runtime;
pub mod speakers;
pub mod storage;
pub mod transcript;
pub mod web;
pub mod webhooks;
