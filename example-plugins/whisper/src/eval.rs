//! Helpers for the native bench and tests: reading 16-bit PCM clips and scoring text
//! by word error rate. Not used by the component itself.

use std::path::Path;

/// Reads a 16 kHz mono 16-bit clip: a `.wav` (PCM) or headerless little-endian `.raw`.
pub fn read_pcm16(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        wav_data(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        &bytes[..]
    };
    Ok(data
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect())
}

/// The samples of a 16 kHz mono 16-bit PCM WAV file.
fn wav_data(bytes: &[u8]) -> Result<&[u8], String> {
    let mut pos = 12;
    let mut format_ok = false;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = &bytes[pos + 8..(pos + 8 + size).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                if (channels, rate, bits) != (1, 16_000, 16) {
                    return Err(format!(
                        "need 16 kHz mono 16-bit PCM, got {rate} Hz, {channels} channels, {bits} bits"
                    ));
                }
                format_ok = true;
            }
            b"data" if format_ok => return Ok(body),
            _ => {}
        }
        pos += 8 + size + (size & 1);
    }
    Err("no PCM data chunk".into())
}

/// Lower case, punctuation removed (hyphens split words), digits and the common
/// titles (Mr., Mrs., Dr.) spelled out, split into words.
pub fn normalize(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .flat_map(|w| match (w.parse::<u64>(), w) {
            (Ok(n), _) => number_words(n),
            (_, "mr") => vec!["mister".to_owned()],
            (_, "mrs") => vec!["missus".to_owned()],
            (_, "dr") => vec!["doctor".to_owned()],
            _ => vec![w.to_owned()],
        })
        .collect()
}

/// Spells out `n` below a million ("ten", "twenty one"); larger numbers digit by digit.
fn number_words(n: u64) -> Vec<String> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    fn below_thousand(n: u64, out: &mut Vec<String>) {
        if n >= 100 {
            out.push(ONES[(n / 100) as usize].into());
            out.push("hundred".into());
        }
        let rest = n % 100;
        if rest >= 20 {
            out.push(TENS[(rest / 10) as usize].into());
            if !rest.is_multiple_of(10) {
                out.push(ONES[(rest % 10) as usize].into());
            }
        } else if rest > 0 || n == 0 {
            out.push(ONES[rest as usize].into());
        }
    }
    let mut out = Vec::new();
    if n >= 1_000_000 {
        n.to_string()
            .chars()
            .for_each(|d| out.push(ONES[d.to_digit(10).unwrap_or(0) as usize].into()));
    } else {
        if n >= 1000 {
            below_thousand(n / 1000, &mut out);
            out.push("thousand".into());
        }
        if n < 1000 || !n.is_multiple_of(1000) {
            below_thousand(n % 1000, &mut out);
        }
    }
    out
}

/// Word error rate of `hypothesis` against `reference` after [`normalize`]:
/// (substitutions + deletions + insertions) / reference words.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f32 {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = prev[j] + usize::from(rw != hw);
            row[j + 1] = substitution.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[h.len()] as f32 / r.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_punctuation_do_not_count_as_errors() {
        assert_eq!(
            word_error_rate("go forward ten meters", "Go forward 10 meters."),
            0.0
        );
        assert_eq!(normalize("It's 21!"), vec!["it's", "twenty", "one"]);
        assert_eq!(
            normalize("Mr. Ill-disposed"),
            vec!["mister", "ill", "disposed"]
        );
    }

    #[test]
    fn wer_counts_substitutions_insertions_and_deletions() {
        assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
        assert_eq!(word_error_rate("a b", "a b c d"), 1.0);
    }
}
