//! Long-form transcription: successive 30-second windows with openai-whisper's seek
//! logic, temperature fallback, silence skipping and segment timing.
//!
//! After each window the next one starts at the window's last timestamp when the
//! window ended inside an unfinished segment, or at the window's end when its last
//! segment was complete; so speech cut by a window border is decoded again whole.

use crate::audio::AudioSource;
use crate::config::{Config, Task};
use crate::decode::{Decoder, SplitMix64, WindowOptions, WindowResult, repeated_tail_cut};
use crate::engine::{Engine, Observer, Segment, TranscribeError, Transcription, Word};
use crate::mel::{HOP_LENGTH, MelSpectrogram, N_FRAMES, SAMPLE_RATE};
use crate::network::{DecoderState, InferenceError, Network};
use crate::timing::{self, MS_PER_AUDIO_FRAME};

/// Compression ratio above which a window counts as repetitive.
const COMPRESSION_RATIO_THRESHOLD: f32 = 2.4;
/// Average log-probability below which a window counts as failed.
const LOGPROB_THRESHOLD: f32 = -1.0;
/// `<|nospeech|>` probability above which a failed window counts as silence.
const NO_SPEECH_THRESHOLD: f32 = 0.6;
/// RMS level (−60 dBFS) under which a window is taken as silence without decoding.
/// Whisper's own no-speech test lets beam search "hear" a word ("you") in digital
/// silence; this gate catches that case and saves the encoder's time.
const SILENCE_RMS: f32 = 1e-3;
/// Temperature step of the fallback.
const TEMPERATURE_STEP: f32 = 0.2;
/// Milliseconds per mel frame and per timestamp step.
const MS_PER_FRAME: u64 = (HOP_LENGTH * 1000 / SAMPLE_RATE) as u64;
const MS_PER_TIMESTAMP: u64 = 2 * MS_PER_FRAME;

