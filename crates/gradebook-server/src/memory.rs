//! What the server keeps current from the change log: the model (the data
//! reads are served from) and the session cache.
//!
//! Every committed change reaches [`Memory`] before its write is
//! acknowledged, on every server that shares the data: a session ended by
//! a logout, a deleted account or a changed password is dropped from each
//! server's cache, whichever server took the request.

use std::sync::Arc;

use gradebook_store::{Change, ChangeRecord, Diff, Follower, Snapshot};

use crate::model::Model;
use crate::session::Sessions;
use crate::watch::{Event, Feed};

/// The change log's follower in the server.
#[derive(Debug)]
pub struct Memory {
    /// The data.
    pub model: Arc<Model>,
    /// Live sessions.
    pub sessions: Arc<Sessions>,
    /// Where the events of each batch go, for `watch`.
    pub feed: Feed,
}

impl Follower for Memory {
    fn load(&self, snapshot: Snapshot) {
        self.model.load(snapshot);
    }

    fn apply(&self, batch: &[ChangeRecord]) {
        let mut events = Vec::new();
        self.model.apply_reporting(batch, |record, promotion| {
            if self.feed.wanted()
                && let Some(event) = Event::of(record, promotion)
            {
                events.push(Arc::new(event));
            }
        });
        self.feed.send(events);
        for record in batch {
            match &record.change {
                Change::Session(Diff { old: Some(end), .. }) => {
                    match hex::decode(&end.token_sha256)
                        .ok()
                        .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    {
                        Some(hash) => self.sessions.revoke(&hash),
                        // Never keep a session the log says is over.
                        None => self.sessions.revoke_user(end.user),
                    }
                }
                // A deleted account, or a new password (old = new): every
                // session of the account ends.
                Change::User(Diff {
                    old: Some(old),
                    new,
                }) if new.as_ref().is_none_or(|n| n == old) => {
                    self.sessions.revoke_user(old.id);
                }
                _ => {}
            }
        }
    }
}
