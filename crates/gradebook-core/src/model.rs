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
