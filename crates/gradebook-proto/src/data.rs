//! The objects that replies carry (spec §5). Clients may read replies into
//! these types; more fields may be added, never removed, so none of them
//! refuses unknown fields.

/// The values that the replies' fields hold.
pub use gradebook_core::{
    Changed, Coefficient, Grade, GradeValue, Promotion, Publication, Role, Student, User,
};
use serde::{Deserialize, Serialize};

use crate::Secret;

/// The reply of a command with nothing to return: `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Done {}

/// `watch` and `unwatch`: whether the connection is now watching, and the
/// change log's position (events after it follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watching {
    /// Whether events are sent.
    pub watching: bool,
    /// The last change-log entry before the live events.
    pub seq: i64,
}

/// An event message (protocol §9): no `id`, no `ok`; sent between replies
/// on a connection that watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened: `grade.published`, `grade.updated`, `grade.deleted`,
    /// `promotion.locked`… or `lagged`.
    pub event: String,
    /// The change-log entry it comes from (for `lagged`, the last one
    /// sent: watch again with `since` set to it).
    pub seq: i64,
    /// The grade or promotion, as its reader may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The server's name, `gradebook`.
    pub server: String,
    /// The server's version.
    pub version: String,
    /// The protocol version, 1.
    pub protocol: u32,
    /// The encodings the server speaks.
    pub encodings: Vec<String>,
}

/// `ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// Always true.
    pub pong: bool,
}

/// `auth.login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Login {
    /// The session token: send it in `token` on UDP, keep it secret.
    pub token: Secret,
    /// The user's role.
    pub role: Role,
    /// Seconds until the session expires (if used at least every 30 min).
    pub expires_in: u64,
}

/// `auth.whoami`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Whoami {
    /// The user's name.
    pub username: String,
    /// The user's role.
    pub role: Role,
    /// The linked student record, for a student.
    #[serde(default)]
    pub student: Option<i64>,
}

/// `user.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Users {
    /// The accounts, by name.
    pub users: Vec<User>,
}

/// `promotion.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotions {
    /// The promotions, by name.
    pub promotions: Vec<Promotion>,
}

/// `student.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Students {
    /// The students, by last then first name.
    pub students: Vec<Student>,
}

/// A student in `promotion.show`, with average and rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedStudent {
    /// The server-assigned id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institutional number.
    #[serde(default)]
    pub number: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// General average, null when nothing counts.
    pub average: Option<f64>,
    /// Competition rank (1, 2, 2, 4), null without an average.
    pub rank: Option<u32>,
    /// Some grade is pending (ATT).
    #[serde(default)]
    pub incomplete: bool,
}

/// `promotion.show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionShow {
    /// Its unique name.
    pub name: String,
    /// Its year, if given.
    #[serde(default)]
    pub year: Option<i64>,
    /// Its description, if given.
    #[serde(default)]
    pub description: Option<String>,
    /// When its new grades become visible.
    #[serde(default)]
    pub publication: Publication,
    /// Whether its students and grades are frozen.
    #[serde(default)]
    pub locked: bool,
    /// Its students by rank, then those without an average by name.
    pub students: Vec<RankedStudent>,
}

/// `promotion.average`: the mean of the students' averages and statistics
/// over the students that have one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionAverage {
    /// The promotion's name.
    pub name: String,
    /// Mean of the student averages; null when no student has one.
    pub average: Option<f64>,
    /// Students with an average.
    pub count: u64,
    /// Lowest student average.
    pub min: Option<f64>,
    /// Highest student average.
    pub max: Option<f64>,
    /// Median (linear interpolation, numpy's default).
    pub median: Option<f64>,
    /// First quartile.
    pub q1: Option<f64>,
    /// Third quartile.
    pub q3: Option<f64>,
    /// Population standard deviation.
    pub stddev: Option<f64>,
    /// 20 counts: bin k holds averages in [k, k+1), the last also 20.
    pub histogram: Vec<u32>,
    /// Students enrolled.
    pub students: u64,
    /// Students with a pending (ATT) grade.
    pub incomplete: u64,
}

