//! Tests on real voices: a man (goforward) and a LibriVox reader (a woman), joined with
//! and without a pause. They need `SANDSCRIBE_SPEAKERS_ASSETS` (a folder holding
//! `pretrained.pt`) and `SANDSCRIBE_SPEECH_DIR` (the 16 kHz WAVs setup installs); without
//! them they skip, except under `CI=true`, where they fail saying what is missing.

use std::path::PathBuf;
use std::time::Instant;

use sandscribe_plugin_sdk::mock::MockHost;
use sandscribe_plugin_sdk::{Segment, SpeakerCount, SpeakerTurn};

use crate::Speakers;

/// The folder `var` names, if it holds `file`; `None` to skip (panics under CI).
fn folder(var: &str, file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var).map(PathBuf::from);
    match dir {
        Some(d) if d.join(file).is_file() => Some(d),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} must name a folder holding {file} (cargo xtask setup installs it)")
        }
        _ => {
            eprintln!("skipped: set {var} to a folder holding {file}");
            None
        }
    }
}

/// Both folders, or `None` to skip; the assets one is what the plugin reads natively.
fn inputs() -> Option<PathBuf> {
    folder("SANDSCRIBE_SPEAKERS_ASSETS", crate::encoder::MODEL_FILE)?;
    folder("SANDSCRIBE_SPEECH_DIR", "goforward.wav")
}

/// 16-bit PCM mono samples of a WAV file (the `data` chunk found by walking the chunks).
fn wav(dir: &std::path::Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir.join(name)).expect("the speech file reads");
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let data = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
            return data
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{name} has no data chunk")
}

/// Runs the plugin, printing how long it took.
fn diarize(
    what: &str,
    samples: &[f32],
    segments: &[Segment],
    speakers: SpeakerCount,
) -> Vec<SpeakerTurn> {
    let started = Instant::now();
    let run = MockHost::new().diarize::<Speakers>(samples, 16_000, segments, speakers, "{}");
    let turns = run.result.expect("turns");
    for (_, line) in &run.logs {
        eprintln!("  log: {line}");
    }
    eprintln!(
        "{what}: {:.1} s of audio in {:.2} s: {:?}",
        samples.len() as f32 / 16_000.0,
        started.elapsed().as_secs_f32(),
        turns
            .iter()
            .map(|t| (t.start_ms, t.end_ms, t.speaker.as_str(), t.confidence))
            .collect::<Vec<_>>()
    );
    turns
}

fn speaker_count(turns: &[SpeakerTurn]) -> usize {
    let mut names: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// `first` then `pause_ms` of silence then `second`, and the time the second starts.
fn join(first: &[f32], second: &[f32], pause_ms: usize) -> (Vec<f32>, u64) {
    let mut out = first.to_vec();
    out.extend(std::iter::repeat_n(0.0, pause_ms * 16));
    let boundary = (out.len() / 16) as u64;
    out.extend_from_slice(second);
    (out, boundary)
}

/// Two speakers in either order, with and without a pause, from loudness alone: two
/// labels, and the change within 0.5 s of where the second voice starts.
#[test]
fn a_man_then_a_woman_are_two_speakers_changing_at_the_join() {
    let Some(dir) = inputs() else { return };
    let man = wav(&dir, "goforward.wav");
    let woman = wav(&dir, "librivox-0870.wav");
    for (name, first, second) in [("man+woman", &man, &woman), ("woman+man", &woman, &man)] {
        for pause_ms in [0, 500] {
            let (samples, boundary) = join(first, second, pause_ms);
            let turns = diarize(
                &format!("{name}, pause {pause_ms} ms"),
                &samples,
                &[],
                SpeakerCount::Auto,
            );
            assert_eq!(
                speaker_count(&turns),
                2,
                "{name} pause {pause_ms}: {turns:?}"
            );
            assert_eq!(
                turns.len(),
                2,
                "{name} pause {pause_ms}: one change, {turns:?}"
            );
            let change = turns[1].start_ms;
            // With a pause the change may fall anywhere in the silence.
            let early = boundary.saturating_sub(pause_ms as u64);
            let off = if change < early {
                early - change
            } else {
                change.saturating_sub(boundary)
            };
            assert!(
                off <= 500,
                "{name} pause {pause_ms}: change at {change} ms, voices change at {boundary} ms"
            );
            assert!(
                turns.windows(2).all(|p| p[0].end_ms <= p[1].start_ms),
                "overlap: {turns:?}"
            );
        }
    }
}

/// The same with the transcript's segments telling speech from silence.
#[test]
fn segments_from_a_transcript_give_the_same_two_speakers() {
    let Some(dir) = inputs() else { return };
    let man = wav(&dir, "goforward.wav");
    let woman = wav(&dir, "librivox-0880.wav");
    let (samples, boundary) = join(&man, &woman, 500);
    let end = (samples.len() / 16) as u64;
    let segments = [
        Segment::new(0, boundary - 500, "go forward ten meters"),
        Segment::new(boundary, end, "he was not an ill disposed young man"),
    ];
    let turns = diarize("segments", &samples, &segments, SpeakerCount::Auto);
    assert_eq!(speaker_count(&turns), 2, "{turns:?}");
    assert!(turns[1].start_ms.abs_diff(boundary) <= 500, "{turns:?}");
}

/// One reader is one speaker, however many windows.
#[test]
fn one_librivox_reader_is_one_speaker() {
    let Some(dir) = inputs() else { return };
    for clip in ["librivox-0870.wav", "librivox-0890.wav"] {
        let samples = wav(&dir, clip);
        let turns = diarize(clip, &samples, &[], SpeakerCount::Auto);
        assert_eq!(speaker_count(&turns), 1, "{clip}: {turns:?}");
    }
}

/// Asking for more speakers than there are still gives well-formed turns.
#[test]
fn exactly_three_on_two_voices_returns_at_most_three_labels() {
    let Some(dir) = inputs() else { return };
    let (samples, _) = join(
        &wav(&dir, "goforward.wav"),
        &wav(&dir, "librivox-0870.wav"),
        0,
    );
    let turns = diarize("exact(3)", &samples, &[], SpeakerCount::Exact(3));
    assert!(!turns.is_empty());
    assert!(speaker_count(&turns) <= 3, "{turns:?}");
    assert!(
        turns.windows(2).all(|p| p[0].end_ms <= p[1].start_ms),
        "overlap: {turns:?}"
    );
    let duration = (samples.len() / 16) as u64;
    assert!(
        turns
            .iter()
            .all(|t| t.start_ms < t.end_ms && t.end_ms <= duration)
    );
}
