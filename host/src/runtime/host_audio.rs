//! `sandscribe:plugin/audio`: the job's audio as a host-owned resource read in chunks.
//! The same for every WIT version; the bindings modules forward to these methods.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::store::JobContext;

/// The largest chunk one `read` call returns, so one call cannot make the host copy a
/// whole file into guest memory at once.
pub const MAX_READ_FRAMES: u32 = 1 << 20;

/// What the guest's `audio` handle points at: the samples, shared, never copied whole.
pub struct AudioResource {
    pub samples: Arc<[f32]>,
    pub sample_rate: u32,
}

impl JobContext {
    pub(crate) fn audio_frames(&self, audio: &Resource<AudioResource>) -> u64 {
        self.table.get(audio).map_or(0, |a| a.samples.len() as u64)
    }

    pub(crate) fn audio_sample_rate(&self, audio: &Resource<AudioResource>) -> u32 {
        self.table.get(audio).map_or(0, |a| a.sample_rate)
    }

    pub(crate) fn audio_read(
        &self,
        audio: &Resource<AudioResource>,
        offset: u64,
        count: u32,
    ) -> Vec<f32> {
        let Ok(audio) = self.table.get(audio) else {
            return Vec::new();
        };
        let len = audio.samples.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
        let count = count.min(MAX_READ_FRAMES) as usize;
        let end = start.saturating_add(count).min(len);
        audio.samples[start..end].to_vec()
    }

    pub(crate) fn audio_drop(&mut self, audio: Resource<AudioResource>) -> wasmtime::Result<()> {
        self.table.delete(audio)?;
        Ok(())
    }
}
