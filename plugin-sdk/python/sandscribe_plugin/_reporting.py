"""Calls to the host while a job runs: progress, live segments, log lines, cancellation."""

import math
from enum import Enum

from wit_world.imports import host as _host
from wit_world.imports import types as _wit

from ._types import Segment


class LogLevel(Enum):
    DEBUG = _host.LogLevel.DEBUG
    INFO = _host.LogLevel.INFO
    WARN = _host.LogLevel.WARN
    ERROR = _host.LogLevel.ERROR


def progress(fraction: float, stage: str) -> None:
    """Reports progress: ``fraction`` (clamped to 0..=1) with a short stage text."""
    fraction = 0.0 if math.isnan(fraction) else min(1.0, max(0.0, float(fraction)))
    _host.progress(fraction, stage)


def emit_segment(segment: Segment) -> None:
    """Emits a finished segment so people see it while the job still runs."""
    _host.emit_segment(to_wit_segment(segment))


def is_cancelled() -> bool:
    """Whether the job was cancelled; stop soon when it was (the host stops you anyway)."""
    return _host.is_cancelled()


def log(level: LogLevel, message: str) -> None:
    """Writes a line to the job's log."""
    _host.log(level.value, message)


def debug(message: str) -> None:
    log(LogLevel.DEBUG, message)


def info(message: str) -> None:
    log(LogLevel.INFO, message)


def warn(message: str) -> None:
    log(LogLevel.WARN, message)


def error(message: str) -> None:
    log(LogLevel.ERROR, message)


def to_wit_segment(s: Segment) -> "_wit.Segment":
    words = [
        _wit.Word(w.text, int(w.start_ms), int(w.end_ms), None if w.confidence is None else float(w.confidence))
        for w in s.words
    ]
    confidence = None if s.confidence is None else float(s.confidence)
    return _wit.Segment(int(s.start_ms), int(s.end_ms), s.text, confidence, words)
