//! The rules of a file import, as the server applies them (protocol:
//! `import.begin`, `import.rows`, `import.commit`): which columns a file
//! may have, how a cell is read, how a line finds its student, and what is
//! already there. Pure: the caller gives the file's lines and the
//! promotion as it is, and gets back what to add, what is already present,
//! and every bad line with its number.
//!
//! Clients only split files into cells (CSV, a spreadsheet's first sheet),
//! so every client imports by the same rules.

use std::collections::{HashMap, HashSet};
use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::{
    Coefficient, Grade, GradeValue, Name, NewGrade, NewStudent, Points, Student, ValueError,
    check_text,
};

/// The longest institutional number.
pub const NUMBER_MAX: usize = 32;
/// The longest e-mail address.
pub const EMAIL_MAX: usize = 254;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One student a line.
    Students,
    /// One grade a line, each naming its student.
    Grades,
}

impl Kind {
    /// Parses `students` or `grades`.
    pub fn parse(s: &str) -> Result<Kind, ValueError> {
        match s {
            "students" => Ok(Kind::Students),
            "grades" => Ok(Kind::Grades),
            other => Err(ValueError(format!(
                "unknown import kind '{}': students or grades",
                other.escape_debug()
            ))),
        }
    }
}

/// A column an import understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// The student's first name.
    FirstName,
    /// The student's last name.
    LastName,
    /// The institutional number.
    Number,
    /// The e-mail address.
    Email,
    /// The student's id (as an export writes it).
    Student,
    /// The grade's subject.
    Subject,
    /// The grade's value.
    Value,
    /// The grade's coefficient.
    Coefficient,
    /// The grade's label.
    Label,
}

impl Column {
    /// Every column, in the order they are listed to users.
    pub const ALL: [Column; 9] = [
        Column::Student,
        Column::LastName,
        Column::FirstName,
        Column::Number,
        Column::Email,
        Column::Subject,
        Column::Value,
        Column::Coefficient,
        Column::Label,
    ];

    /// The column's own name.
    pub fn name(self) -> &'static str {
        self.aliases()[0]
    }

    /// The headers that name the column, compared after [`header_key`]:
    /// English and French, with or without accents, spaces or dashes.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::FirstName => &[
                "first_name",
                "firstname",
                "first",
                "given_name",
                "forename",
                "prenom",
            ],
            Column::LastName => &[
                "last_name",
                "lastname",
                "last",
                "surname",
                "family_name",
                "nom",
                "nom_de_famille",
            ],
            Column::Number => &[
                "number",
                "student_number",
                "student_no",
                "no",
                "num",
                "numero",
                "numero_etudiant",
                "n°",
            ],
            Column::Email => &["email", "e_mail", "mail", "courriel", "adresse_mail"],
            Column::Student => &[
                "student",
                "student_id",
                "id_student",
                "etudiant",
                "id_etudiant",
            ],
            Column::Subject => &["subject", "matiere", "module", "course", "discipline"],
            Column::Value => &["value", "grade", "mark", "note", "score"],
            Column::Coefficient => &["coefficient", "coef", "coeff", "weight", "poids"],
            Column::Label => &["label", "evaluation", "exam", "assessment", "libelle"],
        }
    }

    /// Recognises a header.
    pub fn recognise(header: &str) -> Option<Column> {
        let key = header_key(header);
        Column::ALL
            .into_iter()
            .find(|c| c.aliases().contains(&key.as_str()))
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A header as it is compared: lower case, accents dropped, spaces, dashes
/// and dots as one `_`.
pub fn header_key(h: &str) -> String {
    let mut out = String::new();
    for c in h.trim().nfd().flat_map(char::to_lowercase) {
        if is_combining_mark(c) {
            continue;
        }
        let c = if matches!(c, ' ' | '-' | '.' | '_') {
            '_'
        } else {
            c
        };
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// The combining diacritical marks that NFD splits off Latin letters.
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}')
}

/// A name as lines are matched to students: NFC, case folded, trimmed
/// (LEFÈVRE, Lefèvre and a decomposed "Lefe\u{300}vre" are one name).
pub fn name_key(s: &str) -> String {
    s.trim().nfc().flat_map(char::to_lowercase).collect()
}

/// Which file column feeds which field.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    kind: Kind,
    /// For each file column, what it is (`None`: ignored).
    columns: Vec<Option<Column>>,
    /// For each file column, whether its header is blank: its cells must
    /// be empty (spreadsheets leave such columns after the last one).
    blank: Vec<bool>,
}

