//! Decoding one 30-second window: greedy or temperature sampling under Whisper's
//! timestamp rules, token suppression, and the openai-whisper quality measures
//! (average log-probability, compression ratio, no-speech probability).

use crate::network::{DecoderState, InferenceError, Network};
use crate::tokenizer::Tokenizer;

/// How to decode one window.
#[derive(Clone, Debug)]
pub struct WindowOptions {
    /// The start-of-transcript sequence: `<|sot|>` or `<|sot|><|lang|><|task|>`.
    pub sot_sequence: Vec<u32>,
    /// Context: the previous windows' tokens (and the initial prompt).
    pub prompt: Vec<u32>,
    pub temperature: f32,
    /// Beams kept at temperature 0 (1 = greedy).
    pub beam_size: usize,
    pub timestamps: bool,
    /// Most tokens to sample before giving up on an end-of-text.
    pub max_tokens: usize,
    /// Latest timestamp allowed for the first token (openai-whisper: 1 s = 50 steps).
    pub max_initial_timestamp_index: u32,
}

/// One decoded sequence.
#[derive(Clone, Debug, Default)]
struct Hypothesis {
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    /// Sum of the log-probabilities, including the end-of-text when `finished`.
    sum: f32,
    /// Ended with an end-of-text (rather than at the token cap).
    finished: bool,
}

/// What one decoding attempt produced.
#[derive(Clone, Debug)]
pub struct WindowResult {
    /// Sampled tokens (text and timestamps), without the final end-of-text.
    pub tokens: Vec<u32>,
    /// Log-probability of each of `tokens`.
    pub logprobs: Vec<f32>,
    pub avg_logprob: f32,
    /// Probability of `<|nospeech|>` right after `<|startoftranscript|>`.
    pub no_speech_prob: f32,
    pub temperature: f32,
    /// zlib compression ratio of the text; high means repetitive.
    pub compression_ratio: f32,
    /// Sampling stopped at the token cap rather than at an end-of-text.
    pub hit_cap: bool,
}

/// A tiny deterministic PRNG (SplitMix64) for temperature sampling: the same job gives
/// the same text, and no `rand` dependency is needed in the component.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..1`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Everything fixed about decoding with one model.
pub struct Decoder<'a, N> {
    pub model: &'a N,
    pub tokenizer: &'a Tokenizer,
    /// Tokens never sampled (non-speech symbols, task and start tokens).
    pub suppress: &'a [u32],
    /// Tokens not sampled first: the lone space and end-of-text.
    pub blank: Vec<u32>,
}

/// Told the timestamp (in steps of 20 ms from the window start) each time the
/// likeliest sequence reaches a new one, for progress within a window.
pub type OnTimestamp<'a> = dyn FnMut(u32) + 'a;

