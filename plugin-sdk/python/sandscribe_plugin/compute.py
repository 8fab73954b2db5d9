"""Native-speed math for plugins: tensors held by the host, weights shared between jobs,
and the few fused operations a transformer needs (the ``compute`` interface of
``sandscribe:plugin@0.2.0``).

Python in the sandbox is slow at arithmetic; with this module the heavy kernels run in
the host with the CPU's full instruction set and the job's thread budget, while the
plugin keeps its logic (features, decoding, search). Activations stay in the host
between calls as :class:`Tensor` handles; only :meth:`Tensor.read` copies numbers back
(as a list of floats). :class:`Weights` read from the plugin's assets are one copy in the
host, whatever the number of jobs. A handle is freed when its Python object is.

Calls cannot fail from the plugin's point of view: a wrong one (mismatched shapes, a
region outside the file, too much memory) stops the job with ``invalid_compute_call``
and the reason.

.. code-block:: python

    from sandscribe_plugin import compute
    from sandscribe_plugin.compute import Activation, FileDtype, Precision, Tensor, Weights

    # A [1, 4] input through a 4 -> 2 layer read from the plugin's assets.
    w = Weights.from_asset("model.bin", 1024, FileDtype.F16, [2, 4])
    x = Tensor([0.5, -1.0, 2.0, 0.0], [1, 4])
    y = compute.linear(x, w, act=Activation.GELU)
    assert y.shape() == [1, 2]
    values = y.read()

Shapes are lists of ints, outermost first: ``[batch, time, features]`` for activations,
``[out, in]`` for a linear layer's weights, ``[out, in, kernel]`` for a convolution's.
"""

from dataclasses import dataclass
from enum import Enum
from typing import List, Optional, Sequence

from wit_world.imports import compute as _wit


class FileDtype(Enum):
    """How numbers are stored in an asset file region (little-endian)."""

    F32 = _wit.FileDtype.FLOAT32
    F16 = _wit.FileDtype.FLOAT16
    BF16 = _wit.FileDtype.BFLOAT16

    @property
    def width(self) -> int:
        """Bytes per element."""
        return 4 if self is FileDtype.F32 else 2


class Precision(Enum):
    """How the host keeps weights for :func:`linear`. ``INT8`` (per-row symmetric) and
    ``BFLOAT16`` are faster and smaller and change results slightly; weights used for
    anything but ``linear`` (norms, biases, positions, embeddings) should be ``FLOAT32``."""

    FLOAT32 = _wit.Precision.FLOAT32
    BFLOAT16 = _wit.Precision.BFLOAT16
    INT8 = _wit.Precision.INT8


class Activation(Enum):
    """What is applied to a product before it is returned."""

    NONE = _wit.Activation.NONE
    #: GELU with the exact ``erf``, as Whisper and BERT use it.
    GELU = _wit.Activation.GELU


@dataclass
class Device:
    """What the host gives this job."""

    #: Threads one call may use.
    threads: int
    #: The instruction set the kernels run with ("avx512", "avx2", "neon", "scalar").
    kernels: str


def _dims(shape: Sequence[int]) -> List[int]:
    return [int(d) for d in shape]


class Tensor:
    """An ``f32`` tensor held by the host for this job, row-major."""

    __slots__ = ("_t",)

    def __init__(self, data: Sequence[float], shape: Sequence[int]):
        """A tensor of ``data`` (a list of floats with exactly the product of ``shape``
        elements)."""
        self._t = _wit.Tensor(data if isinstance(data, list) else list(data), _dims(shape))

    @classmethod
    def _wrap(cls, handle) -> "Tensor":
        t = cls.__new__(cls)
        t._t = handle
        return t

    def shape(self) -> List[int]:
        return self._t.shape()

    def read(self) -> List[float]:
        """Copies every element out of the host, row-major."""
        return self._t.read()

    def reshape(self, shape: Sequence[int]) -> "Tensor":
        """The same data under another shape with the same number of elements."""
        return Tensor._wrap(self._t.reshape(_dims(shape)))

    def narrow(self, axis: int, start: int, length: int) -> "Tensor":
        """``length`` positions starting at ``start`` along ``axis``."""
        return Tensor._wrap(self._t.narrow(axis, start, length))


class Weights:
    """Immutable parameters (``[out, in]`` for :func:`linear`, ``[out, in, kernel]`` for
    :func:`conv1d`, ``[features]`` for norms and biases)."""

    __slots__ = ("_w",)

    def __init__(self, handle):
        self._w = handle

    @staticmethod
    def from_asset(
        path: str,
        offset: int,
        dtype: FileDtype,
        shape: Sequence[int],
        precision: Precision = Precision.FLOAT32,
    ) -> "Weights":
        """The region of ``path`` (relative to the plugin's assets folder) that starts at
        byte ``offset`` and holds ``shape`` elements of ``dtype``, converted to
        ``precision``. The host reads the file itself, and every job of this plugin
        build that asks for the same region and precision shares one copy."""
        return Weights(_wit.Weights.from_asset(path, int(offset), dtype.value, _dims(shape), precision.value))

    @staticmethod
    def from_data(
        data: Sequence[float], shape: Sequence[int], precision: Precision = Precision.FLOAT32
    ) -> "Weights":
        """Weights from values the plugin computed (e.g. mel filters), owned by this job."""
        return Weights(_wit.Weights.from_data(data if isinstance(data, list) else list(data), _dims(shape), precision.value))

    def shape(self) -> List[int]:
        return self._w.shape()


