"""Long-form transcription: successive 30-second windows with openai-whisper's seek logic,
temperature fallback, silence skipping and segment timing (the Rust plugin's
``longform.rs``).

After each window the next one starts at the window's last timestamp when the window
ended inside an unfinished segment, or at the window's end when its last segment was
complete; so speech cut by a window border is decoded again whole.
"""

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from sandscribe_plugin import AudioInput, Cancelled, Segment, emit_segment, is_cancelled, progress

from decoding import Decoder, SplitMix64, WindowOptions, WindowResult, repeated_tail_cut
from mel import HOP_LENGTH, N_FRAMES, SAMPLE_RATE, MelSpectrogram
from model import State, Whisper
from tokenizer import Tokenizer

COMPRESSION_RATIO_THRESHOLD = 2.4
LOGPROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
#: RMS level (-60 dBFS) under which a window is taken as silence without decoding.
SILENCE_RMS = 1e-3
TEMPERATURE_STEP = 0.2
MS_PER_FRAME = HOP_LENGTH * 1000 // SAMPLE_RATE
MS_PER_TIMESTAMP = 2 * MS_PER_FRAME


@dataclass
class Options:
    """The validated configuration of one job."""

    language: Optional[str]
    translate: bool
    initial_prompt: str
    temperature: float
    timestamps: bool
    max_tokens_per_window: int
    condition_on_previous_text: bool


class Progress:
    """Forwards progress to the host, never backwards."""

    def __init__(self):
        self.reported = 0.0

    def report(self, fraction: float, stage: str) -> None:
        self.reported = max(self.reported, min(1.0, max(0.0, fraction)))
        progress(self.reported, stage)


@dataclass
class RawSegment:
    start_ms: int
    end_ms: int
    start: int
    end: int


def rms(samples: List[float]) -> float:
    if not samples:
        return 0.0
    return math.sqrt(math.fsum([s * s for s in samples]) / len(samples))


def split_at_timestamps(result: WindowResult, ts_begin: int, segment_size: int) -> Tuple[List[RawSegment], int]:
    """Cuts a window's tokens into segments at consecutive timestamp pairs; returns them
    and how far to seek (in mel frames)."""
    tokens = result.tokens
    n = len(tokens)
    is_ts = [t >= ts_begin for t in tokens]

    def ms(t: int) -> int:
        return (t - ts_begin) * MS_PER_TIMESTAMP

    single_ending = n >= 2 and not is_ts[n - 2] and is_ts[n - 1]
    slices = [i for i in range(1, n) if is_ts[i - 1] and is_ts[i]]
    if slices:
        if single_ending:
            slices.append(n)
        out = []
        last = 0
        for current in slices:
            out.append(RawSegment(ms(tokens[last]), ms(tokens[current - 1]), last, current))
            last = current
        advance = segment_size if single_ending else (tokens[last - 1] - ts_begin) * 2
        return out, advance
    end_ms = segment_size * MS_PER_FRAME
    last_ts = next((t for t in reversed(tokens) if t >= ts_begin), None)
    if last_ts is not None and last_ts != ts_begin:
        end_ms = ms(last_ts)
    return [RawSegment(0, end_ms, 0, n)], segment_size


def decode_with_fallback(
    decoder: Decoder, state: State, options: WindowOptions, rng: SplitMix64, on_timestamp: Callable[[int], None]
) -> WindowResult:
    """Decodes at the configured temperature and retries 0.2 higher (up to 1.0) while the
    result is too repetitive or too unlikely, unless it is silence."""
    temperature = options.temperature
    while True:
        options.temperature = temperature
        result = decoder.decode(state, options, rng, on_timestamp)
        repetitive = result.compression_ratio > COMPRESSION_RATIO_THRESHOLD
        unlikely = result.avg_logprob < LOGPROB_THRESHOLD
        silence = result.no_speech_prob > NO_SPEECH_THRESHOLD and unlikely
        nxt = temperature + TEMPERATURE_STEP
        if silence or not (repetitive or unlikely) or nxt > 1.0 + 1e-3:
            return result
        temperature = nxt


def detect_language(model: Whisper, tokenizer: Tokenizer, state: State) -> str:
    """The likeliest language token after ``<|startoftranscript|>``."""
    state.reset(1)
    row = model.decode([tokenizer.specials.sot], state, [0])[0]
    best = max(tokenizer.languages, key=lambda lang: row[lang[1]], default=("en", 0))
    return best[0]