impl<N: Network> Decoder<'_, N> {
    /// Runs one decoding attempt on a window whose audio features are in `state`:
    /// beam search when `beam_size > 1` and the temperature is 0, else greedy or
    /// sampling.
    pub fn decode(
        &self,
        state: &mut N::State,
        options: &WindowOptions,
        rng: &mut SplitMix64,
        on_timestamp: &mut OnTimestamp<'_>,
    ) -> Result<WindowResult, InferenceError> {
        let sp = &self.tokenizer.specials;
        let n_ctx = self.model.dims().n_text_ctx;
        let mut initial = Vec::new();
        if !options.prompt.is_empty() {
            initial.push(sp.sot_prev);
            let keep = options.prompt.len().min(n_ctx / 2 - 1);
            initial.extend_from_slice(&options.prompt[options.prompt.len() - keep..]);
        }
        let sot_index = initial.len();
        initial.extend_from_slice(&options.sot_sequence);
        if !options.timestamps {
            initial.push(sp.no_timestamps);
        }
        let max_tokens = options.max_tokens.min(n_ctx - initial.len()).max(1);

        // The prompt, then at most `max_tokens - 1` sampled tokens are fed back.
        state.reset(initial.len() + max_tokens);
        // Only the start-of-transcript row (for the no-speech probability) and the last
        // row are needed from the whole prompt.
        let last = initial.len() - 1;
        let positions: &[usize] = if sot_index == last {
            &[last]
        } else {
            &[sot_index, last]
        };
        let mut rows = self.model.decode(&initial, state, positions)?;
        let first = rows.pop().ok_or_else(|| no_logits(positions.len()))?;
        let no_speech_prob = softmax_at(rows.first().unwrap_or(&first), sp.no_speech as usize);

        let beam_size = if options.temperature > 0.0 {
            1
        } else {
            options.beam_size.max(1)
        };
        let best = if beam_size > 1 {
            self.beam_search(state, options, first, max_tokens, beam_size, on_timestamp)?
        } else {
            self.sample(state, options, first, max_tokens, rng, on_timestamp)?
        };
        // openai-whisper divides by the sampled length plus the end-of-text.
        let avg_logprob = best.sum / (best.tokens.len() + 1) as f32;
        let text = self.tokenizer.decode(&best.tokens);
        Ok(WindowResult {
            compression_ratio: compression_ratio(text.trim()),
            tokens: best.tokens,
            logprobs: best.logprobs,
            avg_logprob,
            no_speech_prob,
            temperature: options.temperature,
            hit_cap: !best.finished,
        })
    }

    /// Greedy (temperature 0) or sampled decoding of one sequence.
    fn sample(
        &self,
        state: &mut N::State,
        options: &WindowOptions,
        mut logits: Vec<f32>,
        max_tokens: usize,
        rng: &mut SplitMix64,
        on_timestamp: &mut OnTimestamp<'_>,
    ) -> Result<Hypothesis, InferenceError> {
        let eot = self.tokenizer.specials.eot;
        let timestamp_begin = self.tokenizer.specials.timestamp_begin;
        let mut h = Hypothesis::default();
        loop {
            self.filter(&mut logits, &h.tokens, options);
            // Only the chosen token's log-probability is needed: one normaliser, not a
            // vocabulary-wide log-softmax (the sandbox has no vector `exp`).
            let lse = log_sum_exp(&logits);
            let next = if options.temperature > 0.0 {
                sample(&logits, options.temperature, rng)
            } else {
                argmax(&logits)
            };
            let logprob = logits[next as usize] - lse;
            h.sum += logprob;
            if next == eot {
                h.finished = true;
                return Ok(h);
            }
            h.tokens.push(next);
            h.logprobs.push(logprob);
            if next >= timestamp_begin {
                on_timestamp(next - timestamp_begin);
            }
            if h.tokens.len() >= max_tokens {
                return Ok(h);
            }
            logits = self
                .model
                .decode(&[next], state, &[0])?
                .pop()
                .ok_or_else(|| no_logits(1))?;
        }
    }

    /// Beam search as openai-whisper's `BeamSearchDecoder` (patience 1): keep the
    /// `beam_size` likeliest unfinished sequences, stop once `beam_size` sequences
    /// have ended, and pick the best by mean log-probability per token.
    fn beam_search(
        &self,
        state: &mut N::State,
        options: &WindowOptions,
        first: Vec<f32>,
        max_tokens: usize,
        beam_size: usize,
        on_timestamp: &mut OnTimestamp<'_>,
    ) -> Result<Hypothesis, InferenceError> {
        let eot = self.tokenizer.specials.eot;
        let timestamp_begin = self.tokenizer.specials.timestamp_begin;
        let mut beams = vec![Hypothesis::default()];
        let mut logits = vec![first];
        let mut finished: Vec<Hypothesis> = Vec::new();
        for step in 0..max_tokens {
            // (score, beam, token, token log-probability)
            let mut candidates: Vec<(f32, usize, u32, f32)> = Vec::new();
            for (b, (beam, row)) in beams.iter().zip(logits.iter_mut()).enumerate() {
                self.filter(row, &beam.tokens, options);
                // The likeliest tokens by logit are the likeliest by log-probability;
                // only theirs are computed.
                let lse = log_sum_exp(row);
                for token in top_k(row, beam_size + 1) {
                    let lp = row[token as usize] - lse;
                    if lp > f32::NEG_INFINITY {
                        candidates.push((beam.sum + lp, b, token, lp));
                    }
                }
            }
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut next: Vec<Hypothesis> = Vec::new();
            let mut sources: Vec<u32> = Vec::new();
            let mut newly_finished: Vec<Hypothesis> = Vec::new();
            for (score, b, token, lp) in candidates {
                let mut h = beams[b].clone();
                h.sum = score;
                if token == eot {
                    h.finished = true;
                    newly_finished.push(h);
                } else {
                    h.tokens.push(token);
                    h.logprobs.push(lp);
                    next.push(h);
                    sources.push(b as u32);
                    if next.len() == beam_size {
                        break;
                    }
                }
            }
            for h in newly_finished {
                if finished.len() >= beam_size {
                    break;
                }
                finished.push(h);
            }
            if finished.len() >= beam_size || next.is_empty() || step + 1 == max_tokens {
                beams = next;
                break;
            }
            // The likeliest beam is first: its latest timestamp is how far the window is.
            if let Some(&token) = next[0].tokens.last()
                && token >= timestamp_begin
            {
                on_timestamp(token - timestamp_begin);
            }
            state.select(&sources)?;
            let tokens: Vec<u32> = next
                .iter()
                .map(|h| *h.tokens.last().unwrap_or(&eot))
                .collect();
            logits = self.model.decode(&tokens, state, &[0])?;
            if logits.len() != next.len() {
                return Err(no_logits(next.len()));
            }
            beams = next;
        }
        // Not enough ended sequences: the unfinished ones compete too.
        for h in beams {
            if finished.len() >= beam_size {
                break;
            }
            finished.push(h);
        }
        let score = |h: &Hypothesis| h.sum / h.tokens.len().max(1) as f32;
        Ok(finished
            .into_iter()
            .max_by(|a, b| score(a).total_cmp(&score(b)))
            .unwrap_or_default())
    }

    /// Applies blank suppression, token suppression and the timestamp rules to the
    /// logits of the next position (openai-whisper's logit filters, in its order).
    fn filter(&self, logits: &mut [f32], sampled: &[u32], options: &WindowOptions) {
        let sp = &self.tokenizer.specials;
        let ninf = f32::NEG_INFINITY;
        let ts = sp.timestamp_begin as usize;
        if sampled.is_empty() {
            // SuppressBlank: no leading space-only token or immediate end.
            for &id in &self.blank {
                logits[id as usize] = ninf;
            }
        }
        for &id in self.suppress {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = ninf;
            }
        }
        logits[sp.no_timestamps as usize] = ninf;
        if !options.timestamps {
            logits[ts..].fill(ninf);
            return;
        }
        let is_ts = |t: &u32| *t >= sp.timestamp_begin;
        let last_was_ts = sampled.last().is_some_and(is_ts);
        let penultimate_was_ts = sampled.len() < 2 || is_ts(&sampled[sampled.len() - 2]);
        if last_was_ts {
            if penultimate_was_ts {
                logits[ts..].fill(ninf);
            } else {
                logits[..sp.eot as usize].fill(ninf);
            }
        }
        if let Some(&last_ts) = sampled.iter().rev().find(|t| is_ts(t)) {
            // Timestamps never decrease, and a segment never has zero length.
            let bound = if last_was_ts && !penultimate_was_ts {
                last_ts
            } else {
                last_ts + 1
            };
            let bound = (bound as usize).min(logits.len());
            logits[ts..bound].fill(ninf);
        }
        if sampled.is_empty() {
            logits[..ts].fill(ninf);
            let last_allowed = ts + options.max_initial_timestamp_index as usize;
            if last_allowed + 1 < logits.len() {
                logits[last_allowed + 1..].fill(ninf);
            }
        }
        // If all timestamps together are likelier than any text token, force one. Both
        // sides of the comparison in log-probabilities share the softmax's normaliser,
        // so it is made on the logits.
        let ts_logit = log_sum_exp(&logits[ts..]);
        let max_text = logits[..ts]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        if ts_logit > max_text {
            logits[..ts].fill(ninf);
        }
    }
}

