//! Signed checkpoints written while the database runs, so a checkpoint exists even when no
//! one can open the (locked) database from outside: every `features.audit.checkpoint_every`
//! commits, a background thread signs the audit trail's checkpoint with
//! `features.audit.signing_key_file` and writes it to `features.audit.checkpoint_dir` as
//! `checkpoint-<size>.txt` (written to a temporary name, then renamed: a reader never sees
//! half a file). Copy them off the machine: a checkpoint kept outside holds the log to its
//! past (`chronodb audit verify --checkpoint FILE --public-key HEX`).
//!
//! Commits never wait for it: the commit observer only sends the commit's number on a
//! channel; signing and writing happen on the thread, which ends with the database.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use chrono_audit::{AuditTrail, signing};
use chrono_storage::{Commit, CommitObserver, WriteBatch};
use parking_lot::Mutex;

use crate::error::{Error, Result};

/// The commit observer that asks for a checkpoint every `every` commits.
pub struct CheckpointWriter {
    every: u64,
    requests: Mutex<Sender<u64>>,
}

impl CheckpointWriter {
    /// Starts the writer thread for `trail`, signing with the hex seed `key_hex`.
    pub fn start(
        trail: &Arc<AuditTrail>,
        key_hex: &str,
        dir: PathBuf,
        every: u64,
    ) -> Result<Arc<CheckpointWriter>> {
        let key = signing::signing_key(key_hex.trim())?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        let (requests, received) = channel();
        let trail = Arc::downgrade(trail);
        std::thread::Builder::new()
            .name("chronodb-checkpoints".into())
            .spawn(move || {
                write_checkpoints(
                    &received,
                    || {
                        let trail = trail.upgrade()?;
                        let checkpoint = trail.checkpoint();
                        Some((checkpoint.size, signing::sign(&checkpoint, &key)))
                    },
                    &dir,
                )
            })
            .map_err(|e| Error::Io(format!("cannot start the checkpoint writer: {e}")))?;
        Ok(Arc::new(CheckpointWriter {
            every: every.max(1),
            requests: Mutex::new(requests),
        }))
    }
}

/// Answers requests until the channel closes or `sign` says the trail is gone.
fn write_checkpoints(
    requests: &Receiver<u64>,
    sign: impl Fn() -> Option<(u64, String)>,
    dir: &std::path::Path,
) {
    while requests.recv().is_ok() {
        // Several requests may wait: one checkpoint of the newest state answers them all.
        while requests.try_recv().is_ok() {}
        let Some((size, note)) = sign() else {
            return;
        };
        let path = dir.join(format!("checkpoint-{size}.txt"));
        let temporary = dir.join(format!(".checkpoint-{size}.tmp"));
        let written =
            std::fs::write(&temporary, note).and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(e) = written {
            tracing::warn!("cannot write the checkpoint {}: {e}", path.display());
        }
    }
}

impl CommitObserver for CheckpointWriter {
    fn on_commit(&self, _commit: &Commit, _batch: &mut WriteBatch) -> chrono_storage::Result<()> {
        Ok(())
    }

    fn after_commit(&self, commit: &Commit) {
        if commit.seq.is_multiple_of(self.every) {
            let _ = self.requests.lock().send(commit.seq);
        }
    }
}
