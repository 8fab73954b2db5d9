//! The server's media folders: listing audio/video files and resolving a chosen one.
//!
//! A file is named by the index of its configured folder and a path relative to it. A
//! relative path may hold only plain names (no `..`, no root, no drive prefix), and the
//! resolved file, after following every symlink, must still lie inside the folder: a
//! symlink that leaves the folder is refused, one that stays inside is fine. Listing
//! applies the same rule and never descends into symlinked folders (no loops).

use std::path::{Component, Path, PathBuf};

use time::OffsetDateTime;

/// File name extensions listed as audio or video.
const MEDIA_EXTENSIONS: &[&str] = &[
    "wav", "mp3", "flac", "ogg", "oga", "opus", "m4a", "aac", "mp4", "m4v", "mkv", "mka", "webm",
    "mov", "aif", "aiff", "caf",
];

/// Limits on one listing walk, so a huge folder cannot stall a request.
const MAX_DEPTH: usize = 12;
const MAX_FILES: usize = 20_000;

/// Why a media path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("no media folder number {0} is configured")]
    UnknownFolder(usize),
    #[error("the path must be relative to the media folder and may not contain `..`")]
    BadPath,
    #[error("that file is outside the media folder")]
    Outside,
    #[error("no such file in the media folder")]
    NotFound,
}

/// One audio or video file in a media folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    pub folder: usize,
    /// Relative to the folder, with `/` separators.
    pub path: String,
    pub bytes: u64,
    pub modified: Option<OffsetDateTime>,
}

/// Whether a file name looks like audio or video.
pub fn is_media_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MEDIA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The real path of `relative` inside `folders[folder]`, refusing anything that escapes it.
pub fn resolve(folders: &[PathBuf], folder: usize, relative: &str) -> Result<PathBuf, MediaError> {
    let root = folders
        .get(folder)
        .ok_or(MediaError::UnknownFolder(folder))?;
    if relative.is_empty() || relative.contains('\0') || relative.contains('\\') {
        return Err(MediaError::BadPath);
    }
    let relative_path = Path::new(relative);
    if !relative_path
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(MediaError::BadPath);
    }
    let root = root.canonicalize().map_err(|_| MediaError::NotFound)?;
    let real = root
        .join(relative_path)
        .canonicalize()
        .map_err(|_| MediaError::NotFound)?;
    if !real.starts_with(&root) {
        return Err(MediaError::Outside);
    }
    if !real.is_file() {
        return Err(MediaError::NotFound);
    }
    Ok(real)
}

/// Every audio/video file of every folder whose path contains `search` (case-insensitive),
/// sorted by folder then path.
pub fn list(folders: &[PathBuf], search: &str) -> Vec<MediaFile> {
    let needle = search.trim().to_lowercase();
    let mut files = Vec::new();
    for (index, folder) in folders.iter().enumerate() {
        let Ok(root) = folder.canonicalize() else {
            continue;
        };
        walk(&root, index, &mut files);
    }
    files.retain(|f| needle.is_empty() || f.path.to_lowercase().contains(&needle));
    files.sort_by(|a, b| (a.folder, &a.path).cmp(&(b.folder, &b.path)));
    files
}

fn walk(root: &Path, folder: usize, files: &mut Vec<MediaFile>) {
    let mut pending = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            if files.len() >= MAX_FILES {
                return;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    pending.push((path, depth + 1));
                }
                continue;
            }
            let name = entry.file_name();
            if !is_media_name(&name.to_string_lossy()) {
                continue;
            }
            // A symlink counts only if it points at a file inside the folder.
            let Ok(real) = path.canonicalize() else {
                continue;
            };
            if !real.starts_with(root) || !real.is_file() {
                continue;
            }
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let Some(relative) = relative_text(relative) else {
                continue;
            };
            let metadata = std::fs::metadata(&real).ok();
            files.push(MediaFile {
                folder,
                path: relative,
                bytes: metadata.as_ref().map_or(0, std::fs::Metadata::len),
                modified: metadata
                    .and_then(|m| m.modified().ok())
                    .map(OffsetDateTime::from),
            });
        }
    }
}

