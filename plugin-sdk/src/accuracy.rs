//! Scoring a transcript against a reference by word error rate, the usual measure of a
//! speech engine's accuracy.
//!
//! Plugin authors use it to hold an engine to a bound in their own tests and benchmarks
//! (the Whisper example's speech tests and bench do), and sandscribe's end-to-end tests
//! use the same function, so every number reported for a plugin is computed one way.
//! Pure Rust, no host imports: it runs natively as well as inside a component.

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
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
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
    prev[h.len()] as f64 / r.len() as f64
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
