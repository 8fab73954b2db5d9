"""Whisper's byte-level BPE vocabulary: token ids <-> text, and the special tokens.

Decoding is a table lookup (each token is a string of GPT-2 "byte characters", one per
byte); encoding (for the initial prompt and the list of non-speech tokens) is a plain
BPE merge loop over ``tokenizer.json``'s merges, as in the Rust plugin's ``tokenizer.rs``.
"""

import json
from typing import Dict, List, Optional, Tuple


class TokenizerError(Exception):
    pass


def _byte_encoder() -> List[str]:
    """GPT-2's reversible byte -> printable character table."""
    table = []
    extra = 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            table.append(chr(b))
        else:
            extra += 1
            table.append(chr(255 + extra))
    return table


BYTE_ENCODER = _byte_encoder()
BYTE_DECODER = {c: b for b, c in enumerate(BYTE_ENCODER)}


def _class(c: str) -> int:
    if c.isalpha():
        return 0
    if c.isnumeric():
        return 1
    if c.isspace():
        return 2
    return 3


_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def pre_tokenize(text: str) -> List[str]:
    """Splits text as GPT-2's pattern ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|
    ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`` does."""
    pieces = []
    i, n = 0, len(text)
    while i < n:
        rest = text[i:]
        c = next((c for c in _CONTRACTIONS if rest.startswith(c)), None)
        if c is not None:
            pieces.append(c)
            i += len(c)
            continue
        if text[i] == " " and i + 1 < n and _class(text[i + 1]) != 2:
            lead, first = 1, _class(text[i + 1])
        else:
            lead, first = 0, _class(text[i])
        j = i + lead
        if first == 2:
            while j < n and _class(text[j]) == 2:
                j += 1
            if j < n and j - i > 1:
                j -= 1
        else:
            while j < n and _class(text[j]) == first:
                j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


class Specials:
    def __init__(self, find):
        self.eot = find("<|endoftext|>")
        self.sot = find("<|startoftranscript|>")
        self.translate = find("<|translate|>")
        self.transcribe = find("<|transcribe|>")
        self.sot_lm = find("<|startoflm|>")
        self.sot_prev = find("<|startofprev|>")
        self.no_speech = find("<|nospeech|>", "<|nocaptions|>")
        self.no_timestamps = find("<|notimestamps|>")
        #: ``<|0.00|>``; every later id is a timestamp in 20 ms steps.
        self.timestamp_begin = find("<|0.00|>")


class Tokenizer:
    def __init__(self, vocabulary: str, tokenizer_json: Optional[str]):
        self.tokens = vocabulary.split("\n")
        if self.tokens and self.tokens[-1] == "":
            self.tokens.pop()
        self.ids: Dict[str, int] = {t: i for i, t in enumerate(self.tokens)}

        def find(*names: str) -> int:
            for name in names:
                if name in self.ids:
                    return self.ids[name]
            raise TokenizerError(f"vocabulary.txt has no {names[0]} token (is it a Whisper vocabulary?)")

        self.specials = Specials(find)
        sp = self.specials
        self.languages: List[Tuple[str, int]] = []
        for i in range(sp.sot + 1, sp.translate):
            t = self.tokens[i]
            if t.startswith("<|") and t.endswith("|>"):
                self.languages.append((t[2:-2], i))
        self.merges: Dict[Tuple[str, str], int] = {}
        if tokenizer_json is not None:
            self.merges = _parse_merges(tokenizer_json)

    def __len__(self) -> int:
        return len(self.tokens)

    def language_token(self, code: str) -> Optional[int]:
        return next((i for c, i in self.languages if c == code), None)

    def decode(self, ids: List[int]) -> str:
        """The text of the ordinary (non-special) tokens among ``ids``."""
        eot = self.specials.eot
        out = bytearray()
        for i in ids:
            if i < eot:
                out += bytes(BYTE_DECODER[c] for c in self.tokens[i] if c in BYTE_DECODER)
        return out.decode("utf-8", errors="replace")

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` (GPT-2 pre-tokenisation, then BPE)."""
        out: List[int] = []
        for piece in pre_tokenize(text):
            symbols = [BYTE_ENCODER[b] for b in piece.encode()]
            whole = "".join(symbols)
            if whole in self.ids:
                out.append(self.ids[whole])
                continue
            for symbol in self._merge(symbols):
                if symbol in self.ids:
                    out.append(self.ids[symbol])
                else:
                    out.extend(self.ids[c] for c in symbol if c in self.ids)
        return out

    def _merge(self, symbols: List[str]) -> List[str]:
        while True:
            best = None
            for i in range(len(symbols) - 1):
                rank = self.merges.get((symbols[i], symbols[i + 1]))
                if rank is not None and (best is None or (rank, i) < best):
                    best = (rank, i)
            if best is None:
                return symbols
            i = best[1]
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]

    def non_speech_tokens(self) -> List[int]:
        """The symbols openai-whisper suppresses by default (``suppress_tokens = "-1"``),
        plus the task and start tokens."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split(" ")
        miscellaneous = "♩♪♫♬♭♮♯"
        result = [self.encode(" -")[0], self.encode(" '")[0]]
        for symbol in symbols:
            for tokens in (self.encode(symbol), self.encode(f" {symbol}")):
                if len(tokens) == 1 or symbol in miscellaneous:
                    result.append(tokens[0])
        for c in miscellaneous:
            for tokens in (self.encode(c), self.encode(f" {c}")):
                if tokens:
                    result.append(tokens[0])
        s = self.specials
        result += [s.translate, s.transcribe, s.sot, s.sot_prev, s.sot_lm, s.no_speech]
        return sorted(set(result))


def _parse_merges(text: str) -> Dict[Tuple[str, str], int]:
    """``model.merges`` of a Hugging Face ``tokenizer.json`` ("a b" strings or pairs)."""
    try:
        merges = json.loads(text)["model"].get("merges", [])
    except (ValueError, KeyError, TypeError) as e:
        raise TokenizerError(f"tokenizer.json: {e}") from None
    out: Dict[Tuple[str, str], int] = {}
    for rank, m in enumerate(merges):
        if isinstance(m, str):
            a, sep, b = m.partition(" ")
            if not sep:
                continue
        else:
            a, b = m
        out[(a, b)] = rank
    return out
