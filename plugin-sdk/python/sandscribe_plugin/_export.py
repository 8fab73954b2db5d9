"""The component's exports: adapts the author's :class:`Transcriber` to the generated
``wit_world`` bindings. ``build.py`` generates the entry module that calls :func:`export`.
"""

import traceback

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as _wit

from . import Transcriber
from ._audio import AudioInput
from ._config import parse_config
from ._errors import BadConfig, Cancelled, PluginError, UnsupportedAudio
from ._reporting import error, to_wit_segment
from ._types import Transcript


def find_transcriber(module) -> type:
    """The one :class:`Transcriber` subclass defined in ``module``."""
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Transcriber)
        and value is not Transcriber
        and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise TypeError(
            f"{module.__name__}.py must define exactly one subclass of sandscribe_plugin.Transcriber (found {names})"
        )
    return found[0]


def _wit_error(e: BaseException):
    if isinstance(e, BadConfig):
        return _wit.PluginError_BadConfig(str(e))
    if isinstance(e, UnsupportedAudio):
        return _wit.PluginError_UnsupportedAudio(str(e))
    if isinstance(e, Cancelled):
        return _wit.PluginError_Cancelled()
    if isinstance(e, PluginError):
        return _wit.PluginError_Internal(str(e))
    return _wit.PluginError_Internal(f"{type(e).__name__}: {e}")


def _wit_transcript(t: Transcript) -> "_wit.Transcript":
    if not isinstance(t, Transcript):
        raise TypeError(f"transcribe must return a sandscribe_plugin.Transcript, not {type(t).__name__}")
    return _wit.Transcript(t.text, t.language, [to_wit_segment(s) for s in t.segments])


def export(module) -> type:
    """The ``WitWorld`` class componentize-py exports, for the transcriber in ``module``."""
    cls = find_transcriber(module)
    state = {}

    def instance():
        # Created on the first call of a job (each job is a fresh component instance),
        # never while the component is being built.
        if "plugin" not in state:
            state["plugin"] = cls()
        return state["plugin"]

    class WitWorld(wit_world.WitWorld):
        def info(self) -> "_wit.PluginInfo":
            i = instance().info()
            c = i.capabilities
            return _wit.PluginInfo(
                i.id,
                i.name,
                i.version,
                i.description,
                list(i.languages),
                int(i.sample_rate),
                _wit.Capabilities(c.segment_timestamps, c.word_timestamps, c.language_detection, c.translation),
                i.config_schema,
            )

        def transcribe(self, input, config_json: str) -> "_wit.Transcript":
            try:
                plugin = instance()
                config = parse_config(config_json, cls.Config)
                return _wit_transcript(plugin.transcribe(AudioInput(input), config))
            except PluginError as e:
                raise Err(_wit_error(e))
            except Exception as e:
                # The traceback goes to the job's log, the one-line reason to the result.
                for line in traceback.format_exc().rstrip().splitlines():
                    error(line)
                raise Err(_wit_error(e))

    return WitWorld