/// Transcribes 16 kHz mono audio window by window (config already validated) with
/// `model`, one of the engine's networks.
pub fn transcribe<N: Network, A: AudioSource + ?Sized>(
    engine: &Engine,
    model: &N,
    audio: &A,
    config: &Config,
    observer: &mut dyn Observer,
) -> Result<Transcription, TranscribeError> {
    let tokenizer = &engine.tokenizer;
    let sp = &tokenizer.specials;
    let decoder = Decoder {
        model,
        tokenizer,
        suppress: &engine.suppress,
        blank: [tokenizer.encode(" "), vec![sp.eot]].concat(),
    };
    let duration_ms = audio.len() as u64 * 1000 / SAMPLE_RATE as u64;
    let content_frames = audio.len() / HOP_LENGTH;

    let mut progress = Progress::new(observer);
    progress.report(0.0, "measuring the loudness");
    let mel = MelSpectrogram::new(model.dims().n_mels);
    let mut loudness = mel.loudness(audio);

    let multilingual = engine.multilingual();
    let mut language = if multilingual && config.language != "auto" {
        Some(config.language.clone())
    } else if multilingual {
        None
    } else {
        Some("en".to_owned())
    };

    let mut all_tokens: Vec<u32> = Vec::new();
    if !config.initial_prompt.trim().is_empty() {
        all_tokens = tokenizer.encode(&format!(" {}", config.initial_prompt.trim()));
    }
    let mut prompt_reset_since = 0;
    let mut rng = SplitMix64::new(0x5EED_5A4D ^ audio.len() as u64);
    let mut segments: Vec<Segment> = Vec::new();
    let mut seek = 0usize;
    let mut window = 0usize;
    let total_s = duration_ms as f32 / 1000.0;

    while seek < content_frames {
        if progress.observer.is_cancelled() {
            return Err(TranscribeError::Cancelled);
        }
        window += 1;
        let segment_size = N_FRAMES.min(content_frames - seek);
        let offset_ms = seek as u64 * MS_PER_FRAME;
        let fraction = seek as f32 / content_frames as f32;
        progress.report(
            fraction,
            &format!(
                "window {window}: encoding {:.1}–{:.1} s of {total_s:.1} s",
                offset_ms as f32 / 1000.0,
                (seek + segment_size) as f32 * MS_PER_FRAME as f32 / 1000.0
            ),
        );
        let window_samples = audio.read(seek * HOP_LENGTH, segment_size * HOP_LENGTH);
        if rms(&window_samples) < SILENCE_RMS {
            seek += segment_size;
            continue;
        }
        let input = mel.window_after(audio, &mut loudness, seek, segment_size);
        let mut state = model.start_window(&input)?;
        drop(input);

        let language = match &language {
            Some(code) => code.clone(),
            None => {
                let code = detect_language(engine, model, &mut state)?;
                language = Some(code.clone());
                code
            }
        };
        let mut sot_sequence = vec![sp.sot];
        if multilingual {
            sot_sequence.push(tokenizer.language_token(&language).unwrap_or(sp.sot + 1));
            sot_sequence.push(match config.task {
                Task::Transcribe => sp.transcribe,
                Task::Translate => sp.translate,
            });
        }
        progress.report(fraction, &format!("window {window}: decoding"));

        // Guard against loops: a window cannot hold more than ~10 tokens a second.
        let seconds = segment_size.div_ceil(100);
        let max_tokens = (config.max_tokens_per_window as usize).min(seconds * 10 + 10);
        let options = WindowOptions {
            sot_sequence: sot_sequence.clone(),
            prompt: all_tokens[prompt_reset_since..].to_vec(),
            temperature: config.temperature,
            beam_size: config.beam_size as usize,
            timestamps: config.timestamps,
            max_tokens,
            max_initial_timestamp_index: 50,
        };
        // Progress moves with the likeliest text's timestamps inside the window.
        let mut on_timestamp = |step: u32| {
            let frames = (step as usize * 2).min(segment_size);
            progress.report(
                (seek + frames) as f32 / content_frames as f32,
                &format!(
                    "window {window}: decoding, at {:.1} s",
                    (offset_ms + u64::from(step) * MS_PER_TIMESTAMP) as f32 / 1000.0
                ),
            );
        };
        let mut result =
            decode_with_fallback(&decoder, &mut state, options, &mut rng, &mut on_timestamp)?;

        let silent =
            result.no_speech_prob > NO_SPEECH_THRESHOLD && result.avg_logprob <= LOGPROB_THRESHOLD;
        if silent {
            seek += segment_size;
            continue;
        }
        if (result.compression_ratio > COMPRESSION_RATIO_THRESHOLD || result.hit_cap)
            && let Some(keep) = repeated_tail_cut(&result.tokens, 3)
        {
            result.tokens.truncate(keep);
            result.logprobs.truncate(keep);
        }

        let (window_segments, advance) = if config.timestamps {
            split_at_timestamps(&result, tokenizer.specials.timestamp_begin, segment_size)
        } else {
            (
                vec![RawSegment {
                    start_ms: 0,
                    end_ms: segment_size as u64 * MS_PER_FRAME,
                    range: 0..result.tokens.len(),
                }],
                segment_size,
            )
        };
        // Never stand still: a window that found no end moves on by its whole length.
        seek += if advance == 0 { segment_size } else { advance };

        let mut window_words = if config.words {
            progress.report(fraction, &format!("window {window}: timing words"));
            let window = WindowText {
                sot_sequence: &sot_sequence,
                result: &result,
                segments: &window_segments,
                offset_ms,
                segment_size,
            };
            time_words(engine, model, &mut state, &window)?
        } else {
            Vec::new()
        }
        .into_iter();

        for raw in window_segments {
            let words = window_words.next().unwrap_or_default();
            let tokens = &result.tokens[raw.range.clone()];
            let text = tokenizer.decode(tokens).trim().to_owned();
            let start = (offset_ms + raw.start_ms).min(duration_ms);
            let end = (offset_ms + raw.end_ms).min(duration_ms);
            if text.is_empty() || start == end {
                continue;
            }
            let previous_end = segments.last().map_or(0, |s| s.end_ms);
            let start_ms = start.max(previous_end);
            let logprobs = &result.logprobs[raw.range.clone()];
            let confidence = if logprobs.is_empty() {
                0.0
            } else {
                (logprobs.iter().sum::<f32>() / logprobs.len() as f32).exp()
            };
            let end_ms = end.max(start_ms);
            let segment = Segment {
                start_ms,
                end_ms,
                text,
                confidence,
                words: place_words(words, start_ms, end_ms),
            };
            progress.observer.segment(&segment);
            segments.push(segment);
            all_tokens.extend_from_slice(tokens);
        }
        if !config.condition_on_previous_text || result.temperature > 0.5 {
            prompt_reset_since = all_tokens.len();
        }
    }
    progress.report(1.0, "done");
    Ok(Transcription {
        language: language.unwrap_or_else(|| "en".into()),
        segments,
    })
}