impl Layout {
    /// Reads a header line. Every header must be recognised or named in
    /// `ignore`: a column is never dropped silently. Required columns must
    /// be there, and no column may be given twice.
    pub fn new(kind: Kind, headers: &[String], ignore: &[String]) -> Result<Layout, ValueError> {
        let ignored: HashSet<String> = ignore.iter().map(|h| header_key(h)).collect();
        for name in ignore {
            if !headers.iter().any(|h| header_key(h) == header_key(name)) {
                return Err(ValueError(format!(
                    "no column '{}' to ignore (the header line has: {})",
                    name.escape_debug(),
                    headers.join(", ")
                )));
            }
        }
        let mut columns = Vec::with_capacity(headers.len());
        let blank: Vec<bool> = headers.iter().map(|h| h.trim().is_empty()).collect();
        let mut seen: HashMap<Column, usize> = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if blank[i] || ignored.contains(&header_key(h)) {
                columns.push(None);
                continue;
            }
            // Either kind takes every column: a student file may be an
            // export, one line per grade, whose grade columns it leaves.
            let column = Column::recognise(h).ok_or_else(|| unknown_column(h, i))?;
            if let Some(j) = seen.insert(column, i) {
                return Err(ValueError(format!(
                    "columns {} ('{}') and {} ('{}') both give {column}",
                    j + 1,
                    headers[j].escape_debug(),
                    i + 1,
                    h.escape_debug()
                )));
            }
            columns.push(Some(column));
        }
        let layout = Layout {
            kind,
            columns,
            blank,
        };
        layout.check_required(headers)?;
        Ok(layout)
    }

    fn has(&self, c: Column) -> bool {
        self.columns.contains(&Some(c))
    }

    fn check_required(&self, headers: &[String]) -> Result<(), ValueError> {
        let missing: Vec<&str> = match self.kind {
            Kind::Students => [Column::FirstName, Column::LastName]
                .into_iter()
                .filter(|c| !self.has(*c))
                .map(Column::name)
                .collect(),
            Kind::Grades => [Column::Subject, Column::Value]
                .into_iter()
                .filter(|c| !self.has(*c))
                .map(Column::name)
                .collect(),
        };
        if !missing.is_empty() {
            return Err(ValueError(format!(
                "missing column{} {} (the header line has: {})",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                headers.join(", ")
            )));
        }
        if self.kind == Kind::Grades
            && !(self.has(Column::Number)
                || self.has(Column::Student)
                || (self.has(Column::FirstName) && self.has(Column::LastName)))
        {
            return Err(ValueError(format!(
                "no column names the students: number, last_name and first_name, or student (the header line has: {})",
                headers.join(", ")
            )));
        }
        Ok(())
    }

    /// The columns as read: each file column's own name, or `None`.
    pub fn columns(&self) -> impl Iterator<Item = Option<&'static str>> + '_ {
        self.columns.iter().map(|c| c.map(Column::name))
    }

    /// The trimmed cell of `column` on `line`; empty when absent.
    fn get<'a>(&self, line: &'a Line, column: Column) -> &'a str {
        self.columns
            .iter()
            .position(|c| *c == Some(column))
            .and_then(|i| line.cells.get(i))
            .map_or("", |s| s.trim())
    }

    /// A line with more cells than there are columns, or text under an
    /// ignored blank header, is refused rather than read partly.
    fn check_width(&self, line: &Line) -> Result<(), String> {
        for (i, cell) in line.cells.iter().enumerate() {
            if cell.trim().is_empty() {
                continue;
            }
            match self.blank.get(i) {
                None => {
                    return Err(format!(
                        "{} cells, but the header line has {} columns",
                        line.cells.len(),
                        self.columns.len()
                    ));
                }
                Some(true) => {
                    return Err(format!(
                        "column {} has no header, but this line has '{}' in it",
                        i + 1,
                        cell.trim().escape_debug()
                    ));
                }
                Some(false) => {}
            }
        }
        Ok(())
    }
}

