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
//!
//! What carries the events differs (a TCP connection writes them between
//! its replies, a QUIC connection on a stream of their own), but both
//! write them through one [`Watcher`]: the replay, the filtering, the
//! batching, `lagged` and the end of a session are the same code.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use gradebook_proto::codec::write_frame;
use gradebook_proto::{Encoding, ReplyOf, WireError};

use gradebook_core::{Grade, Role};
use gradebook_store::{Change, ChangeRecord, Diff};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::context::{State, Watch};
use crate::model::{Model, View};
use crate::session::TokenHash;

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

/// The most change-log entries a replay reads at once.
const REPLAY_PAGE: u32 = 512;

/// A connection's side of one watch: its registration, the session it is
/// for, and the part of the log still to replay. The connection decides
/// when to write and where (TCP between replies, QUIC on the watch's own
/// stream); what is written, in which order, comes from here.
#[derive(Debug)]
pub struct Watcher {
    subscription: Subscription,
    /// Events stop once this session ends (a logout anywhere, a password
    /// change, the account's deletion).
    session: TokenHash,
    /// Replay the log's events after this seq (up to the subscription's
    /// position) before the live ones.
    replay_after: Option<i64>,
}

/// What a watcher's feed brings next.
#[derive(Debug)]
pub enum Next {
    /// An event (others may be waiting behind it).
    Event(Arc<Event>),
    /// The feed dropped the watcher (lagged).
    Closed,
}

/// What one wake-up of a watcher gives ([`Watcher::take`]).
#[derive(Debug)]
pub enum Taken {
    /// A live event to send.
    Event(Arc<Event>),
    /// Nothing to send (an event the replay already sent).
    Nothing,
    /// The feed dropped the watcher: everything up to this seq was sent.
    Lagged(i64),
    /// The session that asked has ended: events stop.
    SessionEnded,
}

/// How far [`Watcher::replay`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// The replay is over (or there was none): live events follow.
    Done,
    /// The output reached its limit: write it out, then replay on.
    More,
    /// The log could not be read: `lagged` is in the output, at the last
    /// seq replayed, and the watch is over (the client may watch again
    /// from there).
    Failed,
}

impl Watcher {
    /// The connection's side of a new watch; `None` if its registration
    /// was already taken (a watch is started once).
    pub fn start(watch: &Watch) -> Option<Watcher> {
        let subscription = lock(&watch.subscription).take()?;
        Some(Watcher {
            subscription,
            session: watch.session.token_hash,
            replay_after: watch.since,
        })
    }

    /// Waits for what the feed brings next. Cancel-safe: an event is
    /// taken only when this returns.
    pub async fn next(&mut self) -> Next {
        match self.subscription.events.recv().await {
            Some(event) => Next::Event(event),
            None => Next::Closed,
        }
    }

    /// What `next` brought, for this watcher: a live event it has not had
    /// from the replay, nothing (the replay covered it), `lagged` once the
    /// feed dropped it, or the end of its session. The one decision every
    /// door (TCP, QUIC, the portal's server-sent events) writes out its
    /// own way.
    pub fn take(&self, next: Next, state: &State) -> Taken {
        if !state.sessions.is_live(&self.session) {
            return Taken::SessionEnded;
        }
        match next {
            Next::Event(event) if event.seq > self.subscription.seq => Taken::Event(event),
            Next::Event(_) => Taken::Nothing,
            Next::Closed => {
                let s = &self.subscription;
                Taken::Lagged(s.lagged().unwrap_or(s.seq))
            }
        }
    }

    /// Appends to `out`, in `encoding`, what `next` brought ([`Self::take`]):
    /// the event and those already waiting behind it, up to about `limit`
    /// bytes (a batch of events goes out in one write, not one each); or
    /// `lagged`; or a reply without an id that says the session ended.
    /// Returns whether the watch goes on.
    pub fn deliver(
        &mut self,
        next: Next,
        state: &State,
        encoding: Encoding,
        out: &mut BytesMut,
        limit: usize,
    ) -> bool {
        match self.take(next, state) {
            Taken::SessionEnded => {
                // A reply without an id says why (as `frame_too_large`
                // does), so that a client waiting for events learns it.
                let ended = WireError::unauthenticated(
                    "your session has ended, so its events stopped: log in again",
                );
                let notice: ReplyOf<'_, ()> = ReplyOf {
                    id: None,
                    result: Err(&ended),
                };
                push(encoding, &notice, out);
                false
            }
            Taken::Lagged(seq) => {
                push(encoding, &lagged(seq), out);
                false
            }
            Taken::Nothing => true,
            Taken::Event(first) => {
                let position = self.subscription.seq;
                let mut next = Some(first);
                while let Some(event) = next.take() {
                    if event.seq > position {
                        out.extend_from_slice(event.frame(encoding));
                    }
                    if out.len() < limit {
                        next = self.subscription.events.try_recv().ok();
                    }
                }
                true
            }
        }
    }

    /// Appends to `out`, in `encoding`, the log's events the watch asked
    /// for with `since`, up to its subscription's position, filtered as
    /// live ones are; stops once `out` holds `limit` bytes, to be called
    /// again after the caller wrote them out.
    pub async fn replay(
        &mut self,
        state: &State,
        encoding: Encoding,
        out: &mut BytesMut,
        limit: usize,
    ) -> Replayed {
        let until = self.subscription.seq;
        while let Some(after) = self.replay_after.filter(|after| *after < until) {
            let page = match state.store.changes_after(after, REPLAY_PAGE).await {
                Ok(page) if !page.is_empty() => page,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot replay the change log for a watcher");
                    self.replay_after = None;
                    push(encoding, &lagged(after), out);
                    return Replayed::Failed;
                }
            };
            // Filtered under the model's lock, encoded after it: writers
            // wait for the lock, not for the encoding.
            let found: Vec<Event> = {
                let view = state.model.read();
                let filter = &self.subscription.filter;
                page.iter()
                    .filter(|(record, _)| record.seq <= until)
                    .filter_map(|(record, promotion)| Event::of(record, *promotion))
                    .filter(|event| filter.admits(event, &view))
                    .collect()
            };
            for event in &found {
                out.extend_from_slice(event.frame(encoding));
            }
            self.replay_after = Some(page.last().map_or(until, |(record, _)| record.seq));
            if out.len() >= limit {
                return Replayed::More;
            }
        }
        self.replay_after = None;
        Replayed::Done
    }
}

/// `lagged` at `seq`: the last position up to which the watcher got every
/// event meant for it.
fn lagged(seq: i64) -> Message<'static> {
    Message {
        event: "lagged",
        seq,
        data: None,
    }
}

/// Appends one message as a frame of `encoding`; one that cannot be
/// encoded is logged and left out.
fn push<T: Serialize>(encoding: Encoding, message: &T, out: &mut BytesMut) {
    let start = out.len();
    if let Err(e) = write_frame(encoding, message, out) {
        tracing::error!(error = %e, "could not encode an event");
        out.truncate(start);
    }
}
