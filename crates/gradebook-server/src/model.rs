//! The in-memory model: promotions, students and grades as committed,
//! which every read is served from. The store is the durable copy.
//!
//! The model loads the store's snapshot at start-up and then applies each
//! committed batch of the change log ([`gradebook_store::Follower`]), on
//! the store's writer thread, before any write of the batch is
//! acknowledged: a read that follows a write's `ok` sees it.
//!
//! What reads cost stays small whatever is written meanwhile:
//! - a student's averages (overall and per subject) are running sums
//!   ([`Tally`]) that each grade change adjusts;
//! - a promotion's ranks and statistics ([`Figures`]) are computed on the
//!   first read after a change touched that promotion, once, and shared by
//!   every read until the next such change.
//!
//! Publication (protocol §9): a student reads only their promotion's
//! published grades, and figures computed as if the others did not exist;
//! teachers and admins read everything. So each student keeps two sets of
//! running sums and each promotion two sets of figures, one per [`Scope`];
//! where every grade is published the two agree.
//!
//! Grades are the bulk of the memory: each is 48 bytes in its student's
//! list plus an entry in the grade index, with subjects and labels shared
//! (interned) rather than repeated.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use gradebook_core::{
    Average, Coefficient, Grade, GradeValue, Promotion, Statistics, Student, SubjectAverage,
    Summary, Tally, competition_ranks, statistics,
};
use gradebook_proto::WireError;
use gradebook_store::{
    Change, ChangeRecord, Diff, Follower, GrantRecord, PromotionGrades, PromotionRecord, Snapshot,
    StudentRecord, UserRecord,
};

/// The model, shared by every connection and fed by the store.
#[derive(Debug, Default)]
pub struct Model {
    inner: RwLock<Inner>,
}

impl Model {
    /// An empty model, before the store's snapshot is loaded.
    pub fn new() -> Arc<Self> {
        Arc::new(Model::default())
    }

    /// A consistent view for one read: no change is applied while it is
    /// held, so hold it only to copy out what the reply needs.
    pub fn read(&self) -> View<'_> {
        View(self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Follower for Model {
    fn load(&self, snapshot: Snapshot) {
        *self.write() = Inner::from_snapshot(snapshot);
    }

    fn apply(&self, batch: &[ChangeRecord]) {
        self.apply_reporting(batch, |_, _| {});
    }
}

impl Model {
    /// Applies a committed batch, as [`Follower::apply`] does, and calls
    /// `applied` with each entry and the promotion it is about (a grade's
    /// is its student's, read as the change is applied), under the write
    /// lock: no read sees the batch before `applied` has seen it.
    pub fn apply_reporting(
        &self,
        batch: &[ChangeRecord],
        mut applied: impl FnMut(&ChangeRecord, Option<i64>),
    ) {
        let mut inner = self.write();
        for record in batch {
            if record.seq <= inner.seq {
                continue;
            }
            if record.seq != inner.seq + 1 {
                tracing::error!(
                    expected = inner.seq + 1,
                    got = record.seq,
                    "the change log skipped entries"
                );
            }
            let promotion = inner.promotion_of_change(&record.change);
            inner.apply(&record.change);
            let promotion = promotion.or_else(|| inner.promotion_of_change(&record.change));
            inner.seq = record.seq;
            applied(record, promotion);
        }
    }
}

/// A read-locked view of the model.
pub struct View<'a>(RwLockReadGuard<'a, Inner>);

/// Which grades a reader may see (protocol §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every grade, published or not: teachers and admins.
    All,
    /// Published grades only, as if the others did not exist: students.
    Published,
}

impl Scope {
    const fn index(self) -> usize {
        match self {
            Scope::All => 0,
            Scope::Published => 1,
        }
    }

    /// Whether a grade with this flag is in the scope.
    pub fn sees(self, published: bool) -> bool {
        published || self == Scope::All
    }
}

/// A grade as the model keeps it: its student is the list it is in.
#[derive(Debug, Clone)]
struct StoredGrade {
    id: i64,
    subject: Arc<str>,
    label: Option<Arc<str>>,
    value: GradeValue,
    coefficient: Coefficient,
    published: bool,
}

impl StoredGrade {
    fn to_grade(&self, student: i64) -> Grade {
        Grade {
            id: self.id,
            student,
            subject: self.subject.to_string(),
            value: self.value,
            coefficient: self.coefficient,
            label: self.label.as_deref().map(str::to_owned),
            published: self.published,
        }
    }
}

