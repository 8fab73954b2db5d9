//! Numbers, times and failures in words a person reads easily.

use time::OffsetDateTime;

use crate::jobs::{FailureKind, JobError};

/// A message as a sentence: capital first letter, final full stop.
pub fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A position in the audio: `m:ss.d`, or `h:mm:ss` from an hour on.
pub fn clock(ms: u64) -> String {
    let tenths = (ms % 1000) / 100;
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}.{tenths}")
    }
}

/// A length of audio: `1 h 2 min`, `3 min 4 s`, `5.2 s`.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    if secs >= 3600 {
        format!("{} h {} min", secs / 3600, (secs / 60) % 60)
    } else if secs >= 60 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else {
        format!("{}.{} s", secs, (ms % 1000) / 100)
    }
}

/// A file size with a binary unit.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A large count with thousands separated: `12,345,678`. Fuel is compared digit by
/// digit between runs, so it is shown exactly rather than rounded.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A moment as `YYYY-MM-DD HH:MM UTC`.
pub fn date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// What a failed job means for the person who started it, then the details.
pub fn failure(error: &JobError) -> (String, String) {
    let summary = match error.kind {
        FailureKind::PluginTrap => "The speech engine crashed while working on this file.",
        FailureKind::OutOfMemory => "The speech engine needed more memory than it is allowed.",
        FailureKind::StackOverflow => "The speech engine ran out of stack space.",
        FailureKind::InvalidOutput => {
            "The speech engine returned a transcript that failed the server's checks."
        }
        FailureKind::InvalidComputeCall => {
            "The speech engine made a calculation request the server refused."
        }
        FailureKind::PluginBadConfig => "The speech engine did not accept these settings.",
        FailureKind::PluginUnsupportedAudio => "The speech engine cannot work with this audio.",
        FailureKind::PluginInternal => "The speech engine reported an error.",
        FailureKind::TimedOut => "The job took longer than its time limit and was stopped.",
        FailureKind::FuelExhausted => {
            "The job used up the computing budget (fuel) it is allowed and was stopped."
        }
        FailureKind::Audio => "The file could not be decoded as audio.",
        FailureKind::Server => "The server could not finish the job.",
        FailureKind::Interrupted => {
            "The server stopped before this job finished; you can run it again."
        }
    };
    (summary.to_owned(), sentence(&error.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_read_naturally() {
        assert_eq!(clock(0), "0:00.0");
        assert_eq!(clock(61_250), "1:01.2");
        assert_eq!(clock(3_723_000), "1:02:03");
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(duration(2_500), "2.5 s");
        assert_eq!(duration(125_000), "2 min 5 s");
    }

    #[test]
    fn counts_are_exact_with_thousands_separated() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(12_345_678), "12,345,678");
    }

    #[test]
    fn messages_become_sentences() {
        assert_eq!(sentence("the file is empty"), "The file is empty.");
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
