"""OpenAI's Whisper speech recognition as a sandscribe plugin written in Python.

The same engine as the Rust ``whisper`` example, decoded greedily: log-mel features,
the decoding rules, the tokenizer and the window loop run in Python inside the sandbox;
the encoder, the decoder (with its KV caches) and the STFT run in the host through the
SDK's compute interface, on weights the host reads itself from the CTranslate2
``model.bin`` in the read-only assets folder (mounted at ``/assets``) and shares between
jobs. The plugin reads only the file's index.

::

    /assets/model.json      {"id", "name", "description", "multilingual"} (written by setup)
    /assets/model.bin       CTranslate2 Whisper weights (fp16 or fp32)
    /assets/vocabulary.txt  one token per line
    /assets/tokenizer.json  BPE merges (optional: for the initial prompt and suppression)

The plugin's id is the model's with ``-py`` appended (``whisper-tiny-en-py``).
"""

import json
from dataclasses import dataclass

from sandscribe_plugin import (
    BadConfig,
    Capabilities,
    InternalError,
    PluginInfo,
    Transcriber,
    Transcript,
    UnsupportedAudio,
    compute,
    info,
    progress,
)
from sandscribe_plugin.compute import Precision

import longform
from ct2 import Ct2Error, Index
from mel import SAMPLE_RATE
from model import Dims, Whisper
from tokenizer import Tokenizer, TokenizerError

ASSETS = "/assets"
VERSION = "0.1.0"
#: Vocabulary size from which a Whisper model is multilingual.
MULTILINGUAL_VOCAB = 51865
MAX_TOKENS_PER_WINDOW = 224
MAX_PROMPT_CHARS = 1000
PRECISIONS = {"float32": Precision.FLOAT32, "int8": Precision.INT8, "bfloat16": Precision.BFLOAT16}


@dataclass
class Config:
    """The configuration object (see :func:`schema`); the host fills in the defaults."""

    language: str = "auto"
    task: str = "transcribe"
    initial_prompt: str = ""
    temperature: float = 0.0
    timestamps: bool = True
    max_tokens_per_window: int = MAX_TOKENS_PER_WINDOW
    condition_on_previous_text: bool = False
    precision: str = "float32"


def manifest() -> dict:
    """``/assets/model.json``; defaults when it is missing or unreadable."""
    found = {}
    try:
        with open(f"{ASSETS}/model.json") as f:
            found = json.load(f)
    except (OSError, ValueError):
        pass
    return {
        "id": found.get("id", "whisper"),
        "name": found.get("name", "Whisper"),
        "description": found.get("description", "OpenAI Whisper speech recognition (CTranslate2 weights)."),
        "multilingual": bool(found.get("multilingual", False)),
    }


def schema(multilingual: bool) -> str:
    """The JSON Schema of :class:`Config` for a multilingual or English-only model."""
    languages = ["auto"] + LANGUAGES if multilingual else ["en"]
    properties = {
        "language": {
            "type": "string",
            "title": "Language",
            "description": "Spoken language (Whisper code), or \"auto\" to detect it from the first 30 seconds."
            if multilingual
            else "This model is English-only.",
            "enum": languages,
            "default": "auto" if multilingual else "en",
        },
        "task": {
            "type": "string",
            "title": "Task",
            "description": "\"transcribe\" writes the spoken language; \"translate\" writes English."
            if multilingual
            else "This model can only transcribe English.",
            "enum": ["transcribe", "translate"] if multilingual else ["transcribe"],
            "default": "transcribe",
        },
        "initial_prompt": {
            "type": "string",
            "title": "Initial prompt",
            "description": "Text the first window is conditioned on: names, spellings, punctuation style.",
            "default": "",
            "maxLength": MAX_PROMPT_CHARS,
        },
        "temperature": {
            "type": "number",
            "title": "Temperature",
            "description": "Sampling temperature of the first attempt (0 = greedy). A window that looks repetitive or unlikely is retried 0.2 higher, up to 1.0.",
            "default": 0.0,
            "minimum": 0.0,
            "maximum": 1.0,
        },
        "timestamps": {
            "type": "boolean",
            "title": "Timestamped segments",
            "description": "Split the text into timed segments; when off, one segment per 30-second window.",
            "default": True,
        },
        "max_tokens_per_window": {
            "type": "integer",
            "title": "Max tokens per window",
            "description": "Upper limit on the tokens decoded per 30-second window (also capped by the window's length).",
            "default": MAX_TOKENS_PER_WINDOW,
            "minimum": 1,
            "maximum": MAX_TOKENS_PER_WINDOW,
        },
        "condition_on_previous_text": {
            "type": "boolean",
            "title": "Use previous text as context",
            "description": "Feed each window's text to the next one as context (openai-whisper's default). More consistent style, but one mistake can make the model skip or repeat text.",
            "default": False,
        },
        "precision": {
            "type": "string",
            "title": "Precision",
            "description": "How the model's weights are kept for the matrix products: \"float32\" gives the model's own results; \"int8\" and \"bfloat16\" are faster and smaller, with slightly different results.",
            "enum": list(PRECISIONS),
            "default": "float32",
        },
    }
    return json.dumps(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
        },
        indent=2,
    )


