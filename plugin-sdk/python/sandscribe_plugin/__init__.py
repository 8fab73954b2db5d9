"""Write sandscribe transcription plugins in Python.

A plugin is a WebAssembly component built with componentize-py against the WIT package
``sandscribe:plugin@0.2.0``. This package hides the generated bindings: an author writes
one subclass of :class:`Transcriber` in ``plugin.py`` and runs ``build.py`` (or
``sandscribe plugin build``); the build finds the class and exports it.

.. code-block:: python

    from dataclasses import dataclass
    from sandscribe_plugin import PluginInfo, Segment, Transcriber, Transcript, emit_segment, progress

    @dataclass
    class Config:
        uppercase: bool = False

    class Shout(Transcriber):
        Config = Config

        def info(self):
            return PluginInfo("shout", "Shout", "0.1.0", 16_000,
                              config_schema='{"type":"object","properties":{"uppercase":{"type":"boolean","default":false}}}')

        def transcribe(self, audio, config):
            text = f"{audio.frames()} samples"
            segment = Segment(0, audio.duration_ms(), text.upper() if config.uppercase else text)
            emit_segment(segment)
            progress(1.0, "done")
            return Transcript.from_segments([segment])

Heavy math (matrix products, attention, convolutions) runs natively in the host through
:mod:`sandscribe_plugin.compute`.

Python in the sandbox is CPython compiled to WebAssembly: run loops over large arrays
through ``compute``, and import every module at the top of a file (modules are
snapshotted when the plugin is built; an ``import`` first reached while a job runs fails).
"""

from ._audio import AudioInput, Chunk
from ._config import parse_config
from ._errors import BadConfig, Cancelled, InternalError, PluginError, UnsupportedAudio
from ._reporting import LogLevel, debug, emit_segment, error, info, is_cancelled, log, progress, warn
from ._types import Capabilities, PluginInfo, Segment, Transcript, Word
from . import compute

__all__ = [
    "AudioInput",
    "BadConfig",
    "Cancelled",
    "Capabilities",
    "Chunk",
    "InternalError",
    "LogLevel",
    "PluginError",
    "PluginInfo",
    "Segment",
    "Transcriber",
    "Transcript",
    "UnsupportedAudio",
    "Word",
    "compute",
    "debug",
    "emit_segment",
    "error",
    "info",
    "is_cancelled",
    "log",
    "parse_config",
    "progress",
    "warn",
]


class Transcriber:
    """What a plugin implements: ``info`` and ``transcribe``.

    One instance is created per job, on the job's first call (never at build time, so
    ``__init__`` may read ``/assets``). Set the class attribute ``Config`` to a
    dataclass to receive the configuration as that type (unknown fields are a
    :class:`BadConfig`); left as ``None``, ``transcribe`` gets a ``dict``.
    """

    #: A dataclass for the configuration object, or ``None`` for a plain ``dict``.
    Config = None

    def info(self) -> PluginInfo:
        """Static description; called once when the host loads the plugin."""
        raise NotImplementedError

    def transcribe(self, audio: AudioInput, config) -> Transcript:
        """Transcribe the whole audio.

        Report progress with :func:`progress`, emit each segment with
        :func:`emit_segment` as soon as it is final, check :func:`is_cancelled` between
        units of work, and raise a :class:`PluginError` subclass to fail the job with a
        reason. Any other exception fails the job as an internal error, its traceback in
        the job's log.
        """
        raise NotImplementedError
