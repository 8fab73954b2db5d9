//! Content hashes that name cached objects and links.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{CBuildError, io};

/// The hex sha256 of `parts`, each prefixed by its length (so the split is part of it).
pub fn hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    format!("{:x}", hasher.finalize())
}

/// A hash of every file with one of `extensions` under `dirs` (recursively), names
/// included: the key of the headers a set of sources may include.
pub fn digest_files(dirs: &[&Path], extensions: &[&str]) -> Result<String, CBuildError> {
    let mut files = Vec::new();
    for dir in dirs {
        collect_files(dir, extensions, &mut files)?;
    }
    files.sort();
    let mut parts = Vec::new();
    for file in &files {
        parts.push(file.to_string_lossy().into_owned().into_bytes());
        parts.push(std::fs::read(file).map_err(io("read", file))?);
    }
    Ok(hash(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>()))
}

fn collect_files(
    dir: &Path,
    extensions: &[&str],
    out: &mut Vec<PathBuf>,
) -> Result<(), CBuildError> {
    for entry in std::fs::read_dir(dir).map_err(io("read", dir))?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, extensions, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_between_parts_is_part_of_the_hash() {
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_eq!(hash(&[b"ab", b"c"]), hash(&[b"ab", b"c"]));
    }

    #[test]
    fn a_changed_header_changes_the_digest_and_other_files_do_not() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("a.h"), "int a;").expect("write");
        let before = digest_files(&[dir.path()], &["h"]).expect("digest");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        assert_eq!(before, digest_files(&[dir.path()], &["h"]).expect("digest"));
        std::fs::write(dir.path().join("a.h"), "int b;").expect("write");
        assert_ne!(before, digest_files(&[dir.path()], &["h"]).expect("digest"));
    }
}