class KvCache:
    """The self-attention keys and values of a decoder for ``batch`` sequences that grow a
    step at a time, up to ``capacity`` positions, held by the host. Use it with
    :func:`attention_cached`; reorder it for beam search."""

    __slots__ = ("_c",)

    def __init__(self, batch: int, width: int, capacity: int):
        """``width`` is the model width (heads x head size)."""
        self._c = _wit.KvCache(batch, width, capacity)

    def __len__(self) -> int:
        """Positions held per sequence."""
        return self._c.len()

    def batch(self) -> int:
        return self._c.batch()

    def append(self, keys: Tensor, values: Tensor) -> None:
        """Appends ``keys`` and ``values``, both ``[batch, t, width]``."""
        self._c.append(keys._t, values._t)

    def reorder(self, sources: Sequence[int]) -> None:
        """Sequence ``i`` continues former sequence ``sources[i]``; the batch becomes
        ``len(sources)``."""
        self._c.reorder(list(sources))

    def reset(self, batch: int) -> None:
        """Forgets every position; the batch becomes ``batch``."""
        self._c.reset(batch)


def linear(x: Tensor, w: Weights, bias: Optional[Weights] = None, act: Activation = Activation.NONE) -> Tensor:
    """``x @ w^T + bias``, then ``act``: ``x`` is ``[..., in]``, ``w`` is ``[out, in]``,
    ``bias`` is ``[out]``; the result is ``[..., out]``."""
    return Tensor._wrap(_wit.linear(x._t, w._w, None if bias is None else bias._w, act.value))


def layer_norm(x: Tensor, gamma: Weights, beta: Weights, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last axis, then ``* gamma + beta`` (both ``[features]``)."""
    return Tensor._wrap(_wit.layer_norm(x._t, gamma._w, beta._w, eps))


def add(a: Tensor, b: Tensor) -> Tensor:
    """``a + b``, element by element; ``b`` has the shape of ``a`` or of ``a``'s last axes."""
    return Tensor._wrap(_wit.add(a._t, b._t))


def add_positions(x: Tensor, w: Weights, start: int = 0) -> Tensor:
    """``x + rows start .. start + t of w`` for ``x`` of ``[batch, t, features]`` and ``w``
    of ``[positions, features]``."""
    return Tensor._wrap(_wit.add_positions(x._t, w._w, start))


def embed(table: Weights, ids: Sequence[int], batch: int = 1) -> Tensor:
    """Rows ``ids`` of ``table`` (``[vocabulary, features]``) as
    ``[batch, len(ids) / batch, features]``."""
    return Tensor._wrap(_wit.embed(table._w, list(ids), batch))


def conv1d(
    x: Tensor,
    w: Weights,
    bias: Optional[Weights] = None,
    stride: int = 1,
    padding: int = 0,
    act: Activation = Activation.NONE,
) -> Tensor:
    """1-D convolution over time, channels last: ``x`` is ``[time, in]``, ``w`` is
    ``[out, in, kernel]``, ``bias`` ``[out]``, zero ``padding`` at both ends; the result is
    ``[(time + 2 padding - kernel) // stride + 1, out]``, then ``act``."""
    return Tensor._wrap(_wit.conv1d(x._t, w._w, None if bias is None else bias._w, stride, padding, act.value))


def attention(q: Tensor, k: Tensor, v: Tensor, heads: int, causal: bool = False) -> Tensor:
    """Scaled dot-product attention with ``heads`` heads: ``q`` is ``[batch, tq, width]``,
    ``k`` and ``v`` are ``[batch, tk, width]`` or ``[1, tk, width]`` (shared by every
    sequence). ``causal`` hides later key positions. The result is ``[batch, tq, width]``."""
    return Tensor._wrap(_wit.attention(q._t, k._t, v._t, heads, causal))


def attention_cached(q: Tensor, cache: KvCache, heads: int) -> Tensor:
    """Causal self-attention of ``q`` (``[batch, tq, width]``) over every position in
    ``cache`` (append this step's keys and values first)."""
    return Tensor._wrap(_wit.attention_cached(q._t, cache._c, heads))


def attention_weights(q: Tensor, k: Tensor, heads: int, selected: Sequence[int]) -> Tensor:
    """The softmax-normalised attention weights of the ``selected`` heads,
    ``[batch, len(selected), tq, tk]`` (for word timings from alignment heads)."""
    return Tensor._wrap(_wit.attention_weights(q._t, k._t, heads, list(selected)))


def device() -> Device:
    """The threads and kernels the host gives this job (for logs and tuning)."""
    d = _wit.device_info()
    return Device(d.threads, d.kernels)