/// Running sums over some of a student's grades: overall and per subject.
#[derive(Debug, Default)]
struct Sums {
    overall: Tally,
    /// By subject, in byte order, as `subject_averages` gives them.
    subjects: BTreeMap<Arc<str>, Tally>,
}

impl Sums {
    fn add(&mut self, grade: &StoredGrade) {
        self.overall.add(grade.value, grade.coefficient);
        self.subjects
            .entry(grade.subject.clone())
            .or_default()
            .add(grade.value, grade.coefficient);
    }

    fn remove(&mut self, grade: &StoredGrade) {
        self.overall.remove(grade.value, grade.coefficient);
        if let Some(tally) = self.subjects.get_mut(&grade.subject) {
            tally.remove(grade.value, grade.coefficient);
            if tally.grades() == 0 {
                self.subjects.remove(&grade.subject);
            }
        }
    }
}

/// A student, their grades and their running averages.
#[derive(Debug)]
pub struct StudentState {
    record: StudentRecord,
    /// By id.
    grades: Vec<StoredGrade>,
    /// Over every grade, and over the published ones ([`Scope`]).
    sums: [Sums; 2],
}

impl StudentState {
    fn new(record: StudentRecord) -> Self {
        StudentState {
            record,
            grades: Vec::new(),
            sums: Default::default(),
        }
    }

    /// The student record, as clients see it.
    pub fn student(&self) -> &Student {
        &self.record.student
    }

    /// The student's grades in `scope`, by id.
    pub fn grades(&self, scope: Scope) -> impl Iterator<Item = Grade> + '_ {
        let id = self.record.student.id;
        self.grades
            .iter()
            .filter(move |g| scope.sees(g.published))
            .map(move |g| g.to_grade(id))
    }

    /// The student's grades in `scope` as `(id, subject, value,
    /// coefficient)`, by id.
    pub fn grade_values(
        &self,
        scope: Scope,
    ) -> impl Iterator<Item = (i64, &str, GradeValue, Coefficient)> {
        self.grades
            .iter()
            .filter(move |g| scope.sees(g.published))
            .map(|g| (g.id, &*g.subject, g.value, g.coefficient))
    }

    /// The overall average over the grades in `scope`.
    pub fn summary(&self, scope: Scope) -> Summary {
        self.sums[scope.index()].overall.summary()
    }

    /// The average in each subject over the grades in `scope`, by subject
    /// name.
    pub fn subject_averages(&self, scope: Scope) -> Vec<SubjectAverage> {
        self.sums[scope.index()]
            .subjects
            .iter()
            .map(|(subject, tally)| SubjectAverage {
                subject: subject.to_string(),
                summary: tally.summary(),
            })
            .collect()
    }

    fn add(&mut self, grade: StoredGrade) {
        self.sums[Scope::All.index()].add(&grade);
        if grade.published {
            self.sums[Scope::Published.index()].add(&grade);
        }
        // Ids grow, so a new grade nearly always goes last.
        let at = self.grades.partition_point(|g| g.id < grade.id);
        self.grades.insert(at, grade);
    }

    fn remove(&mut self, id: i64) -> Option<StoredGrade> {
        let at = self.grades.binary_search_by_key(&id, |g| g.id).ok()?;
        let grade = self.grades.remove(at);
        self.sums[Scope::All.index()].remove(&grade);
        if grade.published {
            self.sums[Scope::Published.index()].remove(&grade);
        }
        Some(grade)
    }
}

/// Where a student stands in their promotion's name order: last name,
/// first name, id (the store's order).
type RosterKey = (String, String, i64);

fn roster_key(s: &Student) -> RosterKey {
    (s.last_name.clone(), s.first_name.clone(), s.id)
}

/// A promotion, who manages it, its students, and its figures once
/// computed.
#[derive(Debug)]
pub struct PromotionState {
    record: PromotionRecord,
    /// Teachers granted it.
    managers: HashSet<i64>,
    roster: BTreeSet<RosterKey>,
    /// Per [`Scope`], once computed.
    figures: [Mutex<Option<Arc<Figures>>>; 2],
    /// Per [`Scope`], once computed.
    subjects: [Mutex<Option<Arc<SubjectStatistics>>>; 2],
}

