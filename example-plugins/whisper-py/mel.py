"""Whisper's log-mel spectrogram with the heavy arithmetic in the host.

It matches openai-whisper's ``log_mel_spectrogram`` (and the Rust plugin's ``mel.rs``):
a centred STFT (reflect padding, periodic Hann window, n_fft 400, hop 160), the power
spectrum, Slaney mel filters (computed here as librosa does), ``log10(max(x, 1e-10))``,
clamped to 8 below the file's maximum, then ``(x + 4) / 4``.

Python in the sandbox is far too slow for 3000 FFTs a window, so the transform is a
convolution in the host: the signal is a ``[time, 1]`` tensor and the kernel holds the
windowed DFT basis, ``[402, 1, 400]`` (201 cosine rows, then 201 sine rows), with stride
160, which gives every frame's real and imaginary parts in one call. Python only squares
them (the interface has no element-wise product); the mel filters are a ``linear``
layer over ``[re², im²]`` with the filter bank repeated for both halves, which adds the
two. Then ``log10`` in Python, on 80 values a frame.
"""

import math
import struct
from typing import List, Optional, Tuple

from sandscribe_plugin import AudioInput, compute
from sandscribe_plugin.compute import Tensor, Weights

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
N_FRAMES = 3000
N_SAMPLES = N_FRAMES * HOP_LENGTH
N_BINS = N_FFT // 2 + 1
#: Frames transformed per host call: bounds the Python lists of one call (~30 MB).
CHUNK_FRAMES = 750


def f32(x: float) -> float:
    """``x`` rounded to binary32, as the Rust plugin computes it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _hz_to_mel(f: float) -> float:
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    logstep = math.log(6.4) / 27.0
    return min_log_hz / f_sp + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp


def _mel_to_hz(m: float) -> float:
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return min_log_hz * math.exp(logstep * (m - min_log_mel)) if m >= min_log_mel else f_sp * m


def mel_filters(n_mels: int) -> List[List[float]]:
    """The Slaney mel filter bank, ``n_mels x 201``, as ``librosa.filters.mel(sr=16000,
    n_fft=400, htk=False, norm="slaney")``."""
    fmax = SAMPLE_RATE / 2.0
    bins = [k * fmax / (N_BINS - 1) for k in range(N_BINS)]
    lo_mel, hi_mel = _hz_to_mel(0.0), _hz_to_mel(fmax)
    edges = [_mel_to_hz(lo_mel + (hi_mel - lo_mel) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bank = []
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        norm = 2.0 / (hi - lo)
        bank.append([max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid))) * norm for f in bins])
    return bank


def frame_count(samples: int) -> int:
    """Frames of a file of ``samples`` samples once padded with ``N_SAMPLES`` of silence."""
    return (samples + N_SAMPLES) // HOP_LENGTH


class Loudness:
    """What the loudness pass over a file found: its maximum log-mel value, and the first
    window's frames until they are used."""

    def __init__(self, maximum: float, first: Optional[Tuple[List[float], int]]):
        self.max = maximum
        self.first = first


class MelSpectrogram:
    def __init__(self, n_mels: int):
        self.n_mels = n_mels
        window = [0.5 - 0.5 * math.cos(2.0 * math.pi * n / N_FFT) for n in range(N_FFT)]
        basis: List[float] = []
        for k in range(N_BINS):
            basis += [w * math.cos(2.0 * math.pi * k * n / N_FFT) for n, w in enumerate(window)]
        for k in range(N_BINS):
            basis += [-w * math.sin(2.0 * math.pi * k * n / N_FFT) for n, w in enumerate(window)]
        self.basis = Weights.from_data(basis, [2 * N_BINS, 1, N_FFT])
        filters: List[float] = []
        for row in mel_filters(n_mels):
            filters += row + row
        self.filters = Weights.from_data(filters, [n_mels, 2 * N_BINS])

    def log_frames(self, audio: AudioInput, start: int, count: int) -> List[float]:
        """``log10(max(mel, 1e-10))`` of frames ``start .. start + count`` of the audio
        followed by ``N_SAMPLES`` of silence, frame-major (``out[i * n_mels + band]``)."""
        out: List[float] = []
        for first in range(start, start + count, CHUNK_FRAMES):
            out += self._log_frames(audio, first, min(CHUNK_FRAMES, start + count - first))
        return out

    def _log_frames(self, audio: AudioInput, start: int, count: int) -> List[float]:
        # Frame f covers padded samples f*160 - 200 .. f*160 + 200, reflected at 0.
        begin = start * HOP_LENGTH - N_FFT // 2
        length = (count - 1) * HOP_LENGTH + N_FFT
        signal: List[float] = []
        if begin < 0:
            head = audio.read(1, -begin)
            head += [0.0] * (-begin - len(head))
            signal = head[::-1]
        from_ = max(begin, 0)
        signal += audio.read(from_, begin + length - from_)
        signal += [0.0] * (length - len(signal))
        spectrum = compute.conv1d(Tensor(signal, [length, 1]), self.basis, None, HOP_LENGTH, 0)
        del signal
        parts = spectrum.read()
        del spectrum
        power = Tensor([v * v for v in parts], [count, 2 * N_BINS])
        del parts
        mel = compute.linear(power, self.filters).read()
        log10 = math.log10
        return [log10(v) if v > 1e-10 else -10.0 for v in mel]

    def loudness(self, audio: AudioInput) -> Loudness:
        """The largest log-mel value of the whole padded file (openai-whisper clamps every
        value to 8 below it), keeping the first window's frames."""
        n = audio.frames()
        # Frames past this one see only the zero padding, whose value is the floor -10.
        last = min((n + N_FFT) // HOP_LENGTH + 1, frame_count(n))
        result = Loudness(-10.0, None)
        start = 0
        while start < last:
            count = min(N_FRAMES, last - start)
            frames = self.log_frames(audio, start, count)
            result.max = max(result.max, max(frames))
            if start == 0:
                result.first = (frames, count)
            start += count
        return result

    def window_after(self, audio: AudioInput, loudness: Loudness, seek: int, count: int) -> List[float]:
        """The model input for the window at frame ``seek`` (see :meth:`window`), taking the
        loudness pass's frames when this is the first window."""
        count = min(count, N_FRAMES)
        first, loudness.first = loudness.first, None
        if first is not None and seek == 0 and count <= first[1]:
            return self._normalise(first[0], count, loudness.max)
        return self.window(audio, loudness.max, seek, count)

    def window(self, audio: AudioInput, global_max: float, seek: int, count: int) -> List[float]:
        """``count`` normalised frames from ``seek``, zero-padded to ``N_FRAMES`` as
        openai-whisper's ``pad_or_trim`` does: ``[N_FRAMES, n_mels]`` row-major."""
        count = min(count, N_FRAMES)
        return self._normalise(self.log_frames(audio, seek, count), count, global_max)

    def _normalise(self, frames: List[float], count: int, global_max: float) -> List[float]:
        floor = f32(global_max - 8.0)
        used = frames[: count * self.n_mels]
        out = [((v if v > floor else floor) + 4.0) / 4.0 for v in used]
        out += [0.0] * ((N_FRAMES - count) * self.n_mels)
        return out
