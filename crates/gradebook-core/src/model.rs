//! The entities that the store keeps and replies carry: promotions,
//! students, grades, users. Their fields are already validated values.

use serde::{Deserialize, Serialize};

use crate::{Coefficient, GradeValue, Role};

/// A promotion (cohort).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// Its unique name.
    pub name: String,
    /// Its year, if given.
    #[serde(default)]
    pub year: Option<i64>,
    /// Its description, if given.
    #[serde(default)]
    pub description: Option<String>,
    /// How many students it has.
    pub students: u64,
    /// When its new grades become visible to their students.
    #[serde(default)]
    pub publication: Publication,
    /// Whether its students and grades are frozen (protocol §9).
    #[serde(default)]
    pub locked: bool,
}

impl Promotion {
    /// A new promotion named `name`: no year, no description, no student,
    /// published immediately, unlocked.
    pub fn new(name: impl Into<String>) -> Self {
        Promotion {
            name: name.into(),
            year: None,
            description: None,
            students: 0,
            publication: Publication::default(),
            locked: false,
        }
    }
}

/// When a promotion's new grades become visible to their students
/// (protocol §9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Publication {
    /// As soon as they are written.
    #[default]
    Immediate,
    /// Once a teacher publishes them.
    Manual,
}

impl Publication {
    /// The mode as the wire and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Publication::Immediate => "immediate",
            Publication::Manual => "manual",
        }
    }

    /// Whether a grade written now is visible at once.
    pub fn publishes_new_grades(self) -> bool {
        self == Publication::Immediate
    }
}

impl std::str::FromStr for Publication {
    type Err = crate::ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "immediate" => Ok(Publication::Immediate),
            "manual" => Ok(Publication::Manual),
            other => Err(crate::ValueError(format!(
                "publication must be \"immediate\" or \"manual\", not '{}'",
                other.escape_debug()
            ))),
        }
    }
}

impl std::fmt::Display for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Student {
    /// The server-assigned id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institutional number, unique when given.
    #[serde(default)]
    pub number: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// The promotion's name.
    pub promotion: String,
}

/// A grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// The server-assigned id.
    pub id: i64,
    /// The student's id.
    pub student: i64,
    /// The subject.
    pub subject: String,
    /// A number from 0 to 20, or `ABS`, `EXC`, `ATT`.
    pub value: GradeValue,
    /// The coefficient, 0 < c ≤ 100.
    pub coefficient: Coefficient,
    /// A label such as "Midterm".
    #[serde(default)]
    pub label: Option<String>,
    /// Whether its student may see it (protocol §9). Entries of the change
    /// log written before publication existed lack it: they were visible.
    #[serde(default = "visible")]
    pub published: bool,
}

fn visible() -> bool {
    true
}

/// What `grade.publish` and `grade.unpublish` reply: how many grades
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    /// Grades whose `published` flag changed.
    pub changed: u64,
}

/// An account, as shown to clients (never a password or its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The login name.
    pub username: String,
    /// The role.
    pub role: Role,
    /// The linked student record, for a student.
    #[serde(default)]
    pub student: Option<i64>,
}

/// A student to add.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NewStudent {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institutional number.
    pub number: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// A grade to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGrade {
    /// The student's id.
    pub student: i64,
    /// The subject.
    pub subject: String,
    /// The value.
    pub value: GradeValue,
    /// The coefficient.
    pub coefficient: Coefficient,
    /// The label.
    pub label: Option<String>,
}
