//! Word timings from the decoder's cross-attention, as openai-whisper's
//! `word_timestamps=True` finds them.
//!
//! After a window is decoded its text tokens are fed once more (teacher forcing) and the
//! cross-attention weights of the model's *alignment heads* (heads whose attention
//! follows the speech) are read back. Per head the weights are standardised along the
//! token axis (each audio frame's column gets mean 0 and variance 1, as openai-whisper's
//! `std_mean(dim=-2)`), median-filtered along the frames, and averaged over the heads.
//! Dynamic time warping of the negated matrix then gives a monotonic path from the
//! first token to the last and from the first audio frame to the last: the frame where
//! the path enters a token's row is when that token starts. Audio frames (of the
//! encoder's output) are 20 ms apart.
//!
//! Tokens are grouped into words (a token that begins with a space begins a word,
//! punctuation joins its neighbour) so the words' texts joined give the segment text.

use std::ops::Range;

/// Milliseconds per encoder output frame (two 10 ms mel frames).
pub const MS_PER_AUDIO_FRAME: u64 = 20;
/// Width of the median filter along the frames (openai-whisper's `medfilt_width`).
pub const MEDIAN_WIDTH: usize = 7;
/// Punctuation that joins the word after it (openai-whisper's default).
pub const PREPEND_PUNCTUATION: &str = "\"'“¿([{-";
/// Punctuation that joins the word before it (openai-whisper's default).
pub const APPEND_PUNCTUATION: &str = "\"'.。,，!！?？:：”)]}、";

/// The median of each run of `width` values along `row` (odd `width`), the ends padded
/// by reflection (`[a b c …]` is read as `[… c b a b c …]`), as openai-whisper's
/// `median_filter`. A row no longer than half the width is left alone.
pub fn median_filter(row: &mut [f32], width: usize) {
    let pad = width / 2;
    let n = row.len();
    if pad == 0 || n <= pad {
        return;
    }
    let source = row.to_vec();
    let at = |i: isize| -> f32 {
        // Reflect without repeating the edge value.
        let last = n as isize - 1;
        let mut i = i;
        if i < 0 {
            i = -i;
        }
        if i > last {
            i = 2 * last - i;
        }
        source[i.clamp(0, last) as usize]
    };
    let mut window = vec![0f32; 2 * pad + 1];
    for (j, out) in row.iter_mut().enumerate() {
        for (k, w) in window.iter_mut().enumerate() {
            *w = at(j as isize + k as isize - pad as isize);
        }
        window.sort_by(f32::total_cmp);
        *out = window[pad];
    }
}

