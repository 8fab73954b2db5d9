//! Where the engine reads its audio from.
//!
//! The component reads the host's audio in pieces (a long file never has to sit whole in
//! plugin memory); native callers simply pass a slice.

/// 16 kHz mono samples in -1..=1, read by range.
pub trait AudioSource {
    /// Number of samples.
    fn len(&self) -> usize;

    /// The samples `offset..offset + count`, shorter at the end.
    fn read(&self, offset: usize, count: usize) -> Vec<f32>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AudioSource for [f32] {
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }

    fn read(&self, offset: usize, count: usize) -> Vec<f32> {
        let start = offset.min(<[f32]>::len(self));
        let end = offset.saturating_add(count).min(<[f32]>::len(self));
        self[start..end].to_vec()
    }
}

impl AudioSource for Vec<f32> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn read(&self, offset: usize, count: usize) -> Vec<f32> {
        AudioSource::read(self.as_slice(), offset, count)
    }
}