def validate(config: Config, multilingual: bool) -> None:
    """The schema's bounds and the model's abilities (the host checks the schema too)."""
    if multilingual:
        if config.language != "auto" and config.language not in LANGUAGES:
            raise BadConfig(f"`language`: unknown language code {config.language!r}")
    else:
        if config.language not in ("auto", "en"):
            raise BadConfig(f"`language`: this model only knows English (\"en\"), not {config.language!r}")
        if config.task != "transcribe":
            raise BadConfig("`task`: this English-only model cannot translate; use \"transcribe\"")
    if config.task not in ("transcribe", "translate"):
        raise BadConfig(f"`task`: {config.task!r} is neither \"transcribe\" nor \"translate\"")
    if len(config.initial_prompt) > MAX_PROMPT_CHARS:
        raise BadConfig(f"`initial_prompt`: longer than {MAX_PROMPT_CHARS} characters")
    if not 0.0 <= config.temperature <= 1.0:
        raise BadConfig(f"`temperature`: {config.temperature} is outside 0..=1")
    if not 1 <= config.max_tokens_per_window <= MAX_TOKENS_PER_WINDOW:
        raise BadConfig(f"`max_tokens_per_window`: {config.max_tokens_per_window} is outside 1..={MAX_TOKENS_PER_WINDOW}")
    if config.precision not in PRECISIONS:
        raise BadConfig(f"`precision`: {config.precision!r} is not one of {', '.join(PRECISIONS)}")


class WhisperPy(Transcriber):
    Config = Config

    def __init__(self):
        self.manifest = manifest()

    def info(self) -> PluginInfo:
        m = self.manifest
        return PluginInfo(
            id=f"{m['id']}-py",
            name=f"{m['name']} (Python)",
            version=VERSION,
            sample_rate=SAMPLE_RATE,
            description=f"{m['description']} Decoded greedily by a plugin written in Python.",
            languages=LANGUAGES if m["multilingual"] else ["en"],
            capabilities=Capabilities(segment_timestamps=True, language_detection=m["multilingual"], translation=m["multilingual"]),
            config_schema=schema(m["multilingual"]),
        )

    def transcribe(self, audio, config: Config) -> Transcript:
        if audio.sample_rate() != SAMPLE_RATE:
            raise UnsupportedAudio(f"expected {SAMPLE_RATE} Hz audio, got {audio.sample_rate()} Hz")
        if audio.frames() == 0:
            raise UnsupportedAudio("the audio is empty")
        progress(0.0, "loading the model")
        try:
            with open(f"{ASSETS}/vocabulary.txt", encoding="utf-8") as f:
                vocabulary = f.read()
            try:
                with open(f"{ASSETS}/tokenizer.json", encoding="utf-8") as f:
                    tokenizer_json = f.read()
            except OSError:
                tokenizer_json = None
            tokenizer = Tokenizer(vocabulary, tokenizer_json)
            with open(f"{ASSETS}/model.bin", "rb") as f:
                index = Index.read(f)
            index.split_fused_attention()
            dims = Dims.of(index)
        except (OSError, Ct2Error, TokenizerError) as e:
            raise InternalError(f"cannot load the model: {e}") from None
        if len(tokenizer) != dims.n_vocab:
            raise InternalError(f"the model and vocabulary.txt disagree: {dims.n_vocab} output tokens, {len(tokenizer)} vocabulary lines")
        multilingual = dims.n_vocab >= MULTILINGUAL_VOCAB
        validate(config, multilingual)
        model = Whisper(index, dims, PRECISIONS[config.precision])
        device = compute.device()
        info(f"{dims.n_audio_layer}+{dims.n_text_layer} layers, width {dims.n_text_state}; compute: {device.threads} threads, {device.kernels}")
        options = longform.Options(
            language=config.language,
            translate=config.task == "translate",
            initial_prompt=config.initial_prompt,
            temperature=config.temperature,
            timestamps=config.timestamps,
            max_tokens_per_window=config.max_tokens_per_window,
            condition_on_previous_text=config.condition_on_previous_text,
        )
        language, segments = longform.transcribe(model, tokenizer, tokenizer.non_speech_tokens(), multilingual, audio, options)
        return Transcript.from_segments(segments, language)


#: Whisper's languages in token order.
LANGUAGES = """en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur
hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si
km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln
ha ba jw su""".split()
