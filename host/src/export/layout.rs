//! Laying out a segment's text as subtitle lines.
//!
//! Lines are kept as lists of words (not joined strings) so that cue timing can later be
//! matched against the segment's word timings, word for word.

/// One subtitle line: never empty.
pub type Line<'a> = Vec<&'a str>;

/// The words of `text`, split at any whitespace.
///
/// A byte-order mark counts as whitespace: a plugin that passes one through must not put
/// a BOM at the start of an exported file or in the middle of a cue. So do control
/// characters (NUL, BEL, ESC, DEL, C1): they are invisible at best, a WebVTT parser
/// reads NUL back as U+FFFD (so SRT and WebVTT would disagree), and ESC sequences are
/// terminal markup.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c == '\u{feff}' || c.is_control())
        .filter(|word| !word.is_empty())
}

/// The lines a cue shows for `text`.
///
/// Without a limit the text's own line breaks are kept, with blank lines dropped (a blank
/// line would end an SRT or WebVTT cue early) and runs of spaces collapsed. With a limit
/// the words are re-flowed greedily: each line takes as many words as fit in
/// `max_chars` characters, and a word longer than the limit gets a line of its own
/// rather than being cut.
pub fn lines(text: &str, max_chars: Option<usize>) -> Vec<Line<'_>> {
    match max_chars {
        None => text
            .lines()
            .map(|line| words(line).collect::<Line<'_>>())
            .filter(|line| !line.is_empty())
            .collect(),
        Some(max_chars) => fill(words(text), max_chars),
    }
}

/// The characters a line takes on screen (words plus the single spaces between them).
pub fn line_chars(line: &[&str]) -> usize {
    let word_chars: usize = line.iter().map(|word| word.chars().count()).sum();
    word_chars + line.len().saturating_sub(1)
}

fn fill<'a>(words: impl Iterator<Item = &'a str>, max_chars: usize) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let mut current: Line<'a> = Vec::new();
    let mut current_chars = 0;
    for word in words {
        let word_chars = word.chars().count();
        if !current.is_empty() && current_chars + 1 + word_chars > max_chars {
            lines.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        if !current.is_empty() {
            current_chars += 1;
        }
        current.push(word);
        current_chars += word_chars;
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_keeps_line_breaks_but_drops_blank_lines() {
        assert_eq!(
            lines("  one  two \r\n\n \nthree\r four ", None),
            vec![vec!["one", "two"], vec!["three", "four"]]
        );
    }

    #[test]
    fn whitespace_only_text_has_no_lines() {
        assert!(lines(" \n\t\r\n ", None).is_empty());
        assert!(lines(" \n\t ", Some(10)).is_empty());
    }

    #[test]
    fn limit_fills_lines_greedily_up_to_max_chars() {
        assert_eq!(
            lines("the quick brown fox jumps", Some(10)),
            vec![vec!["the", "quick"], vec!["brown", "fox"], vec!["jumps"]]
        );
        // Exactly at the limit still fits.
        assert_eq!(lines("abcd efghi", Some(10)), vec![vec!["abcd", "efghi"]]);
    }

    #[test]
    fn zero_limit_puts_every_word_on_its_own_line() {
        assert_eq!(
            lines("a bc d", Some(0)),
            vec![vec!["a"], vec!["bc"], vec!["d"]]
        );
    }

    #[test]
    fn limit_ignores_the_texts_own_line_breaks() {
        assert_eq!(
            lines("one\ntwo three\n\nfour", Some(9)),
            vec![vec!["one", "two"], vec!["three"], vec!["four"]]
        );
    }

    #[test]
    fn word_longer_than_limit_gets_its_own_line() {
        assert_eq!(
            lines("a incomprehensibilities b", Some(5)),
            vec![vec!["a"], vec!["incomprehensibilities"], vec!["b"]]
        );
    }

    #[test]
    fn limit_counts_characters_not_bytes() {
        assert_eq!(lines("ääää öööö", Some(9)), vec![vec!["ääää", "öööö"]]);
    }

    #[test]
    fn byte_order_mark_is_treated_as_whitespace() {
        assert_eq!(lines("\u{feff}hello", None), vec![vec!["hello"]]);
    }

    #[test]
    fn control_characters_separate_words_and_never_reach_a_line() {
        assert_eq!(
            lines("bell\u{7} nul\u{0}x esc\u{1b}[31m del\u{7f} c1\u{85}", None),
            vec![vec!["bell", "nul", "x", "esc", "[31m", "del", "c1"]]
        );
        assert_eq!(words("\u{0}\u{1}").count(), 0);
    }

    #[test]
    fn line_chars_counts_single_spaces_between_words() {
        assert_eq!(line_chars(&["ab", "cde"]), 6);
        assert_eq!(line_chars(&[]), 0);
    }
}
