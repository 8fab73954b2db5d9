//! What becomes of a job's upload: a completed job's audio is kept for playback, named
//! by the job id; a job that failed or was cancelled has its upload removed; an
//! interrupted one keeps it where it is, for a resubmit.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Removes an upload whose job will not need it any more.
pub(super) fn discard_upload(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an upload");
    }
}

/// Moves a completed job's upload to the kept-audio folder, named by the job id. When
/// that fails the upload is removed: the transcript does not depend on it.
pub(super) fn keep_audio(upload: &Path, audio_dir: &Path, id: Uuid) {
    let ext = upload
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let target = audio_dir.join(format!("{id}{ext}"));
    let moved = std::fs::create_dir_all(audio_dir).and_then(|()| std::fs::rename(upload, &target));
    if let Err(e) = moved {
        tracing::warn!(job = %id, error = %e, "could not keep the audio of a finished job");
        discard_upload(upload);
    }
}

/// The kept audio file of a job, if there is one.
pub fn kept_audio(audio_dir: &Path, id: Uuid) -> Option<PathBuf> {
    let prefix = id.to_string();
    std::fs::read_dir(audio_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(prefix.as_str()))
}