fn unknown_column(header: &str, index: usize) -> ValueError {
    let accepted: Vec<String> = Column::ALL
        .iter()
        .map(|c| {
            let aliases = c.aliases();
            let french: Vec<&str> = aliases
                .iter()
                .copied()
                .filter(|a| {
                    matches!(
                        *a,
                        "prenom"
                            | "nom"
                            | "numero"
                            | "courriel"
                            | "matiere"
                            | "note"
                            | "coef"
                            | "libelle"
                            | "etudiant"
                    )
                })
                .collect();
            if french.is_empty() {
                c.name().to_owned()
            } else {
                format!("{} ({})", c.name(), french.join(", "))
            }
        })
        .collect();
    ValueError(format!(
        "unknown column '{}' (column {}): the accepted columns are {}; to skip a column, ignore it by name",
        header.escape_debug(),
        index + 1,
        accepted.join(", ")
    ))
}

/// One line of a file: its number in the file, and its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The line number in the file (the header is usually line 1).
    pub line: u64,
    /// The cells, in the header's order.
    pub cells: Vec<String>,
}

/// A bad line and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// Its number in the file.
    pub line: u64,
    /// Why, in words.
    pub message: String,
}

/// What an import would do: the rows to add (with their line), and the
/// lines that add nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<T> {
    /// What to add, with the line each comes from.
    pub add: Vec<(u64, T)>,
    /// Lines whose student or grade is already there.
    pub present: u64,
    /// Lines with no grade yet (an empty value), or a student alone on a
    /// line of a grade file.
    pub empty: u64,
    /// Lines repeating an earlier line of the file (an export has one line
    /// per grade: its student is read once).
    pub repeated: u64,
    /// The bad lines.
    pub errors: Vec<LineError>,
}

impl<T> Default for Plan<T> {
    fn default() -> Self {
        Plan {
            add: Vec::new(),
            present: 0,
            empty: 0,
            repeated: 0,
            errors: Vec::new(),
        }
    }
}

/// Why a cell is not a decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDecimal {
    /// Not a number at all.
    NotANumber,
    /// A number with more than two decimals.
    TooPrecise,
}

/// Parses a decimal as people type it, exactly: `12.5`, `12,5`, `14`.
/// At most two decimals; no exponent, no thousands separator.
pub fn parse_hundredths(text: &str) -> Result<i64, NotDecimal> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, fraction) = match digits.find(['.', ',']) {
        Some(i) => (&digits[..i], &digits[i + 1..]),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || whole.len() > 12
    {
        return Err(NotDecimal::NotANumber);
    }
    if fraction.len() > 2 {
        return Err(NotDecimal::TooPrecise);
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| NotDecimal::NotANumber)?
    };
    let fraction: i64 = match fraction.len() {
        0 => 0,
        1 => {
            fraction
                .parse::<i64>()
                .map_err(|_| NotDecimal::NotANumber)?
                * 10
        }
        _ => fraction.parse().map_err(|_| NotDecimal::NotANumber)?,
    };
    let h = whole * 100 + fraction;
    Ok(if negative { -h } else { h })
}

