//! Cue timestamps, formatted with integer arithmetic so no float rounding can shift a cue.

/// `HH:MM:SS,mmm` as SRT wants it; hours grow past two digits rather than wrapping.
pub fn srt_timestamp(ms: u64) -> String {
    timestamp(ms, ',')
}

/// `HH:MM:SS.mmm` as WebVTT wants it; hours grow past two digits rather than wrapping.
pub fn vtt_timestamp(ms: u64) -> String {
    timestamp(ms, '.')
}

fn timestamp(ms: u64, fraction_separator: char) -> String {
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1_000 % 60;
    let millis = ms % 1_000;
    format!("{hours:02}:{minutes:02}:{seconds:02}{fraction_separator}{millis:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_all_zeros() {
        assert_eq!(srt_timestamp(0), "00:00:00,000");
        assert_eq!(vtt_timestamp(0), "00:00:00.000");
    }

    #[test]
    fn milliseconds_are_padded_to_three_digits() {
        assert_eq!(srt_timestamp(1_001), "00:00:01,001");
        assert_eq!(vtt_timestamp(1_001), "00:00:01.001");
        assert_eq!(srt_timestamp(1_010), "00:00:01,010");
    }

    #[test]
    fn seconds_roll_over_at_a_thousand_milliseconds() {
        assert_eq!(srt_timestamp(999), "00:00:00,999");
        assert_eq!(srt_timestamp(1_000), "00:00:01,000");
        assert_eq!(vtt_timestamp(999), "00:00:00.999");
        assert_eq!(vtt_timestamp(1_000), "00:00:01.000");
    }

    #[test]
    fn a_day_is_24_hours_not_a_wrap_to_zero() {
        assert_eq!(srt_timestamp(86_400_000), "24:00:00,000");
        assert_eq!(vtt_timestamp(86_399_999), "23:59:59.999");
    }

    #[test]
    fn minutes_and_hours_roll_over_exactly() {
        assert_eq!(srt_timestamp(59_999), "00:00:59,999");
        assert_eq!(srt_timestamp(60_000), "00:01:00,000");
        assert_eq!(srt_timestamp(3_599_999), "00:59:59,999");
        assert_eq!(srt_timestamp(3_600_000), "01:00:00,000");
        assert_eq!(vtt_timestamp(3_600_000), "01:00:00.000");
    }

    #[test]
    fn hours_past_99_widen_instead_of_wrapping() {
        assert_eq!(srt_timestamp(359_999_999), "99:59:59,999");
        assert_eq!(srt_timestamp(360_000_000), "100:00:00,000");
        assert_eq!(vtt_timestamp(360_000_000), "100:00:00.000");
    }

    #[test]
    fn largest_value_does_not_overflow() {
        assert_eq!(srt_timestamp(u64::MAX), "5124095576030:25:51,615");
    }
}
