"""The Whisper network on the host's compute interface, as the Rust plugin's ``model.rs``.

Pre-norm transformer blocks with GELU feed-forward layers, learned decoder positions and
the output projection tied to the token embedding (CTranslate2's Whisper spec), so the
weights load by their own names from ``model.bin`` regions. Every call here is one host
call: the plugin holds handles, and reads back only the logits of the positions it
decodes.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from sandscribe_plugin import compute
from sandscribe_plugin.compute import Activation, KvCache, Precision, Tensor, Weights

from ct2 import Ct2Error, Index

MODEL_FILE = "model.bin"
EPS = 1e-5


@dataclass(frozen=True)
class Dims:
    """Sizes of a Whisper model, read from its weights."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_layer: int
    n_audio_head: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_layer: int
    n_text_head: int

    @staticmethod
    def of(index: Index) -> "Dims":
        conv1 = index.get("encoder/conv1/weight").shape
        embeddings = index.get("decoder/embeddings/weight").shape

        def heads(name: str, state: int) -> int:
            h = index.integers.get(name, 0)
            return h if h > 0 else state // 64

        dims = Dims(
            n_mels=conv1[1],
            n_audio_ctx=index.get("encoder/position_encodings/encodings").shape[0],
            n_audio_state=conv1[0],
            n_audio_layer=index.layer_count("encoder"),
            n_audio_head=heads("encoder/num_heads", conv1[0]),
            n_vocab=embeddings[0],
            n_text_ctx=index.get("decoder/position_encodings/encodings").shape[0],
            n_text_state=embeddings[1],
            n_text_layer=index.layer_count("decoder"),
            n_text_head=heads("decoder/num_heads", embeddings[1]),
        )
        if dims.n_audio_state % dims.n_audio_head or dims.n_text_state % dims.n_text_head:
            raise Ct2Error(f"the head counts do not divide the model width: {dims}")
        return dims


class Loader:
    """Creates weights from the regions of ``model.bin``; matrices at ``precision``."""

    def __init__(self, index: Index, precision: Precision):
        self.index = index
        self.precision = precision

    def region(self, name: str, precision: Precision) -> Weights:
        r = self.index.get(name)
        return Weights.from_asset(MODEL_FILE, r.offset, r.dtype, r.shape, precision)

    def float(self, name: str) -> Weights:
        return self.region(name, Precision.FLOAT32)

    def linear(self, prefix: str) -> "Linear":
        bias = f"{prefix}/bias"
        return Linear(
            self.region(f"{prefix}/weight", self.precision),
            self.float(bias) if bias in self.index.regions else None,
        )

    def conv(self, prefix: str) -> "Linear":
        return Linear(self.float(f"{prefix}/weight"), self.float(f"{prefix}/bias"))

    def norm(self, prefix: str) -> "LayerNorm":
        return LayerNorm(self.float(f"{prefix}/gamma"), self.float(f"{prefix}/beta"))


class Linear:
    __slots__ = ("weight", "bias")

    def __init__(self, weight: Weights, bias: Optional[Weights]):
        self.weight = weight
        self.bias = bias

    def __call__(self, x: Tensor, act: Activation = Activation.NONE) -> Tensor:
        return compute.linear(x, self.weight, self.bias, act)

    def conv(self, x: Tensor, stride: int) -> Tensor:
        return compute.conv1d(x, self.weight, self.bias, stride, 1, Activation.GELU)


class LayerNorm:
    __slots__ = ("gamma", "beta")

    def __init__(self, gamma: Weights, beta: Weights):
        self.gamma = gamma
        self.beta = beta

    def __call__(self, x: Tensor) -> Tensor:
        return compute.layer_norm(x, self.gamma, self.beta, EPS)


