"""SRT and WebVTT for tricky transcripts (empty segments, markup and arrows in the text,
times past an hour and past a hundred hours, zero-length segments, splitting), written
by the host's real export writers (`host/examples/export-samples.rs`), checked by PyPI
`srt` and npm `webvtt-parser`; and the CLI's subtitles.
"""

import json
import subprocess

import pytest

from conftest import EXPORT_SAMPLES, PLUGINS, SERVER_BIN, WHISPER
from subtitles import Cue, check_subtitles, parse_srt, parse_vtt_files, same_cues


def sample_names() -> list[str]:
    return sorted(p.name[: -len(".cues.json")] for p in EXPORT_SAMPLES.glob("*.cues.json"))


def test_samples_were_written():
    assert len(sample_names()) >= 10, (
        f"no export samples in {EXPORT_SAMPLES}; `cargo xtask test` writes them "
        "(cargo run --release -p sandscribe --example export-samples -- DIR)"
    )


def test_every_sample_parses_and_holds_the_intended_cues():
    names = sample_names()
    vtt = parse_vtt_files([EXPORT_SAMPLES / f"{name}.vtt" for name in names])
    for name in names:
        expected = [
            Cue(c["start_ms"], c["end_ms"], tuple(c["lines"]))
            for c in json.loads((EXPORT_SAMPLES / f"{name}.cues.json").read_text())
        ]
        srt_cues = parse_srt((EXPORT_SAMPLES / f"{name}.srt").read_text(encoding="utf-8"))
        assert srt_cues == expected, name
        assert same_cues(vtt[EXPORT_SAMPLES / f"{name}.vtt"], expected), name


def cues_of(name: str) -> list[Cue]:
    return parse_srt((EXPORT_SAMPLES / f"{name}.srt").read_text(encoding="utf-8"))


def test_empty_segments_give_no_cues():
    assert cues_of("empty-segments") == []
    assert (EXPORT_SAMPLES / "empty-segments.srt").read_text() == ""
    assert (EXPORT_SAMPLES / "empty-segments.vtt").read_text() == "WEBVTT\n"
    assert [c.lines for c in cues_of("empty-segments-between-text")] == [("before",), ("after",)]


def test_markup_and_arrows_survive_as_text():
    lines = [c.lines for c in cues_of("markup-and-arrows")]
    assert lines[0] == ("<b>bold</b> & <i>italic</i> <script>x</script>",)
    assert lines[1] == ("a --> b",) and lines[2] == ("-->",)
    vtt = (EXPORT_SAMPLES / "markup-and-arrows.vtt").read_text()
    assert vtt.count("-->") == len(lines), "only timing lines hold an arrow"


def test_times_past_an_hour_and_a_hundred_hours():
    cues = cues_of("over-an-hour")
    hour = 3_600_000
    assert (cues[0].start_ms, cues[0].end_ms) == (hour - 1, hour + 1)
    assert cues[-1].start_ms == 100 * hour
    assert "100:00:00,000 --> 100:00:01,500" in (EXPORT_SAMPLES / "over-an-hour.srt").read_text()


def test_zero_length_segments_last_a_millisecond():
    cues = cues_of("zero-length")
    assert [(c.start_ms, c.end_ms) for c in cues] == [
        (0, 1), (1_000, 1_001), (1_000, 2_000), (3_000, 3_001)
    ]


def test_cli_uses_the_same_writers_and_line_options(speech, tmp_path):
    outputs = {}
    for fmt in ("srt", "vtt"):
        run = subprocess.run(
            [
                str(SERVER_BIN), "transcribe", str(speech / "librivox-0870.wav"),
                "--plugin", WHISPER, "--plugins", str(PLUGINS), "--data", str(tmp_path),
                "--format", fmt, "--max-chars-per-line", "20", "--max-lines-per-cue", "1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        outputs[fmt] = run.stdout
    cues = check_subtitles(outputs["srt"], outputs["vtt"])
    assert len(cues) > 3
    for cue in cues:
        assert len(cue.lines) == 1
        assert len(cue.lines[0]) <= 20 or " " not in cue.lines[0], cue
    text = " ".join(c.lines[0] for c in cues).lower()
    assert "dashwood" in text


def test_word_timestamps_tag_each_word_inside_its_cue():
    # webvtt-parser (above) refuses a tag outside its cue or not after the one before.
    vtt = (EXPORT_SAMPLES / "word-timestamps.vtt").read_text()
    assert "one <00:00:02.000>two <00:00:03.000>three <00:00:04.000>four\n" in vtt, vtt
    assert "<00:00:06.000>six" in vtt, vtt
    assert "&lt;b&gt;markup&lt;/b&gt; <00:00:10.500>&amp;" in vtt, vtt
