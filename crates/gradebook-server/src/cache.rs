//! Read replies served from memory while the store is unchanged.
//!
//! Every write bumps a generation number; a cached reply (or permission
//! decision) is used only if it was computed at the current generation. So
//! a read that follows a write always sees it, and between writes the same
//! `student.average` is computed once instead of once per request.
//!
//! This is only sound while one server process owns the database, which is
//! the case with SQLite. A backend shared by several servers must not use
//! it (or must learn of the others' writes).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use gradebook_proto::Command;

/// Entries kept before the cache starts over; a bound on its memory (the
/// largest, `promotion.show`, are a few hundred kilobytes at most).
const MAX_ENTRIES: usize = 10_000;

/// A map of values valid for one generation of the store.
#[derive(Debug)]
pub struct Generational<K, V> {
    entries: Mutex<Entries<K, V>>,
}

/// The values of one generation: older ones can never be served again, so
/// they are dropped as soon as a newer one is stored.
#[derive(Debug)]
struct Entries<K, V> {
    generation: u64,
    map: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Default for Generational<K, V> {
    fn default() -> Self {
        Generational {
            entries: Mutex::new(Entries {
                generation: 0,
                map: HashMap::new(),
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Generational<K, V> {
    /// The value for `key` if it was stored at `generation`.
    pub fn get(&self, key: &K, generation: u64) -> Option<V> {
        let entries = self.lock();
        if entries.generation != generation {
            return None;
        }
        entries.map.get(key).cloned()
    }

    /// Stores `value` for `key` as computed at `generation`.
    pub fn put(&self, key: K, generation: u64, value: V) {
        let mut entries = self.lock();
        if generation < entries.generation {
            // Computed before a write that has since landed: already stale.
            return;
        }
        if generation > entries.generation || entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
            entries.generation = generation;
        }
        entries.map.insert(key, value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // Every change is a single insert or clear: a poisoned lock still
        // holds a consistent map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The store's generation: bumped after every write.
#[derive(Debug, Default)]
pub struct Generation(AtomicU64);

impl Generation {
    /// The current generation. Read it *before* reading the store, so a
    /// write that lands during the read makes the result stale, not wrong.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Marks every cached value stale.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_valid_for_one_generation() {
        let generation = Generation::default();
        let cache: Generational<&str, i32> = Generational::default();
        let g = generation.current();
        cache.put("a", g, 1);
        assert_eq!(cache.get(&"a", generation.current()), Some(1));
        generation.bump();
        assert_eq!(cache.get(&"a", generation.current()), None);
    }
}

/// What a cached read is about: its command and its one argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadKey {
    /// A read of one student or their grades (`student.show`, …).
    Id(&'static str, i64),
    /// A read of one promotion (`promotion.average`, …).
    Name(&'static str, String),
}

impl ReadKey {
    /// The key of a read whose reply depends only on its argument, not on
    /// who asks once the permission check has passed; `None` for anything
    /// else.
    pub fn of(command: &Command) -> Option<ReadKey> {
        use Command as C;
        let name = command.name();
        Some(match command {
            C::StudentShow(a) | C::StudentAverage(a) | C::StudentExplain(a) => {
                ReadKey::Id(name, a.id)
            }
            C::GradeList(a) => ReadKey::Id(name, a.student),
            C::PromotionShow(a) | C::PromotionAverage(a) | C::PromotionSubjects(a) => {
                ReadKey::Name(name, a.name.clone())
            }
            C::StudentList(a) => ReadKey::Name(name, a.promotion.clone()),
            _ => return None,
        })
    }

    /// The key under which a permission decision for `command` may be
    /// remembered: every keyed read, and the writes whose target is one id
    /// or name (`grade.add` on a student, `grade.update` on a grade, …).
    /// `None` for commands whose decision depends on more (a move of a
    /// student between promotions, an audit query).
    pub fn access(command: &Command) -> Option<ReadKey> {
        use Command as C;
        let name = command.name();
        match command {
            C::GradeAdd(a) => Some(ReadKey::Id(name, a.student)),
            C::GradeUpdate(a) => Some(ReadKey::Id(name, a.id)),
            C::GradeDelete(a) | C::StudentRemove(a) => Some(ReadKey::Id(name, a.id)),
            C::StudentUpdate(a) if a.promotion.is_none() => Some(ReadKey::Id(name, a.id)),
            C::StudentAdd(a) => Some(ReadKey::Name(name, a.promotion.clone())),
            _ => ReadKey::of(command),
        }
    }
}

/// The caches of the request path.
#[derive(Debug, Default)]
pub struct ReadCache {
    /// Bumped after every write.
    pub generation: Generation,
    /// Replies of keyed reads.
    pub replies: Generational<ReadKey, serde_json::Value>,
    /// Bumped after every command that [`changes_access`].
    pub access_generation: Generation,
    /// Permission decisions already taken: (user id, target) → allowed.
    /// Writes that only add data leave them valid, so a stream of
    /// `grade.add` is checked once per student, not once per grade.
    pub allowed: Generational<(i64, ReadKey), ()>,
}
