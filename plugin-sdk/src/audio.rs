//! Reading the host-owned audio in chunks.

use crate::bindings::sandscribe::plugin::audio::Audio;

/// The most samples one [`AudioInput::read`] returns (2^20, about 65 s at 16 kHz): the
/// host's cap per call.
pub const MAX_READ_FRAMES: u32 = 1 << 20;

/// The job's audio: mono f32 at the sample rate the plugin asked for, held by the host.
///
/// Read it in windows with [`AudioInput::read`] or [`AudioInput::chunks`]; only
/// [`AudioInput::read_all`] copies the whole file into plugin memory. One read returns at
/// most [`MAX_READ_FRAMES`] samples, whatever `count` asks for (the host caps it, so one
/// call cannot make it copy a whole file into the sandbox); `chunks` and `read_all` stay
/// under the cap.
pub struct AudioInput<'a> {
    source: Source<'a>,
    frames: u64,
    sample_rate: u32,
}

/// Where the samples are: with the host, or (for native unit tests) in memory.
enum Source<'a> {
    Host(&'a Audio),
    Memory(&'a [f32]),
}

impl<'a> AudioInput<'a> {
    #[doc(hidden)]
    pub fn new(inner: &'a Audio) -> Self {
        Self {
            frames: inner.frames(),
            sample_rate: inner.sample_rate(),
            source: Source::Host(inner),
        }
    }

    /// Audio held in memory, read under the same cap as the host's: for unit tests of a
    /// plugin's `transcribe` (see [`crate::mock::MockHost`]).
    pub fn from_samples(samples: &'a [f32], sample_rate: u32) -> Self {
        Self {
            frames: samples.len() as u64,
            sample_rate,
            source: Source::Memory(samples),
        }
    }

    /// Number of samples in total.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.frames_to_ms(self.frames)
    }

    /// Converts a sample position to milliseconds (integer arithmetic).
    pub fn frames_to_ms(&self, frames: u64) -> u64 {
        frames * 1000 / u64::from(self.sample_rate.max(1))
    }

    /// Up to `count` samples from `offset`; shorter at the end of the audio, and never
    /// more than [`MAX_READ_FRAMES`].
    pub fn read(&self, offset: u64, count: u32) -> Vec<f32> {
        match self.source {
            Source::Host(audio) => audio.read(offset, count),
            Source::Memory(samples) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(samples.len());
                let count = count.min(MAX_READ_FRAMES) as usize;
                samples[start..samples.len().min(start + count)].to_vec()
            }
        }
    }

    /// The whole audio in one vector. Prefer [`AudioInput::chunks`] for long files.
    pub fn read_all(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(usize::try_from(self.frames).unwrap_or(0));
        for chunk in self.chunks(1 << 16) {
            out.extend_from_slice(&chunk.samples);
        }
        out
    }

    /// Successive chunks of at most `size` samples (and at most [`MAX_READ_FRAMES`]),
    /// each with its start offset.
    pub fn chunks(&self, size: u32) -> impl Iterator<Item = Chunk> + '_ {
        let size = size.clamp(1, MAX_READ_FRAMES);
        let mut offset = 0u64;
        std::iter::from_fn(move || {
            if offset >= self.frames {
                return None;
            }
            let samples = self.read(offset, size);
            if samples.is_empty() {
                return None;
            }
            let chunk = Chunk { offset, samples };
            offset += chunk.samples.len() as u64;
            Some(chunk)
        })
    }
}

/// A piece of the audio and where it starts.
pub struct Chunk {
    /// Position of the first sample, in samples from the start.
    pub offset: u64,
    pub samples: Vec<f32>,
}