/// A relative path as `/`-separated UTF-8 text (non-UTF-8 names are skipped).
fn relative_text(path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = path
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    parts.map(|p| p.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with_files() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let media = dir.path().join("media");
        std::fs::create_dir_all(media.join("talks")).expect("mkdir");
        std::fs::write(media.join("talks/one.wav"), b"RIFF").expect("write");
        std::fs::write(media.join("two.MP3"), b"ID3").expect("write");
        std::fs::write(media.join("notes.txt"), b"text").expect("write");
        std::fs::write(dir.path().join("secret.wav"), b"secret").expect("write");
        (dir, media)
    }

    #[test]
    fn a_file_inside_the_folder_resolves() {
        let (_dir, media) = folder_with_files();
        let real = resolve(std::slice::from_ref(&media), 0, "talks/one.wav").expect("resolves");
        assert!(real.ends_with("talks/one.wav"));
    }

    #[test]
    fn dot_dot_is_refused() {
        let (_dir, media) = folder_with_files();
        let folders = [media];
        assert_eq!(
            resolve(&folders, 0, "../secret.wav"),
            Err(MediaError::BadPath)
        );
        assert_eq!(
            resolve(&folders, 0, "talks/../../secret.wav"),
            Err(MediaError::BadPath)
        );
        assert_eq!(
            resolve(&folders, 0, "talks\\..\\x"),
            Err(MediaError::BadPath)
        );
    }

    #[test]
    fn absolute_paths_are_refused() {
        let (dir, media) = folder_with_files();
        let absolute = dir.path().join("secret.wav");
        assert_eq!(
            resolve(&[media], 0, &absolute.to_string_lossy()),
            Err(MediaError::BadPath)
        );
    }

    #[test]
    fn unknown_folders_and_missing_files_are_refused() {
        let (_dir, media) = folder_with_files();
        let folders = [media];
        assert_eq!(
            resolve(&folders, 3, "two.MP3"),
            Err(MediaError::UnknownFolder(3))
        );
        assert_eq!(resolve(&folders, 0, "nope.wav"), Err(MediaError::NotFound));
        assert_eq!(resolve(&folders, 0, "talks"), Err(MediaError::NotFound));
        assert_eq!(resolve(&folders, 0, ""), Err(MediaError::BadPath));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_that_leave_the_folder_are_refused_and_not_listed() {
        let (dir, media) = folder_with_files();
        std::os::unix::fs::symlink(dir.path().join("secret.wav"), media.join("escape.wav"))
            .expect("symlink");
        std::os::unix::fs::symlink(dir.path(), media.join("up")).expect("symlink");
        std::os::unix::fs::symlink(media.join("two.MP3"), media.join("alias.mp3"))
            .expect("symlink");
        let folders = [media];
        assert_eq!(resolve(&folders, 0, "escape.wav"), Err(MediaError::Outside));
        assert_eq!(
            resolve(&folders, 0, "up/secret.wav"),
            Err(MediaError::Outside)
        );
        assert!(resolve(&folders, 0, "alias.mp3").is_ok(), "inside is fine");
        let listed: Vec<String> = list(&folders, "").into_iter().map(|f| f.path).collect();
        assert_eq!(listed, ["alias.mp3", "talks/one.wav", "two.MP3"]);
    }

    #[test]
    fn listing_shows_only_media_and_searches_paths() {
        let (_dir, media) = folder_with_files();
        let folders = [media];
        let all = list(&folders, "");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].path, "talks/one.wav");
        assert_eq!(all[0].bytes, 4);
        let found = list(&folders, "TALK");
        assert_eq!(found.len(), 1);
        assert!(list(&folders, "zzz").is_empty());
    }
}