fn no_logits(expected: usize) -> InferenceError {
    InferenceError(format!(
        "the network returned fewer than {expected} logit rows"
    ))
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Indices of the `k` largest values, largest first.
fn top_k(values: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<u32> = Vec::with_capacity(k + 1);
    for (i, &v) in values.iter().enumerate() {
        if best.len() == k && v <= values[best[k - 1] as usize] {
            continue;
        }
        let at = best
            .iter()
            .position(|&b| v > values[b as usize])
            .unwrap_or(best.len());
        best.insert(at, i as u32);
        best.truncate(k);
    }
    best
}

fn sample(logits: &[f32], temperature: f32, rng: &mut SplitMix64) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| (((l - max) / temperature) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = rng.next_f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i as u32;
        }
        target -= w;
    }
    argmax(logits)
}

/// `ln Σ exp(v)`: the softmax normaliser of a row.
fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

fn softmax_at(values: &[f32], index: usize) -> f32 {
    (values[index] - log_sum_exp(values)).exp()
}

/// `len(text) / len(zlib.compress(text))`, as openai-whisper measures repetition.
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(text.as_bytes(), 6);
    text.len() as f32 / compressed.len() as f32
}

/// If `tokens` end in the same block of text tokens repeated at least `min_repeats`
/// times, the length to keep (up to and including the first copy). Used as the last
/// resort when every temperature still produced a loop.
pub fn repeated_tail_cut(tokens: &[u32], min_repeats: usize) -> Option<usize> {
    let n = tokens.len();
    for period in 1..=n / min_repeats {
        let block = &tokens[n - period..];
        let mut repeats = 1;
        while repeats * period + period <= n
            && &tokens[n - (repeats + 1) * period..n - repeats * period] == block
        {
            repeats += 1;
        }
        if repeats >= min_repeats {
            return Some(n - (repeats - 1) * period);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_text_compresses_well() {
        let once = "the quick brown fox jumps over the lazy dog";
        assert!(compression_ratio(once) < 1.5);
        assert!(compression_ratio(&[once; 10].join(" ")) > 2.4);
    }

    #[test]
    fn repeated_tail_is_cut_to_its_first_copy() {
        assert_eq!(repeated_tail_cut(&[1, 2, 3, 4, 3, 4, 3, 4], 3), Some(4));
        assert_eq!(repeated_tail_cut(&[5, 9, 9, 9, 9], 3), Some(2));
        assert_eq!(repeated_tail_cut(&[1, 2, 3, 4], 2), None);
    }

    #[test]
    fn splitmix_is_deterministic_and_uniform_enough() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        assert!(
            xs.iter()
                .zip((0..1000).map(|_| b.next_f64()))
                .all(|(x, y)| *x == y)
        );
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean));
    }

    #[test]
    fn top_k_returns_the_largest_first() {
        assert_eq!(top_k(&[0.1, 3.0, -1.0, 2.0, 5.0], 3), vec![4, 1, 3]);
        assert_eq!(top_k(&[1.0], 3), vec![0]);
    }

    #[test]
    fn sampling_at_low_temperature_picks_the_top_token() {
        let mut rng = SplitMix64::new(1);
        let logits = [0.0, 5.0, f32::NEG_INFINITY, 1.0];
        for _ in 0..20 {
            assert_eq!(sample(&logits, 0.05, &mut rng), 1);
        }
    }
}
