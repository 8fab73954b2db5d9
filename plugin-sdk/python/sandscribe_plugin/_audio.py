"""Reading the host-owned audio in chunks."""

from dataclasses import dataclass
from typing import Iterator, List


@dataclass
class Chunk:
    """A piece of the audio and where it starts (in samples)."""

    offset: int
    samples: List[float]


class AudioInput:
    """The job's audio: mono floats in -1..=1 at the plugin's sample rate, held by the host.

    Read windows with :meth:`read` or :meth:`chunks`; only :meth:`read_all` copies the
    whole file into plugin memory (about 32 bytes a sample as a Python list).
    """

    #: The most samples asked of the host in one call.
    MAX_READ = 1 << 20

    def __init__(self, handle):
        self._handle = handle
        self._frames = handle.frames()
        self._sample_rate = handle.sample_rate()

    def frames(self) -> int:
        """Number of samples in total."""
        return self._frames

    def sample_rate(self) -> int:
        """Sample rate in Hz."""
        return self._sample_rate

    def duration_ms(self) -> int:
        """Length in milliseconds."""
        return self.frames_to_ms(self._frames)

    def frames_to_ms(self, frames: int) -> int:
        """Converts a sample position to milliseconds (integer arithmetic)."""
        return frames * 1000 // max(self._sample_rate, 1)

    def read(self, offset: int, count: int) -> List[float]:
        """The samples ``offset .. offset + count``; shorter only at the end of the audio."""
        offset = max(0, offset)
        count = max(0, min(count, self._frames - offset))
        out: List[float] = []
        while len(out) < count:
            piece = self._handle.read(offset + len(out), min(count - len(out), self.MAX_READ))
            if not piece:
                break
            out += piece
        return out

    def read_all(self) -> List[float]:
        """The whole audio as one list. Prefer :meth:`chunks` for long files."""
        return self.read(0, self._frames)

    def chunks(self, size: int) -> Iterator[Chunk]:
        """Successive chunks of at most ``size`` samples, each with its start offset."""
        size = max(1, size)
        for offset in range(0, self._frames, size):
            samples = self.read(offset, size)
            if not samples:
                return
            yield Chunk(offset, samples)
