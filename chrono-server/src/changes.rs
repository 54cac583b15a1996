//! The change hub: a commit observer that hands every commit to live subscribers through a
//! bounded broadcast buffer. A subscriber that falls behind the buffer is told so (it then
//! catches up from the stored history), so a slow reader never holds writers back and never
//! makes the server's memory grow without bound.

use std::sync::Arc;

use chrono_storage::{Commit, CommitObserver, WriteBatch};
use tokio::sync::broadcast;

/// Commits kept for subscribers that have not read them yet.
pub const BUFFERED_COMMITS: usize = 1024;

/// Publishes commits to subscribers.
pub struct ChangeHub {
    sender: broadcast::Sender<Arc<Commit>>,
}

impl ChangeHub {
    /// A hub with an empty buffer.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(BUFFERED_COMMITS).0,
        }
    }

    /// Commits buffered for subscribers that have not read them (never above
    /// [`BUFFERED_COMMITS`]).
    pub fn queued(&self) -> usize {
        self.sender.len()
    }

    /// A receiver of every commit from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.sender.subscribe()
    }
}

impl Default for ChangeHub {
    fn default() -> Self {
        Self::new()
    }
}

impl CommitObserver for ChangeHub {
    fn on_commit(&self, _commit: &Commit, _batch: &mut WriteBatch) -> chrono_storage::Result<()> {
        Ok(())
    }

    fn after_commit(&self, commit: &Commit) {
        // Copying the commit costs only when somebody listens.
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(commit.clone()));
        }
    }
}