/// One decoded window, as word timing needs it.
struct WindowText<'a> {
    sot_sequence: &'a [u32],
    result: &'a WindowResult,
    segments: &'a [RawSegment],
    /// Where the window starts in the file.
    offset_ms: u64,
    /// Mel frames of audio in the window.
    segment_size: usize,
}

/// The words of each of the window's segments with their times in the file (not yet
/// clamped into their segments): the window's text tokens are teacher-forced once
/// more after `<|notimestamps|>` and aligned to the audio by [`timing`].
fn time_words<N: Network>(
    engine: &Engine,
    model: &N,
    state: &mut N::State,
    window: &WindowText<'_>,
) -> Result<Vec<Vec<Word>>, InferenceError> {
    let tokenizer = &engine.tokenizer;
    let sp = &tokenizer.specials;
    let result = window.result;
    let mut text_tokens: Vec<u32> = Vec::new();
    let mut probabilities: Vec<f32> = Vec::new();
    let mut segment_words: Vec<Vec<timing::Piece>> = Vec::new();
    for raw in window.segments {
        let base = text_tokens.len();
        let tokens: Vec<u32> = raw
            .range
            .clone()
            .filter(|&i| result.tokens[i] < sp.eot)
            .map(|i| {
                probabilities.push(result.logprobs.get(i).map_or(0.0, |l| l.exp()));
                result.tokens[i]
            })
            .collect();
        let subwords = timing::subwords(&tokens, |ids| tokenizer.decode(ids));
        let words = timing::words(&subwords)
            .into_iter()
            .map(|mut w| {
                w.tokens = base + w.tokens.start..base + w.tokens.end;
                w
            })
            .collect();
        segment_words.push(words);
        text_tokens.extend(tokens);
    }
    if text_tokens.is_empty() {
        return Ok(vec![Vec::new(); window.segments.len()]);
    }

    let mut sequence = window.sot_sequence.to_vec();
    sequence.push(sp.no_timestamps);
    sequence.extend_from_slice(&text_tokens);
    sequence.push(sp.eot);
    let heads = &engine.alignment_heads;
    let weights = model.cross_attention_weights(&sequence, state, heads)?;
    let ctx = model.dims().n_audio_ctx;
    let frames = (window.segment_size / 2).clamp(1, ctx);
    let matrix = timing::alignment_matrix(&weights, heads.len(), sequence.len(), ctx, frames);
    // Rows from `<|notimestamps|>` to the last text token: the row of the token before
    // a word is where the decoder looks while it predicts the word's first token.
    let first = window.sot_sequence.len();
    let rows = text_tokens.len() + 1;
    let cost: Vec<f32> = matrix[first * frames..(first + rows) * frames]
        .iter()
        .map(|&v| -v)
        .collect();
    let starts = timing::row_starts(&cost, rows, frames);
    let at_ms = |row: usize| window.offset_ms + starts[row] as u64 * MS_PER_AUDIO_FRAME;
    Ok(segment_words
        .into_iter()
        .map(|words| {
            words
                .into_iter()
                .filter(|w| !w.text.trim().is_empty())
                .map(|w| {
                    let p = &probabilities[w.tokens.clone()];
                    Word {
                        text: w.text.trim().to_owned(),
                        start_ms: at_ms(w.tokens.start),
                        end_ms: at_ms(w.tokens.end),
                        confidence: p.iter().sum::<f32>() / p.len().max(1) as f32,
                    }
                })
                .collect()
        })
        .collect())
}