/// One subject in `promotion.subjects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectStats {
    /// The subject.
    pub subject: String,
    /// Mean of the students' averages in this subject.
    pub average: Option<f64>,
    /// Lowest student average in this subject.
    pub min: Option<f64>,
    /// Highest student average in this subject.
    pub max: Option<f64>,
    /// Students with an average in this subject.
    pub count: u64,
}

/// `promotion.subjects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionSubjects {
    /// The promotion's name.
    pub name: String,
    /// Per subject, by name.
    pub subjects: Vec<SubjectStats>,
}

/// `grade.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grades {
    /// The grades, oldest first.
    pub grades: Vec<Grade>,
}

/// A student's average in one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectAverage {
    /// The subject.
    pub subject: String,
    /// The average, null when nothing counts.
    pub average: Option<f64>,
    /// The sum of the counted coefficients.
    pub coefficients: f64,
}

/// `student.show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentShow {
    /// The server-assigned id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institutional number.
    #[serde(default)]
    pub number: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// The promotion's name.
    pub promotion: String,
    /// All grades, oldest first.
    pub grades: Vec<Grade>,
    /// General average, null when nothing counts.
    pub average: Option<f64>,
    /// Some grade is pending (ATT).
    pub incomplete: bool,
    /// Per-subject averages, by subject.
    pub subjects: Vec<SubjectAverage>,
    /// Competition rank in the promotion, null without an average.
    pub rank: Option<u32>,
    /// How many students of the promotion are ranked.
    pub of: u32,
}

/// `student.average`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentAverage {
    /// The student's id.
    pub id: i64,
    /// General average, null when nothing counts.
    pub average: Option<f64>,
    /// How many grades counted.
    pub counted: u64,
    /// The sum of their coefficients.
    pub coefficients: f64,
    /// Some grade is pending (ATT).
    pub incomplete: bool,
}

/// One grade in `student.explain`, with how it counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainLine {
    /// The grade's id.
    pub grade: i64,
    /// The grade's subject.
    pub subject: String,
    /// The grade's value: a number or a mark.
    pub value: GradeValue,
    /// The grade's coefficient.
    pub coefficient: f64,
    /// Whether the grade enters the average (numbers and `ABS`).
    pub counted: bool,
    /// value × coefficient when counted (0 for `ABS`), else null.
    pub contribution: Option<f64>,
    /// Why and how it counted, e.g. `counted: 14.5 × 2 = 29`.
    pub reason: String,
}

/// `student.explain`: a student's average written out, grade by grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentExplain {
    /// Each grade, oldest first, with how it counted.
    pub lines: Vec<ExplainLine>,
    /// Σ(value × coefficient) over the counted grades, in points.
    pub weighted_sum: f64,
    /// Σ(coefficient) over the counted grades.
    pub coefficient_sum: f64,
    /// The average at full precision; null when nothing counts.
    pub average: Option<f64>,
    /// The average rounded to two decimals, as shown.
    pub rounded: Option<f64>,
    /// Some grade is pending (ATT).
    pub incomplete: bool,
    /// The computation, e.g. `(29 + 0 + 12) / (2 + 1 + 1) = 10.25`.
    pub formula: String,
    /// The student's id.
    pub id: i64,
}

/// One change of a grade in `audit.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The entry's id, increasing.
    pub id: i64,
    /// When, in ISO 8601 UTC (`2026-11-25T13:05:09Z`).
    pub at: String,
    /// Who made the change (a username).
    pub by: String,
    /// `grade.add`, `grade.update` or `grade.delete`; or `student.remove`
    /// or `promotion.delete` for a grade removed with its student or
    /// promotion.
    pub action: String,
    /// The grade's id.
    pub grade: i64,
    /// The student's id.
    pub student: i64,
    /// The grade before (null for an add).
    pub old: Option<Grade>,
    /// The grade after (null for a delete).
    pub new: Option<Grade>,
}

/// `audit.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntries {
    /// The changes, newest first.
    pub entries: Vec<AuditEntry>,
}

