//! `speakers`: who spoke when, as a sandscribe diarizer (the `diarizer` world of
//! `sandscribe:plugin@0.3.0`).
//!
//! Speech (the transcript's segments, or loudness when there are none) is cut into
//! 1.6 s windows overlapping by half; each window's 40-band mel spectrogram goes through
//! Resemblyzer's GE2E speaker encoder ([`encoder`], weights read by the host from
//! `/assets/pretrained.pt`); the embeddings are clustered ([`cluster`]) into as many
//! speakers as asked, or as many as the threshold finds; the window labels become
//! smoothed turns ([`turns`]).
//!
//! ```text
//! /assets/pretrained.pt   Resemblyzer 0.1.4's weights (legacy torch format)
//! ```

mod checkpoint;
mod cluster;
mod config;
mod encoder;
mod mel;
mod pickle;
#[cfg(test)]
mod real_speech;
mod speech;
mod turns;

use std::path::PathBuf;

use sandscribe_plugin_sdk::prelude::*;

use crate::cluster::{Dendrogram, centroids, silhouette, similarity};
use crate::config::Config;
use crate::encoder::{BATCH, EMBEDDING, Encoder};
use crate::mel::{HOP, MelSpectrogram, SAMPLE_RATE};
use crate::speech::Span;
use crate::turns::Labelled;

/// Resemblyzer normalises every utterance up to this loudness before embedding it.
const TARGET_DBFS: f32 = -30.0;

/// Where the plugin's assets are: `/assets` in the component; natively (tests) the
/// folder `SANDSCRIBE_SPEAKERS_ASSETS` names.
fn assets_dir() -> PathBuf {
    #[cfg(target_arch = "wasm32")]
    {
        PathBuf::from("/assets")
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::env::var_os("SANDSCRIBE_SPEAKERS_ASSETS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("assets"))
    }
}

fn load_encoder() -> Result<Encoder, PluginError> {
    let dir = assets_dir();
    let load = || Encoder::load(&dir);
    // Natively the SDK reads the weights itself, from the same folder; in the component
    // the host resolves `pretrained.pt` in the plugin's assets.
    #[cfg(not(target_arch = "wasm32"))]
    let encoder = sandscribe_plugin_sdk::compute::native::with_assets_dir(&dir, load);
    #[cfg(target_arch = "wasm32")]
    let encoder = load();
    encoder.map_err(|e| {
        PluginError::Internal(format!(
            "cannot load the speaker encoder from {}: {e} (setup installs Resemblyzer's pretrained.pt there)",
            dir.join(encoder::MODEL_FILE).display()
        ))
    })
}

pub struct Speakers;

impl Diarizer for Speakers {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new("speakers", "Speakers", env!("CARGO_PKG_VERSION"), SAMPLE_RATE)
            .description(
                "Who spoke when: Resemblyzer's GE2E voice embeddings of 1.6 s windows, clustered by average linkage.",
            )
            .config_schema(&config::schema())
    }

    fn diarize(
        audio: &AudioInput<'_>,
        segments: &[Segment],
        speakers: SpeakerCount,
        config: Config,
    ) -> Result<Vec<SpeakerTurn>, PluginError> {
        config.check()?;
        if audio.sample_rate() != SAMPLE_RATE {
            return Err(PluginError::UnsupportedAudio(format!(
                "audio at {} Hz; the encoder needs {SAMPLE_RATE}",
                audio.sample_rate()
            )));
        }
        let duration_ms = audio.duration_ms();
        let (speech, gain) = scan(audio, segments)?;
        let windows = speech::windows(&speech, config.window_ms, config.min_speech_ms, duration_ms);
        if windows.is_empty() {
            sandscribe_plugin_sdk::info("no speech long enough to tell voices apart");
            return Ok(Vec::new());
        }
        progress(0.05, "loading the speaker encoder");
        let encoder = load_encoder()?;
        let embeddings = embed_windows(audio, &windows, gain, &encoder)?;
        progress(0.9, "clustering");
        check_cancelled()?;
        let labelled = label(&windows, &embeddings, speakers, &config);
        let turns = turns::build_turns(&speech, &labelled, config.min_turn_ms);
        progress(1.0, "done");
        Ok(turns)
    }
}