def transcribe(
    model: Whisper,
    tokenizer: Tokenizer,
    suppress: List[int],
    multilingual: bool,
    audio: AudioInput,
    options: Options,
) -> Tuple[str, List[Segment]]:
    """Transcribes 16 kHz mono audio window by window; returns the language and segments
    (each already emitted to the host)."""
    sp = tokenizer.specials
    decoder = Decoder(model, tokenizer, suppress, tokenizer.encode(" ") + [sp.eot])
    n = audio.frames()
    duration_ms = n * 1000 // SAMPLE_RATE
    content_frames = n // HOP_LENGTH
    reporter = Progress()
    reporter.report(0.0, "measuring the loudness")
    mel = MelSpectrogram(model.dims.n_mels)
    loudness = mel.loudness(audio)

    language = options.language if multilingual and options.language != "auto" else None
    if not multilingual:
        language = "en"
    all_tokens: List[int] = []
    if options.initial_prompt.strip():
        all_tokens = tokenizer.encode(" " + options.initial_prompt.strip())
    prompt_reset_since = 0
    rng = SplitMix64(0x5EED5A4D ^ n)
    segments: List[Segment] = []
    seek = 0
    window = 0
    total_s = duration_ms / 1000.0

    while seek < content_frames:
        if is_cancelled():
            raise Cancelled()
        window += 1
        segment_size = min(N_FRAMES, content_frames - seek)
        offset_ms = seek * MS_PER_FRAME
        fraction = seek / content_frames
        reporter.report(
            fraction,
            f"window {window}: encoding {offset_ms / 1000:.1f}–{(seek + segment_size) * MS_PER_FRAME / 1000:.1f} s of {total_s:.1f} s",
        )
        if rms(audio.read(seek * HOP_LENGTH, segment_size * HOP_LENGTH)) < SILENCE_RMS:
            seek += segment_size
            continue
        state = model.start_window(mel.window_after(audio, loudness, seek, segment_size))
        if language is None:
            language = detect_language(model, tokenizer, state)
        sot_sequence = [sp.sot]
        if multilingual:
            lang_token = tokenizer.language_token(language)
            sot_sequence += [sp.sot + 1 if lang_token is None else lang_token, sp.translate if options.translate else sp.transcribe]
        reporter.report(fraction, f"window {window}: decoding")
        seconds = -(-segment_size // 100)
        window_options = WindowOptions(
            sot_sequence=sot_sequence,
            prompt=all_tokens[prompt_reset_since:],
            temperature=options.temperature,
            timestamps=options.timestamps,
            max_tokens=min(options.max_tokens_per_window, seconds * 10 + 10),
        )

        def on_timestamp(step: int, seek=seek, window=window, offset_ms=offset_ms, segment_size=segment_size) -> None:
            frames = min(step * 2, segment_size)
            reporter.report(
                (seek + frames) / content_frames,
                f"window {window}: decoding, at {(offset_ms + step * MS_PER_TIMESTAMP) / 1000:.1f} s",
            )

        result = decode_with_fallback(decoder, state, window_options, rng, on_timestamp)
        del state
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob <= LOGPROB_THRESHOLD:
            seek += segment_size
            continue
        if result.compression_ratio > COMPRESSION_RATIO_THRESHOLD or result.hit_cap:
            keep = repeated_tail_cut(result.tokens, 3)
            if keep is not None:
                del result.tokens[keep:]
                del result.logprobs[keep:]
        if options.timestamps:
            raw_segments, advance = split_at_timestamps(result, sp.timestamp_begin, segment_size)
        else:
            raw_segments, advance = [RawSegment(0, segment_size * MS_PER_FRAME, 0, len(result.tokens))], segment_size
        seek += advance if advance else segment_size

        for raw in raw_segments:
            tokens = result.tokens[raw.start : raw.end]
            text = tokenizer.decode(tokens).strip()
            start = min(offset_ms + raw.start_ms, duration_ms)
            end = min(offset_ms + raw.end_ms, duration_ms)
            if not text or start == end:
                continue
            start_ms = max(start, segments[-1].end_ms if segments else 0)
            logprobs = result.logprobs[raw.start : raw.end]
            confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
            segment = Segment(start_ms, max(end, start_ms), text, confidence)
            emit_segment(segment)
            segments.append(segment)
            all_tokens += tokens
        if not options.condition_on_previous_text or result.temperature > 0.5:
            prompt_reset_since = len(all_tokens)
    reporter.report(1.0, "done")
    return language or "en", segments