/// Clamps `words` into their segment `start_ms..=end_ms` and keeps them in order, each
/// starting no earlier than the previous one ends.
fn place_words(words: Vec<Word>, start_ms: u64, end_ms: u64) -> Vec<Word> {
    let mut previous_end = start_ms;
    words
        .into_iter()
        .map(|mut w| {
            w.start_ms = w.start_ms.clamp(start_ms, end_ms).max(previous_end);
            w.end_ms = w.end_ms.clamp(w.start_ms, end_ms);
            previous_end = w.end_ms;
            w
        })
        .collect()
}

fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len() as f64).sqrt() as f32
}

/// Decodes at the configured temperature and retries 0.2 higher (up to 1.0) while the
/// result is too repetitive or too unlikely, unless it is silence.
fn decode_with_fallback<N: Network>(
    decoder: &Decoder<'_, N>,
    state: &mut N::State,
    mut options: WindowOptions,
    rng: &mut SplitMix64,
    on_timestamp: &mut dyn FnMut(u32),
) -> Result<WindowResult, InferenceError> {
    let mut temperature = options.temperature;
    loop {
        options.temperature = temperature;
        let result = decoder.decode(state, &options, rng, on_timestamp)?;
        let repetitive = result.compression_ratio > COMPRESSION_RATIO_THRESHOLD;
        let unlikely = result.avg_logprob < LOGPROB_THRESHOLD;
        let silence = result.no_speech_prob > NO_SPEECH_THRESHOLD && unlikely;
        let next = temperature + TEMPERATURE_STEP;
        if silence || !(repetitive || unlikely) || next > 1.0 + 1e-3 {
            return Ok(result);
        }
        temperature = next;
    }
}

/// Picks the likeliest language token after `<|startoftranscript|>`.
fn detect_language<N: Network>(
    engine: &Engine,
    model: &N,
    state: &mut N::State,
) -> Result<String, TranscribeError> {
    let tokenizer = &engine.tokenizer;
    state.reset(1);
    let row = model
        .decode(&[tokenizer.specials.sot], state, &[0])?
        .pop()
        .ok_or_else(|| InferenceError("no logits for language detection".into()))?;
    let best = tokenizer
        .languages
        .iter()
        .max_by(|a, b| row[a.1 as usize].total_cmp(&row[b.1 as usize]))
        .map(|(code, _)| code.clone())
        .unwrap_or_else(|| "en".into());
    Ok(best)
}

/// Forwards progress to the observer, never backwards: a window's progress follows its
/// decoded timestamps, which a retry or the next window (that starts at the last
/// complete segment) may put behind what was already reported.
struct Progress<'a> {
    observer: &'a mut dyn Observer,
    reported: f32,
}

impl<'a> Progress<'a> {
    fn new(observer: &'a mut dyn Observer) -> Self {
        Self {
            observer,
            reported: 0.0,
        }
    }

    fn report(&mut self, fraction: f32, stage: &str) {
        self.reported = self.reported.max(fraction.clamp(0.0, 1.0));
        self.observer.progress(self.reported, stage);
    }
}

/// A segment inside one window, before it is placed on the file's timeline.
#[derive(Debug, PartialEq)]
struct RawSegment {
    start_ms: u64,
    end_ms: u64,
    /// Its tokens in the window's result.
    range: std::ops::Range<usize>,
}

