//! Cleaning up after browser sessions that were abandoned.
//!
//! A file uploaded on the file step waits in `data/web/staged/<tenant>/` until Start (or
//! until its login ends, which deletes it at once); a person who
//! closes the tab leaves it there. Every hour (and at start) sessions unused for
//! [`SESSION_IDLE`] are forgotten, and staged files that no session holds any more are
//! deleted, so the staging folder cannot fill the disk over months.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Web;
use super::file::staged_root;

/// How long a browser session keeps its place (and its staged file) without being used:
/// the same as a browser login, so a person who is still logged in finds their upload.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A staged file younger than this is never removed: its upload may have been received
/// a moment ago, before its session was saved.
const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

const INTERVAL: Duration = Duration::from_secs(3600);

/// Runs the sweep now and then every hour, for as long as the server runs.
pub fn spawn(web: Arc<Web>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        loop {
            ticks.tick().await;
            sweep(&web).await;
        }
    });
}

async fn sweep(web: &Web) {
    let held = match web.store.sweep_sessions(SESSION_IDLE).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!("could not sweep idle browser sessions: {e}");
            return;
        }
    };
    let dir = staged_root(web);
    let older_than = SystemTime::now()
        .checked_sub(ORPHAN_GRACE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match tokio::task::spawn_blocking(move || remove_unheld(&dir, &held, older_than)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(removed)) => tracing::info!(removed, "removed abandoned staged uploads"),
        Ok(Err(e)) => tracing::warn!("could not clean the staged uploads: {e}"),
        Err(e) => tracing::warn!("the staged-upload sweep failed: {e}"),
    }
}

/// Deletes the files in `dir` and in its folders (one per tenant) last modified before
/// `older_than` that are not in `held`; returns how many. A missing folder has nothing to
/// clean.
fn remove_unheld(
    dir: &Path,
    held: &HashSet<PathBuf>,
    older_than: SystemTime,
) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            removed += remove_unheld(&path, held, older_than)?;
            continue;
        }
        let stale = metadata.modified().is_ok_and(|at| at < older_than);
        if metadata.is_file() && stale && !held.contains(&path) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_files_no_session_holds_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tenant")).expect("mkdir");
        let [held, orphan] = ["held.wav", "tenant/orphan"].map(|name| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").expect("write");
            path
        });
        let keep = HashSet::from([held.clone()]);
        // Everything is younger than the cut-off: nothing goes.
        let past = SystemTime::now() - Duration::from_secs(60);
        assert_eq!(remove_unheld(dir.path(), &keep, past).expect("sweep"), 0);
        // Everything is older: only the file no session holds goes.
        let future = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(remove_unheld(dir.path(), &keep, future).expect("sweep"), 1);
        assert!(held.exists() && !orphan.exists());
        assert_eq!(
            remove_unheld(&dir.path().join("absent"), &keep, future).expect("sweep"),
            0
        );
    }
}