impl PromotionState {
    fn new(record: PromotionRecord) -> Self {
        PromotionState {
            record,
            managers: HashSet::new(),
            roster: BTreeSet::new(),
            figures: Default::default(),
            subjects: Default::default(),
        }
    }

    /// The promotion as clients see it.
    pub fn promotion(&self) -> Promotion {
        Promotion {
            name: self.record.name.clone(),
            year: self.record.year,
            description: self.record.description.clone(),
            students: self.roster.len() as u64,
            publication: self.record.publication,
            locked: self.record.locked,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Whether the account created it or was granted it.
    pub fn managed_by(&self, user: i64) -> bool {
        self.record.created_by == Some(user) || self.managers.contains(&user)
    }

    /// Its students' ids, in name order.
    pub fn student_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.roster.iter().map(|k| k.2)
    }

    /// Forgets what was computed from its students and grades.
    fn touch(&mut self) {
        for slot in &mut self.figures {
            *lock(slot) = None;
        }
        for slot in &mut self.subjects {
            *lock(slot) = None;
        }
    }
}

fn lock<T>(m: &mut Mutex<T>) -> &mut T {
    m.get_mut().unwrap_or_else(|e| e.into_inner())
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A promotion's averages, ranks and statistics, as of one state of its
/// grades.
#[derive(Debug)]
pub struct Figures {
    /// Its students' ids, in name order.
    pub students: Vec<i64>,
    /// Their summaries, aligned with `students`.
    pub summaries: Vec<Summary>,
    /// Their ranks (none without an average), aligned with `students`.
    pub ranks: Vec<Option<u32>>,
    /// How many are ranked.
    pub ranked: u32,
    /// Statistics over their averages.
    pub statistics: Statistics,
    /// How many have an `ATT` grade.
    pub incomplete: u64,
    position: HashMap<i64, usize>,
}

impl Figures {
    /// A student's summary and rank, if they are in the promotion.
    pub fn of(&self, student: i64) -> Option<(&Summary, Option<u32>)> {
        let &i = self.position.get(&student)?;
        Some((&self.summaries[i], self.ranks[i]))
    }
}

/// Statistics per subject, by subject name.
pub type SubjectStatistics = Vec<(String, Statistics)>;

/// Subject and label names, stored once however many grades use them.
#[derive(Debug, Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }

    /// Drops `a`, and its name too if no grade uses it any more.
    fn release(&mut self, a: Arc<str>) {
        // This handle and the interner's own: the last grade that used it.
        if Arc::strong_count(&a) == 2 {
            self.0.remove(&*a);
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// The last change applied.
    seq: i64,
    promotions: HashMap<i64, PromotionState>,
    /// Promotion ids by name, in name order.
    by_name: BTreeMap<String, i64>,
    students: HashMap<i64, StudentState>,
    /// Student ids by number (numbers are unique across promotions).
    numbers: HashMap<String, i64>,
    /// The student of each grade.
    grade_owner: HashMap<i64, i64>,
    names: Interner,
}

impl Inner {
    fn from_snapshot(snapshot: Snapshot) -> Self {
        let mut inner = Inner {
            seq: snapshot.seq,
            ..Inner::default()
        };
        for p in snapshot.promotions {
            inner.add_promotion(p);
        }
        for g in snapshot.grants {
            inner.grant(&g, true);
        }
        inner.students.reserve(snapshot.students.len());
        for s in snapshot.students {
            inner.add_student(s);
        }
        inner.grade_owner.reserve(snapshot.grades.len());
        for g in snapshot.grades {
            inner.add_grade(&g);
        }
        inner
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Promotion(Diff { old, new }) => match (old, new) {
                (None, Some(new)) => self.add_promotion(new.clone()),
                (Some(_), Some(new)) => self.update_promotion(new),
                (Some(old), None) => self.remove_promotion(old.id),
                (None, None) => {}
            },
            Change::Grant(d) => {
                if let Some(old) = &d.old {
                    self.grant(old, false);
                }
                if let Some(new) = &d.new {
                    self.grant(new, true);
                }
            }
            Change::Student(Diff { old, new }) => match (old, new) {
                (None, Some(new)) => self.add_student(new.clone()),
                (Some(_), Some(new)) => self.update_student(new),
                (Some(old), None) => self.remove_student(old.student.id),
                (None, None) => {}
            },
            Change::Grade(d) => {
                if let Some(old) = &d.old {
                    self.remove_grade(old.id);
                }
                if let Some(new) = &d.new {
                    self.add_grade(new);
                }
            }
            Change::User(Diff { old, new }) => {
                if let (Some(old), None) = (old, new) {
                    self.remove_user(old);
                }
            }
            // Not data: `memory::Memory` gives it to the session cache.
            Change::Session(_) => {}
        }
    }

    /// The promotion a change is about, as the model stands: a grade's
    /// student's (before a removal, or after an addition).
    fn promotion_of_change(&self, change: &Change) -> Option<i64> {
        match change {
            Change::Promotion(d) => d.latest().map(|p| p.id),
            Change::Grant(d) => d.latest().map(|g| g.promotion),
            Change::Student(d) => d.latest().map(|s| s.promotion_id),
            Change::Grade(d) => d
                .latest()
                .and_then(|g| self.students.get(&g.student))
                .map(|s| s.record.promotion_id),
            Change::User(_) | Change::Session(_) => None,
        }
    }

    fn touch(&mut self, promotion: i64) {
        if let Some(p) = self.promotions.get_mut(&promotion) {
            p.touch();
        }
    }

    fn add_promotion(&mut self, record: PromotionRecord) {
        self.by_name.insert(record.name.clone(), record.id);
        self.promotions
            .insert(record.id, PromotionState::new(record));
    }

    /// A promotion's own fields changed (year, description, publication
    /// mode, lock): its students and figures stay.
    fn update_promotion(&mut self, new: &PromotionRecord) {
        let Some(p) = self.promotions.get_mut(&new.id) else {
            return self.add_promotion(new.clone());
        };
        if p.record.name != new.name {
            self.by_name.remove(&p.record.name);
            self.by_name.insert(new.name.clone(), new.id);
        }
        p.record = new.clone();
    }

    fn remove_promotion(&mut self, id: i64) {
        let Some(p) = self.promotions.remove(&id) else {
            return;
        };
        self.by_name.remove(&p.record.name);
        // The log removes the students first; the cascade, in case.
        for key in p.roster {
            self.remove_student(key.2);
        }
    }

    fn grant(&mut self, grant: &GrantRecord, given: bool) {
        if let Some(p) = self.promotions.get_mut(&grant.promotion) {
            if given {
                p.managers.insert(grant.user);
            } else {
                p.managers.remove(&grant.user);
            }
        }
    }

    /// A deleted account no longer manages anything (the database's
    /// cascades do the same).
    fn remove_user(&mut self, user: &UserRecord) {
        for p in self.promotions.values_mut() {
            p.managers.remove(&user.id);
            if p.record.created_by == Some(user.id) {
                p.record.created_by = None;
            }
        }
    }

    fn add_student(&mut self, record: StudentRecord) {
        let id = record.student.id;
        if let Some(n) = &record.student.number {
            self.numbers.insert(n.clone(), id);
        }
        if let Some(p) = self.promotions.get_mut(&record.promotion_id) {
            p.roster.insert(roster_key(&record.student));
            p.touch();
        }
        self.students.insert(id, StudentState::new(record));
    }

    fn update_student(&mut self, new: &StudentRecord) {
        let id = new.student.id;
        let Some(state) = self.students.get_mut(&id) else {
            return self.add_student(new.clone());
        };
        let old = std::mem::replace(&mut state.record, new.clone());
        if let Some(n) = &old.student.number {
            self.numbers.remove(n);
        }
        if let Some(n) = &new.student.number {
            self.numbers.insert(n.clone(), id);
        }
        if let Some(p) = self.promotions.get_mut(&old.promotion_id) {
            p.roster.remove(&roster_key(&old.student));
            p.touch();
        }
        if let Some(p) = self.promotions.get_mut(&new.promotion_id) {
            p.roster.insert(roster_key(&new.student));
            p.touch();
        }
    }

    fn remove_student(&mut self, id: i64) {
        let Some(state) = self.students.remove(&id) else {
            return;
        };
        if let Some(n) = &state.record.student.number {
            self.numbers.remove(n);
        }
        // The per-subject sums share the subjects' names: dropped first, so
        // the last grade of a subject releases its name.
        drop(state.sums);
        for g in state.grades {
            self.grade_owner.remove(&g.id);
            self.release(g);
        }
        if let Some(p) = self.promotions.get_mut(&state.record.promotion_id) {
            p.roster.remove(&roster_key(&state.record.student));
            p.touch();
        }
    }

    fn add_grade(&mut self, g: &Grade) {
        let stored = StoredGrade {
            id: g.id,
            subject: self.names.get(&g.subject),
            label: g.label.as_deref().map(|l| self.names.get(l)),
            value: g.value,
            coefficient: g.coefficient,
            published: g.published,
        };
        let Some(student) = self.students.get_mut(&g.student) else {
            tracing::error!(
                grade = g.id,
                student = g.student,
                "a grade of no known student"
            );
            return self.release(stored);
        };
        student.add(stored);
        let promotion = student.record.promotion_id;
        self.grade_owner.insert(g.id, g.student);
        self.touch(promotion);
    }

    fn remove_grade(&mut self, id: i64) {
        let Some(owner) = self.grade_owner.remove(&id) else {
            return;
        };
        let Some(student) = self.students.get_mut(&owner) else {
            return;
        };
        let removed = student.remove(id);
        let promotion = student.record.promotion_id;
        if let Some(g) = removed {
            self.release(g);
        }
        self.touch(promotion);
    }

    fn release(&mut self, g: StoredGrade) {
        self.names.release(g.subject);
        if let Some(l) = g.label {
            self.names.release(l);
        }
    }
}

fn no_promotion(name: &str) -> WireError {
    WireError::not_found(format!("no promotion named '{}'", name.escape_debug()))
}

fn no_student(id: i64) -> WireError {
    WireError::not_found(format!("no student with id {id}"))
}

fn no_grade(id: i64) -> WireError {
    WireError::not_found(format!("no grade with id {id}"))
}

impl View<'_> {
    /// The last change the view includes.
    pub fn seq(&self) -> i64 {
        self.0.seq
    }

    /// How many grades there are.
    pub fn grade_count(&self) -> usize {
        self.0.grade_owner.len()
    }

    /// A promotion by name.
    pub fn promotion(&self, name: &str) -> Result<&PromotionState, WireError> {
        self.0
            .by_name
            .get(name)
            .and_then(|id| self.0.promotions.get(id))
            .ok_or_else(|| no_promotion(name))
    }

    /// Every promotion, by name.
    pub fn promotions(&self) -> impl Iterator<Item = &PromotionState> {
        self.0
            .by_name
            .values()
            .filter_map(|id| self.0.promotions.get(id))
    }

    /// A promotion by id.
    pub fn promotion_by_id(&self, id: i64) -> Option<&PromotionState> {
        self.0.promotions.get(&id)
    }

    /// The id of a student's promotion.
    pub fn promotion_of_student(&self, student: i64) -> Option<i64> {
        self.0.students.get(&student).map(|s| s.record.promotion_id)
    }

    /// A promotion's id, by name.
    pub fn promotion_id(&self, name: &str) -> Result<i64, WireError> {
        self.0
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| no_promotion(name))
    }