/// Speech spans (from `segments`, or by loudness) and the gain that brings the audio up
/// to [`TARGET_DBFS`] (never down), in one pass over the audio.
fn scan(audio: &AudioInput<'_>, segments: &[Segment]) -> Result<(Vec<Span>, f32), PluginError> {
    let rate = audio.sample_rate();
    let chunk = (speech::energy_frame(rate) * 2048) as u32;
    let (mut power, mut count) = (0f64, 0u64);
    let mut db = Vec::new();
    for c in audio.chunks(chunk) {
        check_cancelled()?;
        power += c
            .samples
            .iter()
            .map(|s| f64::from(*s) * f64::from(*s))
            .sum::<f64>();
        count += c.samples.len() as u64;
        if segments.is_empty() {
            db.extend(speech::frame_db(&c.samples, rate));
        }
    }
    let duration_ms = audio.duration_ms();
    let speech = if segments.is_empty() {
        speech::speech_from_db(&db, duration_ms)
    } else {
        let spans = segments
            .iter()
            .map(|s| Span {
                start_ms: s.start_ms,
                end_ms: s.end_ms,
            })
            .collect();
        speech::merge_spans(spans, duration_ms)
    };
    let rms_db = 10.0 * (power / count.max(1) as f64).max(1e-12).log10() as f32;
    let gain = 10f32
        .powf(((TARGET_DBFS - rms_db) / 20.0).max(0.0))
        .min(1000.0);
    Ok((speech, gain))
}

/// The embedding of every window, [`BATCH`] at a time.
fn embed_windows(
    audio: &AudioInput<'_>,
    windows: &[Span],
    gain: f32,
    encoder: &Encoder,
) -> Result<Vec<[f32; EMBEDDING]>, PluginError> {
    let mel = MelSpectrogram::new();
    let rate = u64::from(audio.sample_rate());
    let mut out = Vec::with_capacity(windows.len());
    for batch in windows.chunks(BATCH) {
        let mels: Vec<_> = batch
            .iter()
            .map(|w| {
                // One frame per HOP samples: frames = 1 + (len - 1) / HOP = window / 10 ms.
                let frames = ((w.len_ms() * rate / 1000) as usize / HOP).max(1);
                let len = frames * HOP - 1;
                let start = w.start_ms * rate / 1000;
                let mut samples = audio.read(start, len as u32);
                samples.resize(len, 0.0);
                samples.iter_mut().for_each(|s| *s *= gain);
                mel.frames(&samples)
            })
            .collect();
        out.extend(encoder.embed(&mels)?);
        let done = out.len() as f32 / windows.len() as f32;
        progress(
            0.05 + 0.85 * done,
            &format!("embedding voices {}/{}", out.len(), windows.len()),
        );
    }
    Ok(out)
}

/// Clusters the embeddings into the number of speakers `speakers` asks for (or the
/// threshold finds) and gives each window its label and a confidence: the margin of its
/// similarity to its own speaker's centroid over the nearest other's, mapped so that 0.5
/// is a tie (its similarity to the centroid with one speaker).
fn label(
    windows: &[Span],
    embeddings: &[[f32; EMBEDDING]],
    speakers: SpeakerCount,
    config: &Config,
) -> Vec<Labelled> {
    let n = embeddings.len();
    let (min, max) = speakers.bounds(config.max_speakers);
    let (min, max) = (min as usize, (max as usize).min(n).max(1));
    let tree = Dendrogram::build(embeddings);
    let last: Vec<String> = tree
        .last_merges(4)
        .iter()
        .map(|s| format!("{s:.3}"))
        .collect();
    sandscribe_plugin_sdk::debug(&format!(
        "{n} windows; the last merges join clusters at similarity {}",
        last.join(", ")
    ));
    let mut k = tree
        .clusters_above(config.threshold)
        .clamp(min.min(max), max);
    if min != max && k >= 2 && min <= 1 {
        let labels = tree.cut(k);
        let score = silhouette(embeddings, &labels);
        sandscribe_plugin_sdk::debug(&format!("{k} speakers: silhouette {score:.3}"));
        if score < config.min_silhouette {
            sandscribe_plugin_sdk::debug(&format!(
                "{k} speakers scored silhouette {score:.3} < {}: one speaker",
                config.min_silhouette
            ));
            k = 1;
        }
    }
    let labels = tree.cut(k);
    let centres = centroids(embeddings, &labels);
    windows
        .iter()
        .zip(embeddings)
        .zip(&labels)
        .map(|((span, e), &label)| {
            let own = similarity(e, &centres[label]);
            let other = centres
                .iter()
                .enumerate()
                .filter(|(c, _)| *c != label)
                .map(|(_, c)| similarity(e, c))
                .fold(f32::NEG_INFINITY, f32::max);
            let confidence = if other.is_finite() {
                0.5 + (own - other)
            } else {
                own
            };
            Labelled {
                span: *span,
                label,
                confidence: confidence.clamp(0.0, 1.0),
            }
        })
        .collect()
}

export_diarizer!(Speakers);
