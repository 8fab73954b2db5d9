"""Independent checks of SRT and WebVTT files: PyPI `srt` and npm `webvtt-parser`.

Both return the cues as `Cue(start_ms, end_ms, lines)`, so a test can compare what each
parser read with what the server meant to write.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import srt

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


def _ms(delta) -> int:
    return round(delta.total_seconds() * 1000)


def parse_srt(text: str) -> list[Cue]:
    """Parses SRT strictly, checks the numbering and that composing the cues again gives
    back the same file, byte for byte."""
    assert "\r" not in text and not text.startswith("\ufeff"), "no CR or byte-order mark"
    subtitles = list(srt.parse(text))  # raises SRTParseError on anything unparsable
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1)), "numbered 1, 2, …"
    composed = srt.compose(subtitles, reindex=False)
    # srt.compose ends every cue, the last included, with a blank line.
    assert composed == (text + "\n" if text else ""), "srt round trip changed the file"
    assert list(srt.parse(composed)) == subtitles
    cues = [Cue(_ms(s.start), _ms(s.end), tuple(s.content.split("\n"))) for s in subtitles]
    for cue in cues:
        assert cue.end_ms > cue.start_ms, f"cue ends after it starts: {cue}"
        assert all(line.strip() for line in cue.lines), f"no blank line in a cue: {cue}"
    return cues


def _node_modules() -> Path:
    return Path(os.environ.get("SANDSCRIBE_NODE_MODULES", HERE / "node_modules"))


def parse_vtt_files(paths: list[Path]) -> dict[Path, list[Cue]]:
    """Parses WebVTT files with webvtt-parser; any parse error fails the calling test.

    The cues come back sorted by start, end and text: webvtt-parser reorders cues that
    start together (longest first), which the format allows, so only the order by start
    time is checked, on the file itself.
    """
    assert (_node_modules() / "webvtt-parser").is_dir(), (
        "npm webvtt-parser is missing; `cargo xtask test` installs it (npm ci in tests/openai)"
    )
    out = subprocess.run(
        ["node", str(HERE / "vtt_check.js"), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(_node_modules())},
    )
    parsed = {}
    for result in json.loads(out.stdout):
        path = Path(result["path"])
        assert result["errors"] == [], f"{path}: webvtt-parser errors {result['errors']}"
        cues = [
            Cue(round(c["start"] * 1000), round(c["end"] * 1000), tuple(c["text"].split("\n")))
            for c in result["cues"]
        ]
        for cue in cues:
            assert cue.end_ms > cue.start_ms, f"{path}: {cue}"
        parsed[path] = sorted(cues, key=_order)
        text = path.read_text(encoding="utf-8")
        assert text.startswith("WEBVTT\n") and "\r" not in text
        starts = [_ms_of(line.split(" --> ")[0]) for line in text.split("\n") if " --> " in line]
        assert starts == sorted(starts), f"{path}: cue starts decrease"
    return parsed


def _order(cue: Cue):
    return (cue.start_ms, cue.end_ms, cue.lines)


def _ms_of(timestamp: str) -> int:
    hours, minutes, seconds = timestamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def same_cues(a: list[Cue], b: list[Cue]) -> bool:
    """The same cues, whatever the order of cues that start together."""
    return sorted(a, key=_order) == sorted(b, key=_order)


def parse_vtt(text: str) -> list[Cue]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subtitles.vtt"
        path.write_text(text, encoding="utf-8")
        return parse_vtt_files([path])[path]


def check_subtitles(srt_text: str, vtt_text: str) -> list[Cue]:
    """Both files parse cleanly and hold the same cues; returns them."""
    srt_cues = parse_srt(srt_text)
    vtt_cues = parse_vtt(vtt_text)
    assert same_cues(srt_cues, vtt_cues)
    return srt_cues