    /// A student by id.
    pub fn student(&self, id: i64) -> Result<&StudentState, WireError> {
        self.0.students.get(&id).ok_or_else(|| no_student(id))
    }

    /// A grade by id.
    pub fn grade(&self, id: i64) -> Result<Grade, WireError> {
        self.0
            .grade_owner
            .get(&id)
            .and_then(|owner| self.0.students.get(owner))
            .and_then(|s| {
                let at = s.grades.binary_search_by_key(&id, |g| g.id).ok()?;
                Some(s.grades[at].to_grade(s.record.student.id))
            })
            .ok_or_else(|| no_grade(id))
    }

    /// The promotion's students, in name order.
    pub fn students_of<'v>(
        &'v self,
        promotion: &'v PromotionState,
    ) -> impl Iterator<Item = &'v StudentState> {
        promotion
            .student_ids()
            .filter_map(|id| self.0.students.get(&id))
    }

    /// The student with this number, if any.
    pub fn student_numbered(&self, number: &str) -> Option<&StudentState> {
        self.0
            .numbers
            .get(number)
            .and_then(|id| self.0.students.get(id))
    }

    /// The promotion's figures over the grades in `scope`, computed now if
    /// a change touched it since they were last computed. Concurrent
    /// readers wait for one computation rather than each doing their own.
    pub fn figures(&self, promotion: &PromotionState, scope: Scope) -> Arc<Figures> {
        let mut slot = guard(&promotion.figures[scope.index()]);
        if let Some(f) = &*slot {
            return f.clone();
        }
        let students: Vec<i64> = promotion.student_ids().collect();
        let summaries: Vec<Summary> = students
            .iter()
            .map(|id| {
                self.0
                    .students
                    .get(id)
                    .map_or_else(|| Tally::default().summary(), |s| s.summary(scope))
            })
            .collect();
        let averages: Vec<Option<Average>> = summaries.iter().map(|s| s.average).collect();
        let ranks = competition_ranks(&averages);
        let counted: Vec<Average> = averages.iter().flatten().copied().collect();
        let figures = Arc::new(Figures {
            position: students
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, i))
                .collect(),
            ranked: ranks.iter().flatten().count() as u32,
            incomplete: summaries.iter().filter(|s| s.incomplete).count() as u64,
            statistics: statistics(&counted),
            students,
            summaries,
            ranks,
        });
        *slot = Some(figures.clone());
        figures
    }

    /// Statistics per subject over the students' averages in it (over the
    /// grades in `scope`), by subject name; computed as [`View::figures`]
    /// is.
    pub fn subject_statistics(
        &self,
        promotion: &PromotionState,
        scope: Scope,
    ) -> Arc<SubjectStatistics> {
        let mut slot = guard(&promotion.subjects[scope.index()]);
        if let Some(s) = &*slot {
            return s.clone();
        }
        let mut per_subject: BTreeMap<&str, Vec<Average>> = BTreeMap::new();
        for student in self.students_of(promotion) {
            for (subject, tally) in &student.sums[scope.index()].subjects {
                let averages = per_subject.entry(subject).or_default();
                averages.extend(tally.summary().average);
            }
        }
        let stats = Arc::new(
            per_subject
                .into_iter()
                .map(|(subject, averages)| (subject.to_owned(), statistics(&averages)))
                .collect(),
        );
        *slot = Some(Arc::clone(&stats));
        stats
    }

    /// A promotion with its students (in name order) and all their grades
    /// (by student, then id), as an import plans against it.
    pub fn promotion_grades(&self, name: &str) -> Result<PromotionGrades, WireError> {
        let p = self.promotion(name)?;
        let students: Vec<&StudentState> = self.students_of(p).collect();
        Ok(PromotionGrades {
            promotion: p.promotion(),
            grades: students.iter().flat_map(|s| s.grades(Scope::All)).collect(),
            students: students.into_iter().map(|s| s.student().clone()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradebook_core::{student_average, subject_averages};
    use proptest::prelude::*;

    fn promotion(id: i64, name: &str) -> PromotionRecord {
        PromotionRecord {
            id,
            name: name.into(),
            year: None,
            description: None,
            created_by: Some(1),
            publication: gradebook_core::Publication::Immediate,
            locked: false,
        }
    }

    fn student(id: i64, promotion_id: i64, last: &str) -> StudentRecord {
        StudentRecord {
            promotion_id,
            student: Student {
                id,
                first_name: "A".into(),
                last_name: last.into(),
                number: Some(format!("N{id}")),
                email: None,
                promotion: if promotion_id == 1 { "P" } else { "Q" }.into(),
            },
        }
    }

    fn value(h: u16) -> GradeValue {
        match h {
            2001 => GradeValue::Abs,
            2002 => GradeValue::Exc,
            2003 => GradeValue::Att,
            h => GradeValue::Points(
                gradebook_core::Points::from_hundredths(i64::from(h)).expect("0..=2000"),
            ),
        }
    }

    fn grade(id: i64, student: i64, subject: &str, h: u16, c: u16) -> Grade {
        Grade {
            id,
            student,
            subject: subject.into(),
            value: value(h),
            coefficient: Coefficient::from_hundredths(i64::from(c)).expect("a coefficient"),
            label: None,
            published: true,
        }
    }

    fn batch(model: &Model, changes: Vec<Change>) {
        let seq = model.read().seq();
        let records: Vec<ChangeRecord> = (seq + 1..)
            .zip(changes)
            .map(|(seq, change)| ChangeRecord {
                seq,
                at: 0,
                by: "admin".into(),
                command: "test".into(),
                change,
            })
            .collect();
        model.apply(&records);
    }

    /// A model with promotions P (1) and Q (2) and students 1..=n in P.
    fn model(n: i64) -> Arc<Model> {
        let model = Model::new();
        model.load(Snapshot {
            seq: 0,
            promotions: vec![promotion(1, "P"), promotion(2, "Q")],
            grants: vec![],
            students: (1..=n).map(|i| student(i, 1, &format!("L{i}"))).collect(),
            grades: vec![],
        });
        model
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add {
            student: i64,
            subject: u8,
            h: u16,
            c: u16,
            published: bool,
        },
        Update {
            pick: usize,
            h: u16,
            subject: u8,
        },
        Delete {
            pick: usize,
        },
        Move {
            student: i64,
        },
        /// `grade.publish` or `grade.unpublish` of one grade.
        Publish {
            pick: usize,
            published: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1..=4i64, 0..3u8, 0..=2003u16, 1..=400u16, any::<bool>())
                .prop_map(|(student, subject, h, c, published)| Op::Add { student, subject, h, c, published }),
            2 => (any::<usize>(), 0..=2003u16, 0..3u8)
                .prop_map(|(pick, h, subject)| Op::Update { pick, h, subject }),
            1 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
            1 => (1..=4i64).prop_map(|student| Op::Move { student }),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, published)| Op::Publish { pick, published }),
        ]
    }

    proptest! {
        /// Whatever sequence of changes is applied, every figure the model
        /// serves equals the figure computed from scratch over the grades
        /// it holds, with `gradebook-core`'s own functions: over every
        /// grade for teachers, and for students over the published ones
        /// only, as if the others did not exist (protocol §9).
        #[test]
        fn the_running_figures_equal_a_computation_from_scratch(ops in prop::collection::vec(op(), 0..60)) {
            let model = model(4);
            let mut grades: BTreeMap<i64, Grade> = BTreeMap::new();
            let mut next = 1;
            let subjects = ["Maths", "Networks", "Physics"];
            for op in ops {
                let change = match op {
                    Op::Add { student, subject, h, c, published } => {
                        let g = Grade { published, ..grade(next, student, subjects[subject as usize], h, c) };
                        next += 1;
                        grades.insert(g.id, g.clone());
                        Change::Grade(Diff::added(g))
                    }
                    Op::Update { pick, h, subject } if !grades.is_empty() => {
                        let id = *grades.keys().nth(pick % grades.len()).expect("some grade");
                        let old = grades[&id].clone();
                        let mut new = old.clone();
                        new.value = value(h);
                        new.subject = subjects[subject as usize].into();
                        grades.insert(id, new.clone());
                        Change::Grade(Diff::updated(old, new))
                    }
                    Op::Publish { pick, published } if !grades.is_empty() => {
                        let id = *grades.keys().nth(pick % grades.len()).expect("some grade");
                        let old = grades[&id].clone();
                        let new = Grade { published, ..old.clone() };
                        grades.insert(id, new.clone());
                        Change::Grade(Diff::updated(old, new))
                    }
                    Op::Delete { pick } if !grades.is_empty() => {
                        let id = *grades.keys().nth(pick % grades.len()).expect("some grade");
                        let old = grades.remove(&id).expect("present");
                        Change::Grade(Diff::removed(old))
                    }
                    Op::Move { student: id } => {
                        let old = model.read().student(id).expect("exists").record.clone();
                        let mut new = old.clone();
                        new.promotion_id = 3 - old.promotion_id;
                        new.student.promotion = if new.promotion_id == 1 { "P" } else { "Q" }.into();
                        Change::Student(Diff::updated(old, new))
                    }
                    _ => continue,
                };
                batch(&model, vec![change]);
            }
            let view = model.read();
            for scope in [Scope::All, Scope::Published] {
                // The grades this scope's reader may know exist.
                let seen: Vec<&Grade> = grades.values().filter(|g| scope.sees(g.published)).collect();
                for name in ["P", "Q"] {
                    let p = view.promotion(name).expect("exists");
                    let figures = view.figures(p, scope);
                    let ids: Vec<i64> = p.student_ids().collect();
                    prop_assert_eq!(&figures.students, &ids);
                    let mut per_subject: BTreeMap<&str, Vec<Average>> = BTreeMap::new();
                    for (i, id) in ids.iter().enumerate() {
                        let theirs: Vec<&Grade> = seen.iter().copied().filter(|g| g.student == *id).collect();
                        let expected = student_average(theirs.iter().map(|g| (g.value, g.coefficient)));
                        prop_assert_eq!(&figures.summaries[i], &expected);
                        let s = view.student(*id).expect("exists");
                        prop_assert_eq!(s.summary(scope), expected);
                        prop_assert_eq!(s.grades(scope).collect::<Vec<_>>(), theirs.iter().map(|g| (*g).clone()).collect::<Vec<_>>());
                        let subjects = subject_averages(theirs.iter().map(|g| (g.subject.as_str(), g.value, g.coefficient)));
                        for sa in &subjects {
                            // A subject with only EXC/ATT grades is listed,
                            // with no average.
                            let averages = per_subject.entry(subjects_name(&sa.subject)).or_default();
                            averages.extend(sa.summary.average);
                        }
                        prop_assert_eq!(s.subject_averages(scope), subjects);
                        let values: Vec<_> = s.grade_values(scope).map(|(id, ..)| id).collect();
                        prop_assert_eq!(values, theirs.iter().map(|g| g.id).collect::<Vec<_>>());
                    }
                    let averages: Vec<Option<Average>> = figures.summaries.iter().map(|s| s.average).collect();
                    prop_assert_eq!(&figures.ranks, &competition_ranks(&averages));
                    let counted: Vec<Average> = averages.iter().flatten().copied().collect();
                    prop_assert_eq!(&figures.statistics, &statistics(&counted));
                    let expected: Vec<(String, Statistics)> = per_subject
                        .into_iter()
                        .map(|(subject, averages)| (subject.to_owned(), statistics(&averages)))
                        .collect();
                    prop_assert_eq!(&*view.subject_statistics(p, scope), &expected);
                }
            }
            for g in grades.values() {
                prop_assert_eq!(view.grade(g.id).expect("present"), g.clone());
            }
        }
    }

    /// The subject names of the test, as `&'static str`.
    fn subjects_name(s: &str) -> &'static str {
        ["Maths", "Networks", "Physics"]
            .into_iter()
            .find(|n| *n == s)
            .unwrap_or("?")
    }

    #[test]
    fn a_change_recomputes_its_promotions_figures_and_no_other() {
        let model = model(2);
        batch(
            &model,
            vec![Change::Grade(Diff::added(grade(1, 1, "M", 1200, 100)))],
        );
        let (p_before, q_before) = {
            let view = model.read();
            let p = view.figures(view.promotion("P").expect("P"), Scope::All);
            let q = view.figures(view.promotion("Q").expect("Q"), Scope::All);
            // Served again without a change: the same computation.
            assert!(Arc::ptr_eq(
                &p,
                &view.figures(view.promotion("P").expect("P"), Scope::All)
            ));
            (p, q)
        };
        assert_eq!(p_before.statistics.count, 1);
        batch(
            &model,
            vec![Change::Grade(Diff::added(grade(2, 2, "M", 800, 100)))],
        );
        let view = model.read();
        let p_after = view.figures(view.promotion("P").expect("P"), Scope::All);
        assert!(!Arc::ptr_eq(&p_before, &p_after));
        assert_eq!(p_after.statistics.count, 2);
        assert_eq!(p_after.of(1).map(|(_, r)| r), Some(Some(1)));
        assert!(Arc::ptr_eq(
            &q_before,
            &view.figures(view.promotion("Q").expect("Q"), Scope::All)
        ));
    }

    #[test]
    fn removals_cascade_and_names_are_released() {
        let model = model(2);
        batch(
            &model,
            vec![
                Change::Grant(Diff::added(GrantRecord {
                    promotion: 1,
                    user: 7,
                })),
                Change::Grade(Diff::added(grade(1, 1, "Rare subject", 1200, 100))),
            ],
        );
        assert!(model.read().promotion("P").expect("P").managed_by(7));
        batch(
            &model,
            vec![Change::User(Diff::removed(UserRecord {
                id: 7,
                username: "t".into(),
                role: gradebook_core::Role::Teacher,
                student: None,
            }))],
        );
        assert!(!model.read().promotion("P").expect("P").managed_by(7));
        let old = model.read().student(1).expect("1").record.clone();
        batch(&model, vec![Change::Student(Diff::removed(old))]);
        let view = model.read();
        assert!(view.grade(1).is_err());
        assert!(view.student_numbered("N1").is_none());
        assert_eq!(view.promotion("P").expect("P").promotion().students, 1);
        assert!(view.0.names.0.is_empty(), "{:?}", view.0.names);
    }
}