/// A grade value as typed in a file: a number (point or comma) or a mark,
/// any case.
pub fn parse_grade(text: &str) -> Result<GradeValue, ValueError> {
    let t = text.trim();
    if let Some(mark) = GradeValue::parse_mark(&t.to_ascii_uppercase()) {
        return Ok(mark);
    }
    match parse_hundredths(t) {
        Ok(h) => Points::from_hundredths(h).map(GradeValue::Points),
        Err(NotDecimal::TooPrecise) => Err(ValueError(format!(
            "grade {} has more than 2 decimals",
            t.replace(',', ".")
        ))),
        Err(NotDecimal::NotANumber) => Err(ValueError(format!(
            "grade value '{}' is neither a number nor ABS, EXC or ATT",
            t.escape_debug()
        ))),
    }
}

/// A coefficient as typed in a file.
pub fn parse_coefficient(text: &str) -> Result<Coefficient, ValueError> {
    let t = text.trim();
    match parse_hundredths(t) {
        Ok(h) => Coefficient::from_hundredths(h),
        Err(NotDecimal::TooPrecise) => Err(ValueError(format!(
            "coefficient {} has more than 2 decimals",
            t.replace(',', ".")
        ))),
        Err(NotDecimal::NotANumber) => Err(ValueError(format!(
            "coefficient '{}' is not a number",
            t.escape_debug()
        ))),
    }
}

/// The rule for an institutional number: up to 32 characters, no control
/// characters (`student.add`, `student.update` and imports).
pub fn number(value: Option<&str>) -> Result<Option<String>, ValueError> {
    value
        .map(|n| check_text("number", n, 1, NUMBER_MAX).map(|()| n.to_owned()))
        .transpose()
}

/// The rule for an e-mail address: something@something without spaces,
/// up to 254 characters.
pub fn email(value: Option<&str>) -> Result<Option<String>, ValueError> {
    let Some(e) = value else {
        return Ok(None);
    };
    check_text("email", e, 1, EMAIL_MAX)?;
    let plausible = e.find('@').is_some_and(|i| i > 0 && i + 1 < e.len())
        && !e.chars().any(char::is_whitespace);
    if !plausible {
        return Err(ValueError(format!(
            "'{}' is not an e-mail address",
            e.escape_debug()
        )));
    }
    Ok(Some(e.to_owned()))
}