/// `audit.verify`: what a check of the change log's hash chain found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditVerify {
    /// Whether every entry checks out and none is missing.
    pub intact: bool,
    /// How many entries were read.
    pub entries: u64,
    /// The seq of the last entry that checks out (0: none).
    pub last_seq: i64,
    /// That entry's SHA-256, in hex: noted somewhere safe, it lets a later
    /// check prove that nothing up to it was rewritten.
    pub head: String,
    /// Where the chain breaks, when it does.
    #[serde(default)]
    pub problem: Option<ChainProblem>,
}

/// The first entry of the change log that does not check out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainProblem {
    /// Its seq.
    pub seq: i64,
    /// What is wrong, in words.
    pub reason: String,
}

/// `import.begin`: the import's id, and how each column of the file is read
/// (its field's name, or null when ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportBegun {
    /// The id to send lines to.
    pub import: i64,
    /// For each column of the file, the field it gives, or null.
    pub columns: Vec<Option<String>>,
}

/// `import.rows`: what the import holds so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReceived {
    /// The import's id.
    pub import: i64,
    /// Lines received so far.
    pub rows: u64,
    /// Bytes of cells received so far (the import's memory is bounded).
    pub bytes: u64,
}

/// `import.commit`: what the import did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Nothing was written: the import stays open.
    pub dry_run: bool,
    /// Lines received.
    pub lines: u64,
    /// Students or grades added (or that would be).
    pub added: u64,
    /// Lines whose student or grade is already there.
    pub present: u64,
    /// Lines with no grade yet (an empty value).
    pub empty: u64,
    /// Lines repeating an earlier line (a student read once).
    pub repeated: u64,
    /// Bad lines left out (with `skip_bad`).
    pub skipped: Vec<crate::LineError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradebook_core::Points;
    use serde_json::json;

    #[test]
    fn nothing_to_return_reads_from_any_object() {
        assert_eq!(
            serde_json::from_value::<Done>(json!({})).ok(),
            Some(Done {})
        );
        assert_eq!(
            serde_json::from_value::<Done>(json!({"added": 1})).ok(),
            Some(Done {})
        );
        assert_eq!(serde_json::to_value(Done {}).ok(), Some(json!({})));
    }

    #[test]
    fn the_explain_reply_reads_what_the_server_writes() {
        // The server sends the core's explanation with the student's id.
        let points = |x| GradeValue::Points(Points::from_f64(x).expect("a grade"));
        let coef = |x| Coefficient::from_f64(x).expect("a coefficient");
        let e = gradebook_core::explain([
            (1, "Maths", points(14.5), coef(2.0)),
            (2, "Maths", GradeValue::Abs, coef(1.0)),
            (3, "English", GradeValue::Att, coef(1.0)),
        ]);
        let mut sent = serde_json::to_value(&e).expect("serialises");
        if let Some(map) = sent.as_object_mut() {
            map.insert("id".into(), 7.into());
        }
        let read: StudentExplain = serde_json::from_value(sent).expect("reads");
        assert_eq!(read.id, 7);
        assert_eq!(read.lines.len(), 3);
        assert_eq!(read.lines[0].value, points(14.5));
        assert_eq!(read.lines[2].contribution, None);
        assert_eq!(read.weighted_sum, e.weighted_sum);
        assert_eq!(read.formula, e.formula);
        assert!(read.incomplete);
    }

    #[test]
    fn audit_entries_read_with_or_without_a_grade_before_and_after() {
        let grade = json!({"id": 2, "student": 1, "subject": "Maths", "value": "ABS",
                           "coefficient": 1.5, "label": null});
        let data = json!({"entries": [
            {"id": 9, "at": "2026-11-25T13:05:09Z", "by": "admin", "action": "grade.delete",
             "grade": 2, "student": 1, "old": grade, "new": null},
            {"id": 8, "at": "2026-11-25T13:05:08Z", "by": "admin", "action": "grade.add",
             "grade": 2, "student": 1, "old": null, "new": grade},
        ]});
        let read: AuditEntries = serde_json::from_value(data).expect("reads");
        assert_eq!(read.entries.len(), 2);
        assert_eq!(
            read.entries[0].old.as_ref().map(|g| g.value),
            Some(GradeValue::Abs)
        );
        assert!(read.entries[0].new.is_none());
        assert!(read.entries[1].old.is_none());
    }
}
