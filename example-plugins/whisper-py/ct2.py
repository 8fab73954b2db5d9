"""The variable index of a CTranslate2 ``model.bin``: where each weight is in the file.

Only the header is read (names, shapes, dtypes, offsets; the data is skipped with
``seek``); the host reads the weights themselves through ``Weights.from_asset``. The
layout, as in the Rust plugin's ``ct2.rs``::

    u32 version (5 or 6) | string spec | u32 revision | u32 count
    count x (string name | u8 rank | rank x u32 dims | u8 dtype | u32 bytes | data)
    u32 aliases | aliases x (string alias | string target)

where a string is a u16 length and that many bytes (ending in NUL).
"""

import struct
from dataclasses import dataclass, replace
from typing import BinaryIO, Dict, List

from sandscribe_plugin.compute import FileDtype

#: dtype code -> bytes per element.
_WIDTH = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2}
_FLOAT = {0: FileDtype.F32, 4: FileDtype.F16, 5: FileDtype.BF16}


class Ct2Error(Exception):
    """The file is not a CTranslate2 model this plugin can read."""


@dataclass(frozen=True)
class Region:
    """``shape`` elements of ``dtype`` from byte ``offset``, row-major."""

    offset: int
    dtype: FileDtype
    shape: List[int]

    def rows(self, start: int, length: int) -> "Region":
        """Rows ``start .. start + length`` along the first axis (rows are contiguous)."""
        row = 1
        for d in self.shape[1:]:
            row *= d
        return replace(
            self,
            offset=self.offset + start * row * self.dtype.width,
            shape=[length] + list(self.shape[1:]),
        )


class Index:
    """The float variables of one model by name, and its integer scalars."""

    def __init__(self, spec: str, regions: Dict[str, Region], integers: Dict[str, int]):
        self.spec = spec
        self.regions = regions
        self.integers = integers

    @staticmethod
    def read(f: BinaryIO) -> "Index":
        def take(n: int) -> bytes:
            b = f.read(n)
            if len(b) != n:
                raise Ct2Error("the file ends early (truncated download?)")
            return b

        def u32() -> int:
            return struct.unpack("<I", take(4))[0]

        def string() -> str:
            (n,) = struct.unpack("<H", take(2))
            return take(n).rstrip(b"\0").decode()

        version = u32()
        if version not in (5, 6):
            raise Ct2Error(f"binary version {version} (expected 5 or 6)")
        spec = string()
        u32()  # revision
        regions: Dict[str, Region] = {}
        integers: Dict[str, int] = {}
        for _ in range(u32()):
            name = string()
            (rank,) = take(1)
            shape = list(struct.unpack(f"<{rank}I", take(4 * rank)))
            (code,) = take(1)
            size = u32()
            elements = 1
            for d in shape:
                elements *= d
            width = _WIDTH.get(code)
            if width is None:
                raise Ct2Error(f"`{name}` has unknown dtype {code}")
            if elements * width != size:
                raise Ct2Error(f"`{name}`: {size} bytes for shape {shape} of dtype {code}")
            if code in _FLOAT:
                regions[name] = Region(f.tell(), _FLOAT[code], shape)
                f.seek(size, 1)
            elif elements == 1:
                fmt = {1: "<b", 2: "<h", 3: "<i"}[code]
                integers[name] = struct.unpack(fmt, take(size))[0]
            else:
                raise Ct2Error(f"`{name}` is an integer tensor (quantised models are not supported)")
        for _ in range(u32()):
            alias, target = string(), string()
            if target in regions:
                regions[alias] = regions[target]
            elif target in integers:
                integers[alias] = integers[target]
        end = f.seek(0, 2)
        for r in regions.values():
            n = 1
            for d in r.shape:
                n *= d
            if r.offset + n * r.dtype.width > end:
                raise Ct2Error("the file ends early (truncated download?)")
        return Index(spec, regions, integers)

    def get(self, name: str) -> Region:
        try:
            return self.regions[name]
        except KeyError:
            raise Ct2Error(f"model.bin has no variable `{name}` (is it a Whisper model?)") from None

    def split_fused_attention(self) -> None:
        """Splits CTranslate2's fused projections: ``…/self_attention/linear_0`` (query,
        key, value stacked) and the decoder's ``…/attention/linear_1`` (key, value)."""
        for name in list(self.regions):
            if name.endswith("/self_attention/linear_0/weight") or name.endswith("/self_attention/linear_0/bias"):
                kind = name.rsplit("/", 1)[1]
                prefix = name[: -len(f"/linear_0/{kind}")]
                parts = ["query", "key", "value"]
            elif name.startswith("decoder/") and (
                name.endswith("/attention/linear_1/weight") or name.endswith("/attention/linear_1/bias")
            ):
                kind = name.rsplit("/", 1)[1]
                prefix = name[: -len(f"/linear_1/{kind}")]
                parts = ["key", "value"]
            else:
                continue
            region = self.regions.pop(name)
            rows = region.shape[0] if region.shape else 0
            if rows == 0 or rows % len(parts):
                raise Ct2Error(f"`{name}` has {rows} rows, not divisible into {len(parts)} parts")
            step = rows // len(parts)
            for i, part in enumerate(parts):
                self.regions[f"{prefix}/{part}/{kind}"] = region.rows(i * step, step)

    def layer_count(self, prefix: str) -> int:
        """Number of ``prefix/layer_N`` blocks."""
        n = 0
        while any(k.startswith(f"{prefix}/layer_{n}/") for k in self.regions):
            n += 1
        return n