class Attention:
    """Self-attention (``…/self_attention``, output ``linear_1``) or cross-attention
    (``…/attention``, query ``linear_0``, output ``linear_2``)."""

    def __init__(self, w: Loader, prefix: str, n_head: int, cross: bool):
        query, out = ("linear_0", "linear_2") if cross else ("query", "linear_1")
        self.query = w.linear(f"{prefix}/{query}")
        self.key = w.linear(f"{prefix}/key")
        self.value = w.linear(f"{prefix}/value")
        self.out = w.linear(f"{prefix}/{out}")
        self.n_head = n_head

    def keys_values(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self.key(x), self.value(x)

    def residual(self, x: Tensor, h: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """``x + attention(h over k, v)``."""
        a = compute.attention(self.query(h), k, v, self.n_head, False)
        return compute.add(x, self.out(a))

    def residual_cached(self, x: Tensor, h: Tensor, cache: KvCache) -> Tensor:
        """``x + self-attention(h)`` over the cache, after appending this step."""
        q = self.query(h)
        k, v = self.keys_values(h)
        cache.append(k, v)
        a = compute.attention_cached(q, cache, self.n_head)
        return compute.add(x, self.out(a))


class FeedForward:
    def __init__(self, w: Loader, prefix: str):
        self.ln = w.norm(f"{prefix}/layer_norm")
        self.up = w.linear(f"{prefix}/linear_0")
        self.down = w.linear(f"{prefix}/linear_1")

    def residual(self, x: Tensor) -> Tensor:
        return compute.add(x, self.down(self.up(self.ln(x), Activation.GELU)))


class EncoderBlock:
    def __init__(self, w: Loader, prefix: str, n_head: int):
        sa = f"{prefix}/self_attention"
        self.ln = w.norm(f"{sa}/layer_norm")
        self.attn = Attention(w, sa, n_head, False)
        self.ffn = FeedForward(w, f"{prefix}/ffn")

    def __call__(self, x: Tensor) -> Tensor:
        h = self.ln(x)
        k, v = self.attn.keys_values(h)
        x = self.attn.residual(x, h, k, v)
        del h, k, v  # freed in the host before the feed-forward's hidden layer exists
        return self.ffn.residual(x)


class DecoderBlock:
    def __init__(self, w: Loader, prefix: str, n_head: int):
        sa, ca = f"{prefix}/self_attention", f"{prefix}/attention"
        self.self_ln = w.norm(f"{sa}/layer_norm")
        self.self_attn = Attention(w, sa, n_head, False)
        self.cross_ln = w.norm(f"{ca}/layer_norm")
        self.cross_attn = Attention(w, ca, n_head, True)
        self.ffn = FeedForward(w, f"{prefix}/ffn")


class State:
    """Decoder memory for one window: the audio's cross-attention keys and values (batch
    1, shared by every sequence) and one self-attention cache per layer."""

    def __init__(self, cross: List[Tuple[Tensor, Tensor]], n_layers: int, n_ctx: int, width: int):
        self.cross = cross
        self.n_ctx = n_ctx
        self.width = width
        self.capacity = 1
        self.caches = [KvCache(1, width, 1) for _ in range(n_layers)]
        self.length = 0
        self.batch = 1

    def reset(self, positions: int) -> None:
        """Forgets the decoded tokens (batch 1 again), keeping the audio features; at
        most ``positions`` tokens will be fed until the next reset."""
        capacity = min(max(positions, 1), self.n_ctx)
        if capacity == self.capacity:
            for c in self.caches:
                c.reset(1)
        else:
            self.caches = [KvCache(1, self.width, capacity) for _ in self.caches]
            self.capacity = capacity
        self.length = 0
        self.batch = 1


class Whisper:
    """A Whisper model whose weights are in the host."""

    def __init__(self, index: Index, dims: Dims, precision: Precision):
        w = Loader(index, precision)
        self.dims = dims
        self.conv1 = w.conv("encoder/conv1")
        self.conv2 = w.conv("encoder/conv2")
        self.audio_positions = w.float("encoder/position_encodings/encodings")
        self.encoder = [EncoderBlock(w, f"encoder/layer_{i}", dims.n_audio_head) for i in range(dims.n_audio_layer)]
        self.ln_post = w.norm("encoder/layer_norm")
        embeddings = "decoder/embeddings/weight"
        self.embeddings = w.float(embeddings)
        self.projection = w.region(embeddings, precision)
        self.text_positions = w.float("decoder/position_encodings/encodings")
        self.decoder = [DecoderBlock(w, f"decoder/layer_{i}", dims.n_text_head) for i in range(dims.n_text_layer)]
        self.ln = w.norm("decoder/layer_norm")

    def start_window(self, frames: List[float]) -> State:
        """Encodes one window's log-mel input (``[3000, n_mels]`` row-major, channels
        last) and returns a decoder state (batch 1) for it."""
        n_mels = self.dims.n_mels
        x = Tensor(frames, [len(frames) // n_mels, n_mels])
        x = self.conv2.conv(self.conv1.conv(x, 1), 2)
        t, width = x.shape()
        x = compute.add_positions(x.reshape([1, t, width]), self.audio_positions, 0)
        for block in self.encoder:
            x = block(x)
        features = self.ln_post(x)
        cross = [b.cross_attn.keys_values(features) for b in self.decoder]
        return State(cross, len(self.decoder), self.dims.n_text_ctx, self.dims.n_text_state)

    def decode(self, tokens: Sequence[int], state: State, positions: Sequence[int]) -> List[List[float]]:
        """Feeds ``tokens`` (``state.batch`` sequences of equal length) after those in
        ``state`` and returns the logits at ``positions`` of this call's tokens: row
        ``s * len(positions) + i`` is sequence ``s`` at ``positions[i]``."""
        batch = state.batch
        t = len(tokens) // batch
        if not tokens or len(tokens) % batch:
            raise ValueError(f"{len(tokens)} tokens do not make {batch} sequences")
        if state.length + t > state.capacity:
            raise ValueError(f"{t} tokens fed after {state.length}: more than the {state.capacity} reset for")
        x = compute.add_positions(compute.embed(self.embeddings, tokens, batch), self.text_positions, state.length)
        for block, cache, (ck, cv) in zip(self.decoder, state.caches, state.cross):
            x = block.self_attn.residual_cached(x, block.self_ln(x), cache)
            x = block.cross_attn.residual(x, block.cross_ln(x), ck, cv)
            x = block.ffn.residual(x)
        state.length += t
        x = self.ln(x)
        rows: List[List[float]] = [[] for _ in range(batch * len(positions))]
        n_vocab = self.dims.n_vocab
        for i, p in enumerate(positions):
            at = x if t == 1 else x.narrow(1, p, 1)
            logits = compute.linear(at, self.projection).read()
            for s in range(batch):
                rows[s * len(positions) + i] = logits[s * n_vocab : (s + 1) * n_vocab]
        return rows