/// The cheapest monotonic path through `cost` (`rows × cols`, row-major) from `(0, 0)`
/// to `(rows - 1, cols - 1)` moving one row down, one column right or both; as
/// `(row, col)` pairs in order. Ties prefer the diagonal, then the step down, then the
/// step right, as openai-whisper's `dtw_cpu`.
pub fn dtw(cost: &[f32], rows: usize, cols: usize) -> Vec<(usize, usize)> {
    assert_eq!(cost.len(), rows * cols, "a {rows} × {cols} cost matrix");
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let width = cols + 1;
    let mut total = vec![f32::INFINITY; (rows + 1) * width];
    // 0: diagonal, 1: from the row above, 2: from the column to the left.
    let mut trace = vec![0u8; (rows + 1) * width];
    total[0] = 0.0;
    for j in 1..=cols {
        for i in 1..=rows {
            let c0 = total[(i - 1) * width + j - 1];
            let c1 = total[(i - 1) * width + j];
            let c2 = total[i * width + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            total[i * width + j] = cost[(i - 1) * cols + j - 1] + c;
            trace[i * width + j] = t;
        }
    }
    let (mut i, mut j) = (rows, cols);
    let mut path = Vec::with_capacity(rows + cols);
    // The first row and column are infinitely dear, so the path only meets them at the
    // origin.
    while i > 0 && j > 0 {
        path.push((i - 1, j - 1));
        match trace[i * width + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

/// For each row of `cost` (`rows × cols`), the column where the [`dtw`] path enters it.
pub fn row_starts(cost: &[f32], rows: usize, cols: usize) -> Vec<usize> {
    let mut starts = vec![0; rows];
    let mut previous = None;
    for (i, j) in dtw(cost, rows, cols) {
        if previous != Some(i) {
            starts[i] = j;
            previous = Some(i);
        }
    }
    starts
}

/// The alignment matrix of one window: `weights` are the alignment heads' softmax
/// cross-attention weights `[heads, tokens, ctx]` over the encoder's `ctx` frames, of
/// which the first `frames` hold the window's audio. Returns `[tokens, frames]`.
pub fn alignment_matrix(
    weights: &[f32],
    heads: usize,
    tokens: usize,
    ctx: usize,
    frames: usize,
) -> Vec<f32> {
    assert_eq!(weights.len(), heads * tokens * ctx);
    let frames = frames.clamp(1, ctx);
    let mut matrix = vec![0f32; tokens * frames];
    let mut head = vec![0f32; tokens * frames];
    for h in 0..heads {
        // Softmax over the audio frames only (openai-whisper slices before its softmax):
        // the host's weights over all `ctx` frames, renormalised over the first `frames`.
        for t in 0..tokens {
            let from = (h * tokens + t) * ctx;
            let row = &weights[from..from + frames];
            let sum: f32 = row.iter().sum();
            let scale = if sum > 0.0 { 1.0 / sum } else { 0.0 };
            for (out, &w) in head[t * frames..(t + 1) * frames].iter_mut().zip(row) {
                *out = w * scale;
            }
        }
        // Standardise each frame's column over the tokens.
        for f in 0..frames {
            let mean = (0..tokens).map(|t| head[t * frames + f]).sum::<f32>() / tokens as f32;
            let var = (0..tokens)
                .map(|t| (head[t * frames + f] - mean).powi(2))
                .sum::<f32>()
                / tokens as f32;
            let std = var.sqrt();
            for t in 0..tokens {
                let v = &mut head[t * frames + f];
                *v = if std > 0.0 { (*v - mean) / std } else { 0.0 };
            }
        }
        for (t, row) in head.chunks_exact_mut(frames).enumerate() {
            median_filter(row, MEDIAN_WIDTH);
            for (m, &v) in matrix[t * frames..(t + 1) * frames].iter_mut().zip(&*row) {
                *m += v / heads as f32;
            }
        }
    }
    matrix
}

/// A piece of text and the tokens it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub tokens: Range<usize>,
}

impl Piece {
    pub fn new(text: &str, tokens: Range<usize>) -> Self {
        Self {
            text: text.to_owned(),
            tokens,
        }
    }
}

/// Groups decoded subwords (each whole characters, in token order) into words: a subword
/// that starts with a space, or is punctuation alone, starts a new word; then punctuation
/// is merged into its neighbour as openai-whisper's `merge_punctuations` does (opening
/// marks into the word after, closing marks into the word before).
pub fn words(subwords: &[Piece]) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for s in subwords {
        let trimmed = s.text.trim();
        let punctuation = !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_punctuation());
        match out.last_mut() {
            Some(last) if !(s.text.starts_with(' ') || punctuation) => {
                last.text.push_str(&s.text);
                last.tokens.end = s.tokens.end;
            }
            _ => out.push(s.clone()),
        }
    }
    merge_punctuation(out)
}

fn merge_punctuation(mut words: Vec<Piece>) -> Vec<Piece> {
    let is = |set: &str, text: &str| {
        let t = text.trim();
        !t.is_empty() && t.chars().all(|c| set.contains(c))
    };
    // Opening marks join the word after them (from the end, so runs collect).
    let mut i = words.len().saturating_sub(1);
    while i > 0 {
        let previous = &words[i - 1];
        if previous.text.starts_with(' ') && is(PREPEND_PUNCTUATION, &previous.text) {
            let previous = words.remove(i - 1);
            let following = &mut words[i - 1];
            following.text = previous.text + &following.text;
            following.tokens.start = previous.tokens.start;
        }
        i -= 1;
    }
    // Closing marks join the word before them.
    let mut i = 1;
    while i < words.len() {
        let (previous, following) = (&words[i - 1], &words[i]);
        if !previous.text.ends_with(' ') && is(APPEND_PUNCTUATION, &following.text) {
            let following = words.remove(i);
            let previous = &mut words[i - 1];
            previous.text.push_str(&following.text);
            previous.tokens.end = following.tokens.end;
        } else {
            i += 1;
        }
    }
    words
}

/// Cuts `tokens` into subwords of whole characters: `decode` of a run of tokens, the
/// run grown while the text ends in a broken character (a character split across byte
/// tokens decodes to U+FFFD until its last byte is there).
pub fn subwords(tokens: &[u32], decode: impl Fn(&[u32]) -> String) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in 1..=tokens.len() {
        let text = decode(&tokens[start..end]);
        if !text.ends_with('\u{FFFD}') || end == tokens.len() {
            out.push(Piece {
                text,
                tokens: start..end,
            });
            start = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_filter_takes_the_median_of_seven_with_reflected_ends() {
        let mut row = [0.0, 9.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0, 0.0, 1.0];
        median_filter(&mut row, 7);
        // Index 0 reads [0 0 9 | 0 | 9 0 0] (reflected: 0, 0, 9 before it): median 0.
        // Index 2 reads [9 | 0 9 0 0 5 5]: median 5.
        // Index 9 reads [5 5 0 | 1 | 0 5 5] (reflected: 0, 5, 5 after it): median 5.
        assert_eq!(row, [0.0, 0.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]);
    }

    #[test]
    fn median_filter_removes_a_single_spike_and_keeps_a_step() {
        let mut row = [1.0, 1.0, 1.0, 8.0, 1.0, 1.0, 1.0, 1.0];
        median_filter(&mut row, 7);
        assert_eq!(row, [1.0; 8]);
        let mut step = [0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0];
        median_filter(&mut step, 7);
        assert_eq!(step, [0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn median_filter_leaves_rows_shorter_than_its_half_width() {
        let mut row = [3.0, 1.0, 2.0];
        median_filter(&mut row, 7);
        assert_eq!(row, [3.0, 1.0, 2.0]);
    }

    #[test]
    fn dtw_follows_the_cheap_cells() {
        // Token 0 is cheap on frames 0-1, token 1 on frames 2-4, token 2 on frame 5.
        #[rustfmt::skip]
        let cost = [
            0.0, 0.0, 9.0, 9.0, 9.0, 9.0,
            9.0, 9.0, 0.0, 0.0, 0.0, 9.0,
            9.0, 9.0, 9.0, 9.0, 9.0, 0.0,
        ];
        assert_eq!(
            dtw(&cost, 3, 6),
            vec![(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (2, 5)]
        );
        assert_eq!(row_starts(&cost, 3, 6), vec![0, 2, 5]);
    }

    #[test]
    fn dtw_goes_down_when_rows_outnumber_columns() {
        let cost = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
        assert_eq!(dtw(&cost, 3, 2), vec![(0, 0), (1, 0), (2, 1)]);
        assert_eq!(row_starts(&cost, 3, 2), vec![0, 0, 1]);
    }

    #[test]
    fn dtw_of_one_cell_is_that_cell() {
        assert_eq!(dtw(&[5.0], 1, 1), vec![(0, 0)]);
    }

    #[test]
    fn alignment_matrix_renormalises_over_the_audio_and_standardises_each_frame() {
        // One head, two tokens, three encoder frames of which two hold audio.
        let weights = [0.5, 0.25, 0.25, 0.25, 0.5, 0.25];
        let matrix = alignment_matrix(&weights, 1, 2, 3, 2);
        // Renormalised: [2/3 1/3; 1/3 2/3]; each column standardised to ±1.
        let want = [1.0, -1.0, -1.0, 1.0];
        for (got, want) in matrix.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{matrix:?}");
        }
        // Two heads with opposite patterns average to zero.
        let two = [
            0.5, 0.25, 0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.25, 0.5, 0.25, 0.25,
        ];
        assert!(
            alignment_matrix(&two, 2, 2, 3, 2)
                .iter()
                .all(|v| v.abs() < 1e-5)
        );
    }

    fn pieces(texts: &[&str]) -> Vec<Piece> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Piece::new(t, i..i + 1))
            .collect()
    }

    #[test]
    fn spaces_start_words_and_closing_punctuation_joins_the_word_before() {
        let got = words(&pieces(&[
            " Go", " for", "ward", ",", " ten", " met", "ers", ".",
        ]));
        assert_eq!(
            got,
            vec![
                Piece::new(" Go", 0..1),
                Piece::new(" forward,", 1..4),
                Piece::new(" ten", 4..5),
                Piece::new(" meters.", 5..8),
            ]
        );
    }

    #[test]
    fn opening_punctuation_joins_the_word_after() {
        let got = words(&pieces(&[
            " He", " said", " \"", "Hi", "!\"", " (", "no", ")",
        ]));
        assert_eq!(
            got,
            vec![
                Piece::new(" He", 0..1),
                Piece::new(" said", 1..2),
                Piece::new(" \"Hi!\"", 2..5),
                Piece::new(" (no)", 5..8),
            ]
        );
    }

    #[test]
    fn a_leading_subword_without_space_is_a_word() {
        let got = words(&pieces(&["Well", "...", " yes", "?"]));
        assert_eq!(
            got,
            vec![Piece::new("Well...", 0..2), Piece::new(" yes?", 2..4)]
        );
    }

    #[test]
    fn subwords_keep_split_characters_together() {
        // Tokens 1 and 2 are the two bytes of "é".
        let decode = |ids: &[u32]| -> String {
            let bytes: Vec<u8> = ids
                .iter()
                .flat_map(|&id| match id {
                    0 => b" caf".to_vec(),
                    1 => vec![0xC3],
                    2 => vec![0xA9],
                    _ => b" ok".to_vec(),
                })
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        assert_eq!(
            subwords(&[0, 1, 2, 3], decode),
            vec![
                Piece::new(" caf", 0..1),
                Piece::new("é", 1..3),
                Piece::new(" ok", 3..4)
            ]
        );
    }
}
