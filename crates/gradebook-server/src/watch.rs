//! `watch` (protocol §9): live events about what a watcher may read.
//!
//! Each committed change-log entry about a grade or a promotion's lock
//! becomes at most one [`Event`] ([`Event::of`]), the same way whether it
//! arrives live or is replayed from the log for `since`. The model's
//! follower hands each batch's events to one fan-out task ([`Hub`]), off
//! the writer's path, which gives each watcher the events its [`Filter`]
//! admits, in seq order, through a bounded queue. A watcher whose queue is
//! full is dropped from the feed and told `lagged` once it has read what
//! was queued: a slow reader never slows writers nor holds more than
//! `watch_queue` events ([`QUEUE`] by default).
//!
//! A new watcher is registered, and the log's position read, under the
//! hub's lock: events up to that position come from the log (`since`),
//! later ones from the feed, and the connection drops any feed event at or
//! before the position, so none is missed or sent twice.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use gradebook_proto::Encoding;
use gradebook_proto::codec::write_frame;

use gradebook_core::{Grade, Role};
use gradebook_store::{Change, ChangeRecord, Diff};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::model::{Model, View};

/// How many events a watcher may have waiting, by default, before it is
/// dropped as lagged ([`crate::config::Limits::watch_queue`]).
pub const QUEUE: usize = 1024;

/// One event, before it is filtered for a watcher.
#[derive(Debug)]
pub struct Event {
    /// The change-log entry it comes from.
    pub seq: i64,
    /// `grade.published`, `grade.added`, `grade.updated`,
    /// `grade.unpublished`, `grade.deleted`, `promotion.locked`,
    /// `promotion.unlocked`.
    pub kind: &'static str,
    /// The promotion it is about.
    pub promotion: i64,
    /// The student it is about, for a grade.
    pub student: Option<i64>,
    /// Whether the student may see it (a grade visible before or after
    /// the change; a promotion's lock); teachers and admins see them all.
    pub public: bool,
    /// The grade or the promotion.
    pub data: Value,
    /// Its frame in JSON and in MessagePack, each made once, by the first
    /// watcher that needs it: a thousand watchers copy bytes, they do not
    /// serialise the event a thousand times.
    frames: [OnceLock<Vec<u8>>; 2],
}

/// An event as it goes on the wire: `{"event", "seq", "data"}`.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// Its kind, or `lagged`.
    pub event: &'a str,
    /// Its seq (for `lagged`, the last entry the watcher got all of).
    pub seq: i64,
    /// Its grade or promotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Value>,
}

impl Event {
    /// The event an entry makes, if any, given the promotion it is about.
    pub fn of(record: &ChangeRecord, promotion: Option<i64>) -> Option<Event> {
        let promotion = promotion?;
        let event = |kind, student, public, data| Event {
            seq: record.seq,
            kind,
            promotion,
            student,
            public,
            data,
            frames: Default::default(),
        };
        match &record.change {
            Change::Grade(Diff { old, new }) => {
                let (kind, grade, public) = grade_event(old.as_ref(), new.as_ref())?;
                let data = serde_json::to_value(grade).ok()?;
                Some(event(kind, Some(grade.student), public, data))
            }
            Change::Promotion(Diff {
                old: Some(old),
                new: Some(new),
            }) if old.locked != new.locked => {
                let kind = if new.locked {
                    "promotion.locked"
                } else {
                    "promotion.unlocked"
                };
                let data = json!({"name": new.name, "locked": new.locked});
                Some(event(kind, None, true, data))
            }
            _ => None,
        }
    }

    /// The message for the wire.
    pub fn message(&self) -> Message<'_> {
        Message {
            event: self.kind,
            seq: self.seq,
            data: Some(&self.data),
        }
    }

    /// The event as one frame of `encoding` (made once per encoding);
    /// empty if it cannot be encoded (logged).
    pub fn frame(&self, encoding: Encoding) -> &[u8] {
        let slot = match encoding {
            Encoding::Json => &self.frames[0],
            Encoding::Msgpack => &self.frames[1],
        };
        slot.get_or_init(|| {
            let mut out = BytesMut::new();
            match write_frame(encoding, &self.message(), &mut out) {
                Ok(()) => out.to_vec(),
                Err(e) => {
                    tracing::error!(error = %e, "could not encode an event");
                    Vec::new()
                }
            }
        })
    }
}

/// A grade change's kind, the grade shown, and whether its student sees it.
fn grade_event<'g>(
    old: Option<&'g Grade>,
    new: Option<&'g Grade>,
) -> Option<(&'static str, &'g Grade, bool)> {
    Some(match (old, new) {
        (None, Some(g)) if g.published => ("grade.published", g, true),
        (None, Some(g)) => ("grade.added", g, false),
        (Some(o), Some(n)) if !o.published && n.published => ("grade.published", n, true),
        (Some(o), Some(n)) if o.published && !n.published => ("grade.unpublished", n, true),
        (Some(_), Some(n)) => ("grade.updated", n, n.published),
        (Some(o), None) => ("grade.deleted", o, o.published),
        (None, None) => return None,
    })
}

/// What one watcher may receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The watcher's role.
    pub role: Role,
    /// Its account.
    pub user: i64,
    /// A student account's own record.
    pub own_student: Option<i64>,
    /// Only this promotion's events.
    pub promotion: Option<i64>,
    /// Only this student's events (and their promotion's lock).
    pub student: Option<i64>,
}

