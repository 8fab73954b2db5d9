"""The records a plugin returns, independent of the generated bindings."""

from dataclasses import dataclass, field
from typing import List, Optional

EMPTY_SCHEMA = '{"type":"object","properties":{}}'


@dataclass
class Capabilities:
    """What a plugin can do beyond plain text (all off by default)."""

    segment_timestamps: bool = False
    word_timestamps: bool = False
    language_detection: bool = False
    translation: bool = False


@dataclass
class PluginInfo:
    """Static description of a plugin, read once when the host loads it."""

    #: Stable identifier (lower case, digits, '-'); the plugin's folder has this name.
    id: str
    name: str
    #: The plugin's own version (semver).
    version: str
    #: Sample rate, in Hz, of the mono audio the plugin reads.
    sample_rate: int
    description: str = ""
    #: ISO 639-1 codes; empty means "any".
    languages: List[str] = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: JSON Schema (draft 2020-12) of the configuration object, as text.
    config_schema: str = EMPTY_SCHEMA


@dataclass
class Word:
    """One timed word."""

    text: str
    start_ms: int
    end_ms: int
    confidence: Optional[float] = None


@dataclass
class Segment:
    """One timed piece of the transcript."""

    start_ms: int
    end_ms: int
    text: str
    #: In 0..=1 when the engine knows it.
    confidence: Optional[float] = None
    words: List[Word] = field(default_factory=list)


@dataclass
class Transcript:
    """The finished result of a transcription."""

    text: str
    segments: List[Segment] = field(default_factory=list)
    #: Spoken language (ISO 639-1) if known.
    language: Optional[str] = None

    @staticmethod
    def from_segments(segments: List[Segment], language: Optional[str] = None) -> "Transcript":
        """A transcript whose text is the segments' texts joined by spaces."""
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        return Transcript(text, list(segments), language)