/// Cuts a window's tokens into segments at consecutive timestamp pairs and says how far
/// to seek (in mel frames), as openai-whisper's `transcribe` does.
fn split_at_timestamps(
    result: &WindowResult,
    timestamp_begin: u32,
    segment_size: usize,
) -> (Vec<RawSegment>, usize) {
    let tokens = &result.tokens;
    let is_ts: Vec<bool> = tokens.iter().map(|&t| t >= timestamp_begin).collect();
    let ts_ms = |t: u32| u64::from(t - timestamp_begin) * MS_PER_TIMESTAMP;
    let n = tokens.len();
    let single_timestamp_ending = n >= 2 && !is_ts[n - 2] && is_ts[n - 1];
    let mut slices: Vec<usize> = (1..n).filter(|&i| is_ts[i - 1] && is_ts[i]).collect();
    if !slices.is_empty() {
        if single_timestamp_ending {
            slices.push(n);
        }
        let mut out = Vec::new();
        let mut last = 0;
        for &current in &slices {
            out.push(RawSegment {
                start_ms: ts_ms(tokens[last]),
                end_ms: ts_ms(tokens[current - 1]),
                range: last..current,
            });
            last = current;
        }
        let advance = if single_timestamp_ending {
            segment_size
        } else {
            // Seek to the end of the last complete segment; the rest is decoded again.
            (tokens[last - 1] - timestamp_begin) as usize * 2
        };
        (out, advance)
    } else {
        let mut end_ms = segment_size as u64 * MS_PER_FRAME;
        if let Some(&last_ts) = tokens.iter().rev().find(|&&t| t >= timestamp_begin)
            && last_ts != timestamp_begin
        {
            end_ms = ts_ms(last_ts);
        }
        (
            vec![RawSegment {
                start_ms: 0,
                end_ms,
                range: 0..n,
            }],
            segment_size,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u32 = 1000;

    fn result(tokens: &[u32]) -> WindowResult {
        WindowResult {
            tokens: tokens.to_vec(),
            logprobs: vec![0.0; tokens.len()],
            avg_logprob: 0.0,
            no_speech_prob: 0.0,
            temperature: 0.0,
            compression_ratio: 1.0,
            hit_cap: false,
        }
    }

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            confidence: 1.0,
        }
    }

    #[test]
    fn words_are_clamped_into_their_segment_and_kept_in_order() {
        let words = vec![
            word("a", 900, 1200),
            word("b", 1100, 1500),
            word("c", 1400, 2600),
        ];
        assert_eq!(
            place_words(words, 1000, 2000),
            vec![
                word("a", 1000, 1200),
                word("b", 1200, 1500),
                word("c", 1500, 2000)
            ]
        );
    }

    #[test]
    fn complete_last_segment_seeks_to_the_window_end() {
        // <0.00> a b <1.00><1.00> c <2.00>  (ends with a single timestamp)
        let r = result(&[TS, 1, 2, TS + 50, TS + 50, 3, TS + 100]);
        let (segs, advance) = split_at_timestamps(&r, TS, 3000);
        assert_eq!(advance, 3000);
        assert_eq!(
            segs,
            vec![
                RawSegment {
                    start_ms: 0,
                    end_ms: 1000,
                    range: 0..4
                },
                RawSegment {
                    start_ms: 1000,
                    end_ms: 2000,
                    range: 4..7
                },
            ]
        );
    }

    #[test]
    fn unfinished_last_segment_seeks_to_the_last_timestamp() {
        // <0.00> a <1.00><1.00> b c   (cut by the window end)
        let r = result(&[TS, 1, TS + 50, TS + 50, 2, 3]);
        let (segs, advance) = split_at_timestamps(&r, TS, 3000);
        assert_eq!(segs.len(), 1);
        assert_eq!(advance, 100, "1.00 s is 100 mel frames");
    }

    #[test]
    fn no_timestamp_pair_gives_one_segment_for_the_window() {
        let r = result(&[TS, 1, 2, TS + 150]);
        let (segs, advance) = split_at_timestamps(&r, TS, 2000);
        assert_eq!(advance, 2000);
        assert_eq!(
            segs,
            vec![RawSegment {
                start_ms: 0,
                end_ms: 3000,
                range: 0..4
            }]
        );
    }
}