impl Filter {
    /// Whether the watcher gets `event`, by the data as it is now.
    pub fn admits(&self, event: &Event, view: &View<'_>) -> bool {
        if self.promotion.is_some_and(|p| p != event.promotion) {
            return false;
        }
        if let Some(s) = self.student {
            let theirs = match event.student {
                Some(student) => student == s,
                None => view.promotion_of_student(s) == Some(event.promotion),
            };
            if !theirs {
                return false;
            }
        }
        match self.role {
            Role::Admin => true,
            Role::Teacher => view
                .promotion_by_id(event.promotion)
                .is_some_and(|p| p.managed_by(self.user)),
            Role::Student => {
                let Some(own) = self.own_student else {
                    return false;
                };
                event.public
                    && match event.student {
                        Some(student) => student == own,
                        None => view.promotion_of_student(own) == Some(event.promotion),
                    }
            }
        }
    }
}

/// A watcher as the hub keeps it.
struct Entry {
    filter: Filter,
    queue: mpsc::Sender<Arc<Event>>,
    state: Arc<Shared>,
}

/// What a watcher's connection and the hub share.
#[derive(Debug, Default)]
struct Shared {
    /// The seq of the last event queued before the watcher was dropped as
    /// lagged (0: not lagged).
    lagged: AtomicI64,
}

/// The watchers, and the task that feeds them.
#[derive(Default)]
pub struct Hub {
    watchers: Mutex<Vec<Entry>>,
    /// How many are registered, read without the lock on the writer's
    /// path: no watcher, no event made.
    count: AtomicI64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("watchers", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

/// A connection's registration: its events, and where they start.
#[derive(Debug)]
pub struct Subscription {
    /// The change log's position when it registered: events at or before
    /// it come from the log, not from `events`.
    pub seq: i64,
    /// Its events, in seq order; closed once it is dropped from the feed.
    pub events: mpsc::Receiver<Arc<Event>>,
    /// What it may receive (for the replay too).
    pub filter: Filter,
    state: Arc<Shared>,
    hub: Arc<Hub>,
}

impl Subscription {
    /// If the feed dropped it for lagging: the seq up to which it got
    /// everything.
    pub fn lagged(&self) -> Option<i64> {
        match self.state.lagged.load(Ordering::Acquire) {
            0 => None,
            seq => Some(seq),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(&self.state);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Registers a watcher; its position is the model's, read under the
    /// hub's lock (see the module's documentation).
    pub fn subscribe(
        self: &Arc<Self>,
        filter: Filter,
        model: &Model,
        capacity: usize,
    ) -> Subscription {
        let (queue, events) = mpsc::channel(capacity.max(1));
        let state = Arc::new(Shared::default());
        let mut watchers = lock(&self.watchers);
        // Counted before the position is read: a batch applied after the
        // read (under the model's write lock) sees the count and makes its
        // events; one applied before it is in the position, so replayed.
        self.count.fetch_add(1, Ordering::SeqCst);
        let seq = model.read().seq();
        watchers.push(Entry {
            filter: filter.clone(),
            queue,
            state: state.clone(),
        });
        Subscription {
            seq,
            events,
            filter,
            state,
            hub: self.clone(),
        }
    }

    fn remove(&self, state: &Arc<Shared>) {
        let mut watchers = lock(&self.watchers);
        let before = watchers.len();
        watchers.retain(|e| !Arc::ptr_eq(&e.state, state));
        self.count
            .fetch_sub((before - watchers.len()) as i64, Ordering::SeqCst);
    }

    /// Whether anyone watches.
    pub fn watched(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Gives each watcher the events of one batch it may see; drops (as
    /// lagged) those whose queue is full.
    fn publish(&self, events: &[Arc<Event>], model: &Model) {
        let mut watchers = lock(&self.watchers);
        let before = watchers.len();
        let view = model.read();
        watchers.retain(|w| {
            for event in events {
                if !w.filter.admits(event, &view) {
                    continue;
                }
                match w.queue.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // Everything before this event was queued.
                        w.state
                            .lagged
                            .store((event.seq - 1).max(1), Ordering::Release);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
        let dropped = before - watchers.len();
        self.count.fetch_sub(dropped as i64, Ordering::SeqCst);
    }
}

/// The follower's side: the events of each applied batch, handed to the
/// fan-out task.
#[derive(Debug, Clone)]
pub struct Feed {
    hub: Arc<Hub>,
    batches: mpsc::UnboundedSender<Vec<Arc<Event>>>,
}

impl Feed {
    /// Starts the fan-out task for `hub`, reading `model` to filter.
    pub fn start(hub: Arc<Hub>, model: Arc<Model>) -> Feed {
        let (batches, mut incoming) = mpsc::unbounded_channel::<Vec<Arc<Event>>>();
        let fan_out = hub.clone();
        tokio::spawn(async move {
            while let Some(events) = incoming.recv().await {
                fan_out.publish(&events, &model);
            }
        });
        Feed { hub, batches }
    }

    /// Whether events are wanted at all: asked under the model's write
    /// lock, while a batch is applied (see [`Hub::subscribe`]).
    pub fn wanted(&self) -> bool {
        self.hub.watched()
    }

    /// Hands one batch's events over; never blocks.
    pub fn send(&self, events: Vec<Arc<Event>>) {
        if !events.is_empty() {
            let _ = self.batches.send(events);
        }
    }
}
