"""{{name}}: an energy-based voice-activity detector as a sandscribe plugin. It emits one
segment per stretch of speech, with text like "[speech 1.2–3.4 s]".

componentize-py imports this module when the plugin is built: keep module-level code to
imports and constants, and import every module here at the top.
"""

import math
from dataclasses import dataclass
from typing import Optional, Tuple

from sandscribe_plugin import (
    Cancelled,
    Capabilities,
    PluginInfo,
    Segment,
    Transcriber,
    Transcript,
    emit_segment,
    is_cancelled,
    progress,
)


@dataclass
class Config:
    """The configuration a job runs with. The host checks it against SCHEMA and fills in
    the defaults, so every field arrives set."""

    #: A frame at or above this level (dBFS, RMS) counts as speech.
    threshold_db: float = -35.0
    #: Length of the frames the level is measured on.
    frame_ms: int = 20
    #: Stretches shorter than this are noise, not speech.
    min_speech_ms: int = 200
    #: Silence this long ends a stretch.
    min_silence_ms: int = 300


#: The JSON Schema of Config; `sandscribe plugins validate` checks it, defaults too.
SCHEMA = """{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "threshold_db": {"type": "number", "minimum": -100, "maximum": 0, "default": -35,
                     "title": "Speech level (dBFS)"},
    "frame_ms": {"type": "integer", "minimum": 5, "maximum": 100, "default": 20,
                 "title": "Frame length (ms)"},
    "min_speech_ms": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 200,
                      "title": "Shortest speech (ms)"},
    "min_silence_ms": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 300,
                       "title": "Pause that ends speech (ms)"}
  }
}"""

#: Frames per chunk read from the host: one read per second of 20 ms frames.
FRAMES_PER_CHUNK = 50

VERSION = "0.1.0"


class Plugin(Transcriber):
    Config = Config  # the JSON configuration arrives as this dataclass

    def info(self) -> PluginInfo:
        return PluginInfo(
            "{{id}}",
            "{{name}}",
            VERSION,
            16_000,
            description="Finds the stretches of speech in the audio by their energy.",
            capabilities=Capabilities(segment_timestamps=True),
            config_schema=SCHEMA,
        )

    def transcribe(self, audio, config: Config) -> Transcript:
        frame_len = max(1, audio.sample_rate() * config.frame_ms // 1000)
        detector = Detector(config)
        segments = []

        def keep(stretch: Optional[Tuple[int, int]]) -> None:
            if stretch is not None:
                segment = Segment(stretch[0], stretch[1], label(*stretch))
                emit_segment(segment)  # shown live, while the job runs
                segments.append(segment)

        for chunk in audio.chunks(frame_len * FRAMES_PER_CHUNK):
            if is_cancelled():  # stop early when the job is cancelled
                raise Cancelled()
            samples = chunk.samples
            for start in range(0, len(samples), frame_len):
                at = chunk.offset + start
                keep(detector.push(audio.frames_to_ms(at), rms(samples[start : start + frame_len])))
            done = (chunk.offset + len(samples)) / max(audio.frames(), 1)
            progress(done, "finding speech")
        keep(detector.finish(audio.duration_ms()))
        return Transcript.from_segments(segments)


def label(start_ms: int, end_ms: int) -> str:
    """The text of one stretch: "[speech 1.2–3.4 s]"."""
    return f"[speech {start_ms / 1000:.1f}–{end_ms / 1000:.1f} s]"


def rms(frame) -> float:
    """Root mean square of a frame."""
    if not frame:
        return 0.0
    return math.sqrt(sum(s * s for s in frame) / len(frame))


class Detector:
    """Turns frame levels into stretches of speech. Pure logic, no host calls."""

    def __init__(self, config: Config):
        self.threshold = 10 ** (config.threshold_db / 20)
        self.frame_ms = config.frame_ms
        self.min_speech_ms = config.min_speech_ms
        self.min_silence_ms = config.min_silence_ms
        self.start_ms: Optional[int] = None  # start of the stretch being heard, if any
        self.voiced_until_ms = 0  # end of the last loud frame of that stretch

    def push(self, at_ms: int, level: float) -> Optional[Tuple[int, int]]:
        """One frame starting at `at_ms`; a stretch (start_ms, end_ms) when it just ended."""
        if level >= self.threshold:
            if self.start_ms is None:
                self.start_ms = at_ms
            self.voiced_until_ms = at_ms + self.frame_ms
            return None
        if self.start_ms is not None and at_ms >= self.voiced_until_ms + self.min_silence_ms:
            return self.close()
        return None

    def finish(self, duration_ms: int) -> Optional[Tuple[int, int]]:
        """The end of the audio: the stretch still open, if any, ends there."""
        self.voiced_until_ms = min(self.voiced_until_ms, duration_ms)
        return self.close()

    def close(self) -> Optional[Tuple[int, int]]:
        start_ms, self.start_ms = self.start_ms, None
        if start_ms is None or self.voiced_until_ms - start_ms < self.min_speech_ms:
            return None
        return (start_ms, self.voiced_until_ms)