/// A student's fields by the server's rules: names as every name (NFC,
/// 1–64 characters, nothing invisible), then [`number`] and [`email`].
pub fn student_fields(
    first_name: &str,
    last_name: &str,
    number: Option<&str>,
    email: Option<&str>,
) -> Result<NewStudent, ValueError> {
    Ok(NewStudent {
        first_name: Name::parse("first_name", first_name)?.into_string(),
        last_name: Name::parse("last_name", last_name)?.into_string(),
        number: self::number(number)?,
        email: self::email(email)?,
    })
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The institutional numbers a student file gives, for the caller to find
/// which are taken in other promotions (numbers are unique across all).
pub fn numbers(layout: &Layout, lines: &[Line]) -> Vec<String> {
    let mut numbers: Vec<String> = lines
        .iter()
        .map(|l| layout.get(l, Column::Number))
        .filter(|n| !n.is_empty())
        .map(|n| n.nfc().collect())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// Plans a student import into a promotion whose students are `existing`;
/// `taken` holds the numbers of the file used by students of other
/// promotions. A line whose number, or else whose name, is already in the
/// promotion is present; a line repeating an earlier one is read once.
pub fn plan_students(
    layout: &Layout,
    lines: &[Line],
    existing: &[Student],
    taken: &HashSet<String>,
) -> Plan<NewStudent> {
    let mut plan = Plan::default();
    let by_number: HashMap<&str, &Student> = existing
        .iter()
        .filter_map(|s| s.number.as_deref().map(|n| (n, s)))
        .collect();
    let by_name: HashSet<(String, String)> = existing
        .iter()
        .map(|s| (name_key(&s.first_name), name_key(&s.last_name)))
        .collect();
    // The same student on several lines is one; the old id, when the file
    // has one, keeps homonyms apart.
    let mut seen: HashSet<(String, String, String, Option<String>)> = HashSet::new();
    let mut numbers: HashMap<String, u64> = HashMap::new();
    for line in lines {
        let parsed = layout.check_width(line).and_then(|()| {
            student_fields(
                layout.get(line, Column::FirstName),
                layout.get(line, Column::LastName),
                non_empty(layout.get(line, Column::Number)),
                non_empty(layout.get(line, Column::Email)),
            )
            .map_err(|e| e.0)
        });
        let student = match parsed {
            Ok(s) => s,
            Err(message) => {
                plan.errors.push(LineError {
                    line: line.line,
                    message,
                });
                continue;
            }
        };
        let names = (name_key(&student.first_name), name_key(&student.last_name));
        let key = (
            layout.get(line, Column::Student).to_owned(),
            names.0.clone(),
            names.1.clone(),
            student.number.clone(),
        );
        if !seen.insert(key) {
            plan.repeated += 1;
            continue;
        }
        if let Some(n) = &student.number {
            if let Some(earlier) = numbers.get(n) {
                plan.errors.push(LineError {
                    line: line.line,
                    message: format!("number {n} is already used on line {earlier}"),
                });
                continue;
            }
            numbers.insert(n.clone(), line.line);
            if let Some(s) = by_number.get(n.as_str()) {
                if (name_key(&s.first_name), name_key(&s.last_name)) == names {
                    plan.present += 1;
                } else {
                    plan.errors.push(LineError {
                        line: line.line,
                        message: format!(
                            "a student with number {n} already exists in this promotion: {} {} (id {})",
                            s.first_name, s.last_name, s.id
                        ),
                    });
                }
                continue;
            }
            if taken.contains(n) {
                plan.errors.push(LineError {
                    line: line.line,
                    message: format!(
                        "a student with number {n} already exists in another promotion"
                    ),
                });
                continue;
            }
        } else if by_name.contains(&names) {
            plan.present += 1;
            continue;
        }
        plan.add.push((line.line, student));
    }
    plan
}

/// A promotion's students, indexed once for every line of an import: by
/// number, by name (NFC, case folded), and by id.
struct Roster<'a> {
    promotion: &'a str,
    by_number: HashMap<&'a str, i64>,
    by_name: HashMap<(String, String), Vec<&'a Student>>,
    ids: HashSet<i64>,
}

impl<'a> Roster<'a> {
    fn new(promotion: &'a str, students: &'a [Student]) -> Self {
        let mut by_name: HashMap<(String, String), Vec<&Student>> = HashMap::new();
        for s in students {
            by_name
                .entry((name_key(&s.first_name), name_key(&s.last_name)))
                .or_default()
                .push(s);
        }
        Roster {
            promotion,
            by_number: students
                .iter()
                .filter_map(|s| s.number.as_deref().map(|n| (n, s.id)))
                .collect(),
            by_name,
            ids: students.iter().map(|s| s.id).collect(),
        }
    }

    /// The student a grade line names: by number, else by name, else by
    /// id; an error says why none (or more than one) was found.
    fn find(&self, layout: &Layout, line: &Line) -> Result<i64, String> {
        let promotion = self.promotion;
        let number = layout.get(line, Column::Number);
        if !number.is_empty() {
            return self
                .by_number
                .get(number)
                .copied()
                .ok_or_else(|| format!("no student with number {number} in {promotion}"));
        }
        let (first, last) = (
            layout.get(line, Column::FirstName),
            layout.get(line, Column::LastName),
        );
        if !first.is_empty() || !last.is_empty() {
            let found = self
                .by_name
                .get(&(name_key(first), name_key(last)))
                .map_or(&[][..], Vec::as_slice);
            return match found {
                [s] => Ok(s.id),
                [] => Err(format!("no student named {first} {last} in {promotion}")),
                many => {
                    let who: Vec<String> = many
                        .iter()
                        .map(|s| match &s.number {
                            Some(n) => {
                                format!(
                                    "{} {} (id {}, number {n})",
                                    s.first_name, s.last_name, s.id
                                )
                            }
                            None => {
                                format!("{} {} (id {}, no number)", s.first_name, s.last_name, s.id)
                            }
                        })
                        .collect();
                    Err(format!(
                        "{} students are named {first} {last} in {promotion}: {}; add a number or student column",
                        many.len(),
                        who.join(" and ")
                    ))
                }
            };
        }
        let id = layout.get(line, Column::Student);
        if !id.is_empty() {
            let id: i64 = id
                .parse()
                .map_err(|_| format!("student id '{}' is not a number", id.escape_debug()))?;
            return if self.ids.contains(&id) {
                Ok(id)
            } else {
                Err(format!("student {id} is not in {promotion}"))
            };
        }
        Err("no student on this line (number, names or student id)".into())
    }
}

/// What makes two grades the same for a re-import.
type GradeKey = (i64, String, Option<String>, i64, u16);

fn grade_key(
    student: i64,
    subject: &str,
    label: Option<&str>,
    value: GradeValue,
    c: Coefficient,
) -> GradeKey {
    (
        student,
        name_key(subject),
        label.map(name_key),
        value.to_code(),
        c.hundredths(),
    )
}

/// Plans a grade import into `promotion`, whose students and grades are
/// given. A line identical to a grade already there (student, subject,
/// label, value, coefficient) is present, each existing grade matching one
/// line; an empty value is a grade not given yet.
pub fn plan_grades(
    layout: &Layout,
    lines: &[Line],
    promotion: &str,
    students: &[Student],
    grades: &[Grade],
) -> Plan<NewGrade> {
    let mut plan = Plan::default();
    let roster = Roster::new(promotion, students);
    let mut existing: HashMap<GradeKey, u32> = HashMap::new();
    for g in grades {
        *existing
            .entry(grade_key(
                g.student,
                &g.subject,
                g.label.as_deref(),
                g.value,
                g.coefficient,
            ))
            .or_default() += 1;
    }
    for line in lines {
        let (subject, value) = (
            layout.get(line, Column::Subject),
            layout.get(line, Column::Value),
        );
        let parsed = (|| -> Result<Option<NewGrade>, String> {
            layout.check_width(line)?;
            let student = roster.find(layout, line)?;
            if value.is_empty() {
                // No grade yet (or a student alone on its line).
                return Ok(None);
            }
            let subject = Name::parse("subject", subject).map_err(|e| e.0)?;
            let value = parse_grade(value).map_err(|e| e.0)?;
            let coefficient = match layout.get(line, Column::Coefficient) {
                "" => Coefficient::default(),
                c => parse_coefficient(c).map_err(|e| e.0)?,
            };
            let label = match layout.get(line, Column::Label) {
                "" => None,
                l => Some(Name::parse("label", l).map_err(|e| e.0)?.into_string()),
            };
            Ok(Some(NewGrade {
                student,
                subject: subject.into_string(),
                value,
                coefficient,
                label,
            }))
        })();
        match parsed {
            Ok(None) => plan.empty += 1,
            Ok(Some(g)) => {
                let key = grade_key(
                    g.student,
                    &g.subject,
                    g.label.as_deref(),
                    g.value,
                    g.coefficient,
                );
                match existing.get_mut(&key) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        plan.present += 1;
                    }
                    _ => plan.add.push((line.line, g)),
                }
            }
            Err(message) => plan.errors.push(LineError {
                line: line.line,
                message,
            }),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn line(n: u64, cells: &[&str]) -> Line {
        Line {
            line: n,
            cells: strings(cells),
        }
    }

    fn student(id: i64, first: &str, last: &str, number: Option<&str>) -> Student {
        Student {
            id,
            first_name: first.into(),
            last_name: last.into(),
            number: number.map(Into::into),
            email: None,
            promotion: "P".into(),
        }
    }

    #[test]
    fn headers_are_recognised_in_any_form() {
        for h in ["Prénom", "PRENOM", "first-name", " First Name "] {
            assert_eq!(Column::recognise(h), Some(Column::FirstName), "{h}");
        }
        assert_eq!(Column::recognise("Matière"), Some(Column::Subject));
        assert_eq!(Column::recognise("N°"), Some(Column::Number));
        assert_eq!(Column::recognise("Coefficient UE"), None);
    }

    #[test]
    fn an_unknown_column_is_an_error_listing_the_accepted_ones() {
        let headers = strings(&["Nom", "Prénom", "Matière", "Note", "Coefficient UE"]);
        let e = Layout::new(Kind::Grades, &headers, &[]).expect_err("unknown column");
        assert!(e.0.contains("'Coefficient UE' (column 5)"), "{}", e.0);
        assert!(e.0.contains("coefficient (coef)"), "{}", e.0);
        let layout = Layout::new(Kind::Grades, &headers, &strings(&["coefficient ue"]))
            .expect("ignored by name");
        assert_eq!(
            layout.columns().collect::<Vec<_>>(),
            [
                Some("last_name"),
                Some("first_name"),
                Some("subject"),
                Some("value"),
                None
            ]
        );
        let e = Layout::new(Kind::Grades, &headers, &strings(&["Coef UE"])).expect_err("typo");
        assert!(e.0.contains("no column 'Coef UE' to ignore"), "{}", e.0);
    }

    #[test]
    fn required_and_repeated_columns_are_refused() {
        let e = Layout::new(Kind::Students, &strings(&["nom"]), &[]).expect_err("no first name");
        assert!(e.0.contains("missing column first_name"), "{}", e.0);
        let e = Layout::new(
            Kind::Students,
            &strings(&["nom", "prénom", "last name"]),
            &[],
        )
        .expect_err("twice");
        assert!(e.0.contains("both give last_name"), "{}", e.0);
        let e = Layout::new(Kind::Grades, &strings(&["subject", "value"]), &[])
            .expect_err("no student column");
        assert!(e.0.contains("no column names the students"), "{}", e.0);
    }

    #[test]
    fn decimals_are_read_exactly() {
        assert_eq!(parse_hundredths("12.5"), Ok(1250));
        assert_eq!(parse_hundredths("12,25"), Ok(1225));
        assert_eq!(parse_hundredths("14"), Ok(1400));
        assert_eq!(parse_hundredths(",5"), Ok(50));
        assert_eq!(parse_hundredths("-1"), Ok(-100));
        assert_eq!(parse_hundredths("12.255"), Err(NotDecimal::TooPrecise));
        for bad in ["1e3", "1.234,5", "", ".", "12 5", "inf", "0x10", "5,2S"] {
            assert_eq!(parse_hundredths(bad), Err(NotDecimal::NotANumber), "{bad}");
        }
        assert_eq!(
            parse_grade("12,345").map_err(|e| e.0),
            Err("grade 12.345 has more than 2 decimals".to_owned())
        );
        assert_eq!(parse_grade("abs"), Ok(GradeValue::Abs));
        assert!(parse_grade("21").is_err());
        assert!(parse_coefficient("0").is_err());
    }

    #[test]
    fn names_match_after_nfc_and_case_folding_and_ambiguity_names_both() {
        let layout = Layout::new(
            Kind::Grades,
            &strings(&["nom", "prénom", "matière", "note"]),
            &[],
        )
        .expect("layout");
        let students = [
            student(1, "Élodie", "Lefèvre", None),
            student(2, "Alice", "Martin", Some("22001")),
            student(3, "Alice", "Martin", None),
        ];
        let lines = [
            line(2, &["LEFÈVRE", "e\u{301}lodie", "Maths", "12,5"]),
            line(3, &["Martin", "Alice", "Maths", "10"]),
            line(4, &["Nobody", "X", "Maths", "10"]),
            line(5, &["Lefèvre", "Élodie", "Maths", ""]),
        ];
        let plan = plan_grades(&layout, &lines, "P", &students, &[]);
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.add[0].1.student, 1);
        assert_eq!(plan.empty, 1);
        assert_eq!(plan.errors.len(), 2);
        assert_eq!(plan.errors[0].line, 3);
        assert!(
            plan.errors[0].message.contains("id 2, number 22001"),
            "{:?}",
            plan.errors
        );
        assert!(
            plan.errors[0].message.contains("id 3, no number"),
            "{:?}",
            plan.errors
        );
        assert_eq!(plan.errors[1].line, 4);
    }

    #[test]
    fn a_second_import_of_the_same_file_adds_nothing() {
        let layout = Layout::new(
            Kind::Grades,
            &strings(&["student", "subject", "value", "coefficient", "label"]),
            &[],
        )
        .expect("layout");
        let students = [student(7, "A", "B", None)];
        let lines = [
            line(2, &["7", "Maths", "12", "2", "Midterm"]),
            line(3, &["7", "Maths", "12", "2", "Midterm"]),
            line(4, &["7", "Physics", "ABS", "", ""]),
        ];
        let first = plan_grades(&layout, &lines, "P", &students, &[]);
        assert_eq!(first.add.len(), 3, "two identical grades are two grades");
        let grades: Vec<Grade> = first
            .add
            .iter()
            .enumerate()
            .map(|(i, (_, g))| Grade {
                id: i as i64,
                student: g.student,
                subject: g.subject.clone(),
                value: g.value,
                coefficient: g.coefficient,
                label: g.label.clone(),
                published: true,
            })
            .collect();
        let again = plan_grades(&layout, &lines, "P", &students, &grades);
        assert!(again.add.is_empty(), "{again:?}");
        assert_eq!(again.present, 3);
    }

    #[test]
    fn students_already_there_are_present_and_repeats_read_once() {
        let layout = Layout::new(
            Kind::Students,
            &strings(&["last_name", "first_name", "number", "subject", "value"]),
            &[],
        )
        .expect("layout");
        let existing = [
            student(1, "Ana", "Old", Some("1")),
            student(2, "Bo", "Same", None),
        ];
        let lines = [
            line(2, &["Old", "Ana", "1", "Maths", "12"]),
            line(3, &["SAME", "bo", "", "", ""]),
            line(4, &["New", "Cy", "3", "Maths", "12"]),
            line(5, &["New", "Cy", "3", "Physics", "14"]),
            line(6, &["Other", "Di", "1", "", ""]),
            line(7, &["Dup", "Ed", "3", "", ""]),
        ];
        let taken = HashSet::from(["9".to_owned()]);
        let mut lines = lines.to_vec();
        lines.push(line(8, &["Else", "Fa", "9", "", ""]));
        let plan = plan_students(&layout, &lines, &existing, &taken);
        assert_eq!(plan.present, 2);
        assert_eq!(plan.repeated, 1);
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.add[0].0, 4);
        let lines: Vec<u64> = plan.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [6, 7, 8], "{:?}", plan.errors);
        assert!(plan.errors[2].message.contains("another promotion"));
    }

    #[test]
    fn extra_cells_are_refused_not_dropped() {
        let layout =
            Layout::new(Kind::Students, &strings(&["nom", "prénom"]), &[]).expect("layout");
        let plan = plan_students(
            &layout,
            &[line(2, &["A", "B", "surprise"])],
            &[],
            &HashSet::new(),
        );
        assert_eq!(plan.errors.len(), 1, "{plan:?}");
        assert!(plan.errors[0].message.contains("3 cells"));
    }
}
