"""Decoding one 30-second window: greedy or temperature sampling under Whisper's timestamp
rules and token suppression, with openai-whisper's quality measures (average
log-probability, compression ratio, no-speech probability); as the Rust plugin's
``decode.rs`` does for beam size 1.

Each step reads one row of logits (the vocabulary, ~52k floats) from the host; the
rules below touch it with slice assignments and the built-in ``max``, ``sum`` and
``map``, which run in C inside the sandbox.
"""

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, List

from model import State, Whisper
from tokenizer import Tokenizer

NEG_INF = float("-inf")
_MASK = (1 << 64) - 1


@dataclass
class WindowOptions:
    #: ``<|sot|>`` or ``<|sot|><|lang|><|task|>``.
    sot_sequence: List[int]
    #: The previous windows' tokens (and the initial prompt).
    prompt: List[int]
    temperature: float
    timestamps: bool
    #: Most tokens to sample before giving up on an end-of-text.
    max_tokens: int
    #: Latest timestamp allowed for the first token (1 s = 50 steps).
    max_initial_timestamp_index: int = 50


@dataclass
class WindowResult:
    #: Sampled tokens (text and timestamps), without the final end-of-text.
    tokens: List[int]
    logprobs: List[float]
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float
    #: Sampling stopped at the token cap rather than at an end-of-text.
    hit_cap: bool


class SplitMix64:
    """The Rust plugin's tiny deterministic PRNG, for temperature sampling."""

    def __init__(self, seed: int):
        self.state = seed & _MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def next_f64(self) -> float:
        return (self.next_u64() >> 11) / float(1 << 53)


def log_sum_exp(values: List[float]) -> float:
    """``ln sum exp(v)``: the softmax normaliser of a row."""
    top = max(values)
    if top == NEG_INF:
        return top
    exp = math.exp
    return top + math.log(math.fsum([exp(v - top) for v in values]))


def softmax_at(values: List[float], index: int) -> float:
    return math.exp(values[index] - log_sum_exp(values))


def argmax(values: List[float]) -> int:
    """The first index of the largest value."""
    return values.index(max(values))


def sample(logits: List[float], temperature: float, rng: SplitMix64) -> int:
    top = max(logits)
    weights = [math.exp((v - top) / temperature) for v in logits]
    target = rng.next_f64() * math.fsum(weights)
    for i, w in enumerate(weights):
        if target < w:
            return i
        target -= w
    return argmax(logits)


def compression_ratio(text: str) -> float:
    """``len(text) / len(zlib.compress(text))``, as openai-whisper measures repetition."""
    data = text.encode()
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data, 6))


def repeated_tail_cut(tokens: List[int], min_repeats: int):
    """If ``tokens`` end in the same block repeated at least ``min_repeats`` times, the
    length to keep (up to and including the first copy), else ``None``."""
    n = len(tokens)
    for period in range(1, n // min_repeats + 1):
        block = tokens[n - period :]
        repeats = 1
        while repeats * period + period <= n and tokens[n - (repeats + 1) * period : n - repeats * period] == block:
            repeats += 1
        if repeats >= min_repeats:
            return n - (repeats - 1) * period
    return None


@dataclass
class Decoder:
    model: Whisper
    tokenizer: Tokenizer
    #: Tokens never sampled (non-speech symbols, task and start tokens).
    suppress: List[int]
    #: Tokens not sampled first: the lone space and end-of-text.
    blank: List[int] = field(default_factory=list)

    def decode(
        self, state: State, options: WindowOptions, rng: SplitMix64, on_timestamp: Callable[[int], None]
    ) -> WindowResult:
        """One decoding attempt on a window whose audio features are in ``state``."""
        sp = self.tokenizer.specials
        n_ctx = self.model.dims.n_text_ctx
        initial: List[int] = []
        if options.prompt:
            initial.append(sp.sot_prev)
            keep = min(len(options.prompt), n_ctx // 2 - 1)
            initial += options.prompt[len(options.prompt) - keep :]
        sot_index = len(initial)
        initial += options.sot_sequence
        if not options.timestamps:
            initial.append(sp.no_timestamps)
        max_tokens = max(1, min(options.max_tokens, n_ctx - len(initial)))
        state.reset(len(initial) + max_tokens)
        last = len(initial) - 1
        positions = [last] if sot_index == last else [sot_index, last]
        rows = self.model.decode(initial, state, positions)
        logits = rows.pop()
        no_speech_prob = softmax_at(rows[0] if rows else logits, sp.no_speech)

        eot, ts_begin = sp.eot, sp.timestamp_begin
        tokens: List[int] = []
        logprobs: List[float] = []
        total = 0.0
        finished = False
        while True:
            self.filter(logits, tokens, options)
            lse = log_sum_exp(logits)
            nxt = sample(logits, options.temperature, rng) if options.temperature > 0 else argmax(logits)
            logprob = logits[nxt] - lse
            total += logprob
            if nxt == eot:
                finished = True
                break
            tokens.append(nxt)
            logprobs.append(logprob)
            if nxt >= ts_begin:
                on_timestamp(nxt - ts_begin)
            if len(tokens) >= max_tokens:
                break
            logits = self.model.decode([nxt], state, [0])[0]
        text = self.tokenizer.decode(tokens)
        return WindowResult(
            tokens=tokens,
            logprobs=logprobs,
            avg_logprob=total / (len(tokens) + 1),
            no_speech_prob=no_speech_prob,
            temperature=options.temperature,
            compression_ratio=compression_ratio(text.strip()),
            hit_cap=not finished,
        )

    def filter(self, logits: List[float], sampled: List[int], options: WindowOptions) -> None:
        """Blank suppression, token suppression and the timestamp rules, applied to the
        logits of the next position in openai-whisper's order."""
        sp = self.tokenizer.specials
        ts = sp.timestamp_begin
        n = len(logits)
        if not sampled:
            for i in self.blank:
                logits[i] = NEG_INF
        for i in self.suppress:
            if i < n:
                logits[i] = NEG_INF
        logits[sp.no_timestamps] = NEG_INF
        if not options.timestamps:
            logits[ts:] = [NEG_INF] * (n - ts)
            return
        last_was_ts = bool(sampled) and sampled[-1] >= ts
        penultimate_was_ts = len(sampled) < 2 or sampled[-2] >= ts
        if last_was_ts:
            if penultimate_was_ts:
                logits[ts:] = [NEG_INF] * (n - ts)
            else:
                logits[: sp.eot] = [NEG_INF] * sp.eot
        last_ts = next((t for t in reversed(sampled) if t >= ts), None)
        if last_ts is not None:
            # Timestamps never decrease, and a segment never has zero length.
            bound = last_ts if last_was_ts and not penultimate_was_ts else last_ts + 1
            bound = min(bound, n)
            if bound > ts:
                logits[ts:bound] = [NEG_INF] * (bound - ts)
        if not sampled:
            logits[:ts] = [NEG_INF] * ts
            last_allowed = ts + options.max_initial_timestamp_index
            if last_allowed + 1 < n:
                logits[last_allowed + 1 :] = [NEG_INF] * (n - last_allowed - 1)
        # All timestamps together likelier than any text token: force a timestamp.
        if log_sum_exp(logits[ts:]) > max(logits[:ts]):
            logits[:ts] = [NEG_INF] * ts
