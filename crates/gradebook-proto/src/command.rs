//! Every command of the protocol (spec §5), with its typed arguments and
//! the type of its reply.
//!
//! A request names its command in `cmd` and carries its arguments in `args`;
//! [`Command::parse`] turns the pair into one typed value, refusing unknown
//! commands (`unknown_command`) and unknown, missing or ill-typed arguments
//! (`bad_request`). Values are only *typed* here; their domain (a grade
//! within 0..20, a name without control characters) is checked by the
//! server with `gradebook-core`, so it can answer `invalid_value`.
//!
//! The client side sends a command as one of the [`call`] types, one per
//! command; each says, through [`Call`], what its reply's `data` holds. The
//! one table at the bottom of this file states every command's name,
//! arguments and reply type.

/// A grade value as `grade.add` and `grade.update` carry it.
pub use gradebook_core::GradeInput;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{Secret, WireError, data};

/// Deserialises a field that may be absent (`None`), null (`Some(None)`), or
/// set (`Some(Some(v))`), for updates that can clear an optional field.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

macro_rules! args {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }
    };
}

args!(
    /// Arguments of a command that takes none.
    NoArgs {}
);
args!(
    /// `hello`: optionally switch the connection's encoding.
    HelloArgs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
    }
);
args!(
    /// `auth.login`.
    LoginArgs { username: String, password: Secret }
);
args!(
    /// `user.create`.
    UserCreateArgs {
        username: String,
        password: Secret,
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        student: Option<i64>,
    }
);
args!(
    /// `user.delete`.
    UsernameArgs { username: String }
);
args!(
    /// `user.password`: a user changes their own (`old` required), or an
    /// admin sets anyone's (`username`).
    UserPasswordArgs {
        new: Secret,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    }
);
args!(
    /// `promotion.create`.
    PromotionCreateArgs {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        year: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        publication: Option<String>,
    }
);
args!(
    /// `promotion.update`: only the fields given change; `year` and
    /// `description` may be set to null to clear them.
    PromotionUpdateArgs {
        name: String,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        year: Option<Option<i64>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        description: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        publication: Option<String>,
    }
);
args!(
    /// `grade.publish` and `grade.unpublish`: a promotion's grades, all of
    /// them or those of one subject and/or label, or the grades `ids`.
    PublishArgs {
        promotion: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ids: Option<Vec<i64>>,
    }
);
args!(
    /// `watch`: live events about a promotion, a student, or everything
    /// the caller may read; with `since`, first the events after that seq.
    WatchArgs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        promotion: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        student: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
    }
);
args!(
    /// Commands that name one promotion.
    PromotionArgs { name: String }
);
args!(
    /// `promotion.delete`.
    PromotionDeleteArgs {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        force: Option<bool>,
    }
);
args!(
    /// `promotion.grant` and `promotion.revoke`.
    GrantArgs { name: String, username: String }
);
args!(
    /// `student.add`.
    StudentAddArgs {
        promotion: String,
        first_name: String,
        last_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    }
);
args!(
    /// `student.list`.
    StudentListArgs { promotion: String }
);
args!(
    /// `student.update`: only the fields given change; `number` and `email`
    /// may be set to null to clear them.
    StudentUpdateArgs {
        id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_name: Option<String>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        number: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        email: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        promotion: Option<String>,
    }
);
args!(
    /// Commands that name one student or one grade by id.
    IdArgs { id: i64 }
);
args!(
    /// `grade.add`.
    GradeAddArgs {
        student: i64,
        subject: String,
        value: GradeInput,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coefficient: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    }
);
args!(
    /// `grade.update`: only the fields given change; `label` may be null.
    GradeUpdateArgs {
        id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<GradeInput>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coefficient: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
        label: Option<Option<String>>,
    }
);
args!(
    /// `grade.list`.
    GradeListArgs { student: i64 }
);
args!(
    /// `audit.list`: entries for a promotion, a student, or all (admin).
    AuditListArgs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        promotion: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        student: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    }
);

args!(
    /// `import.begin`: opens an import of a file's lines into a promotion;
    /// `columns` is the file's header line, `ignore` the headers to skip.
    ImportBeginArgs {
        kind: String,
        promotion: String,
        columns: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ignore: Vec<String>,
    }
);

/// One line of an imported file: its number in the file and its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    /// The line number in the file.
    pub line: u64,
    /// The cells, in the order of the header line.
    pub cells: Vec<String>,
}

args!(
    /// `import.rows`: more lines for an open import.
    ImportRowsArgs {
        import: i64,
        rows: Vec<ImportRow>,
    }
);
args!(
    /// `import.commit`: checks every line and, unless `dry_run`, writes
    /// them in one transaction; with `skip_bad`, the good lines only.
    ImportCommitArgs {
        import: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dry_run: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip_bad: Option<bool>,
    }
);
args!(
    /// `import.abort`: drops an open import.
    ImportAbortArgs { import: i64 }
);

/// A command as a client sends it: what it turns into on the wire (a
/// [`Command`]), and the type its reply's `data` is read into.
///
/// Every [`call`] type is one, with the reply of its command (`call::GradeAdd`
/// replies a [`data::Grade`]); so is [`Command`] itself, whose reply type is
/// known only at run time: its data is read as the JSON value it is.
pub trait Call: Into<Command> {
    /// What the reply's `data` holds.
    type Reply: DeserializeOwned;
}

impl Call for Command {
    type Reply = Value;
}

macro_rules! commands {
    ($($(#[$meta:meta])* $wire:literal => $variant:ident($args:ty) -> $reply:ty),* $(,)?) => {
        /// One command with its arguments.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Command {
            $($(#[$meta])* $variant($args),)*
        }

        impl Command {
            /// Every command name, in the order of the spec.
            pub const NAMES: &'static [&'static str] = &[$($wire),*];

            /// Builds a command from its name and arguments (an object, or
            /// `None` when `args` was left out).
            pub fn parse(cmd: &str, args: Option<Value>) -> Result<Command, WireError> {
                match cmd {
                    $($wire => parse_args::<$args>(cmd, args).map(Command::$variant),)*
                    _ => Err(WireError::new(
                        crate::ErrorCode::UnknownCommand,
                        format!("unknown command '{}'", cmd.escape_debug()),
                    )),
                }
            }

            /// The command's name on the wire.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$variant(_) => $wire,)*
                }
            }

            /// The arguments as a JSON object, for sending.
            pub fn args(&self) -> Value {
                let v = match self {
                    $(Command::$variant(a) => serde_json::to_value(a),)*
                };
                // Serialising these plain structs cannot fail; an empty
                // object is the harmless answer if it ever did.
                v.unwrap_or_else(|_| Value::Object(Default::default()))
            }
        }

        /// One type per command, wrapping its arguments and naming, through
        /// [`Call`], the type of its reply: what a client sends.
        ///
        /// ```
        /// use gradebook_proto::command::{IdArgs, call};
        /// use gradebook_proto::{Call, Command, data};
        ///
        /// fn replies<C: Call<Reply = R>, R>(_: &C) {}
        ///
        /// let show = call::StudentShow(IdArgs { id: 12 });
        /// replies::<_, data::StudentShow>(&show);
        /// assert_eq!(call::StudentShow::NAME, "student.show");
        /// assert_eq!(Command::from(show).name(), "student.show");
        /// ```
        pub mod call {
            use super::*;

            $(
                $(#[$meta])*
                #[doc = ""]
                #[doc = concat!("`", $wire, "`; its reply is a [`", stringify!($reply), "`].")]
                #[derive(Debug, Clone, PartialEq)]
                pub struct $variant(pub $args);

                impl $variant {
                    /// The command's name on the wire.
                    pub const NAME: &'static str = $wire;
                }

                impl Call for $variant {
                    type Reply = $reply;
                }

                impl From<$variant> for Command {
                    fn from(call: $variant) -> Command {
                        Command::$variant(call.0)
                    }
                }
            )*
        }
    };
}

commands! {
    /// Greets the server; may switch the connection to MessagePack.
    "hello" => Hello(HelloArgs) -> data::Hello,
    /// Checks that the server answers.
    "ping" => Ping(NoArgs) -> data::Pong,
    /// Logs in.
    "auth.login" => Login(LoginArgs) -> data::Login,
    /// Revokes the session.
    "auth.logout" => Logout(NoArgs) -> data::Done,
    /// Who the session belongs to.
    "auth.whoami" => Whoami(NoArgs) -> data::Whoami,
    /// Creates an account.
    "user.create" => UserCreate(UserCreateArgs) -> data::User,
    /// Lists accounts.
    "user.list" => UserList(NoArgs) -> data::Users,
    /// Deletes an account.
    "user.delete" => UserDelete(UsernameArgs) -> data::Done,
    /// Changes a password.
    "user.password" => UserPassword(UserPasswordArgs) -> data::Done,
    /// Creates a promotion.
    "promotion.create" => PromotionCreate(PromotionCreateArgs) -> data::Promotion,
    /// Lists promotions.
    "promotion.list" => PromotionList(NoArgs) -> data::Promotions,
    /// A promotion with its students, averages and ranks.
    "promotion.show" => PromotionShow(PromotionArgs) -> data::PromotionShow,
    /// Deletes a promotion.
    "promotion.delete" => PromotionDelete(PromotionDeleteArgs) -> data::Done,
    /// Lets a teacher manage a promotion.
    "promotion.grant" => PromotionGrant(GrantArgs) -> data::Done,
    /// Takes a promotion back from a teacher.
    "promotion.revoke" => PromotionRevoke(GrantArgs) -> data::Done,
    /// Changes a promotion's year, description or publication mode.
    "promotion.update" => PromotionUpdate(PromotionUpdateArgs) -> data::Promotion,
    /// Freezes a promotion's students and grades.
    "promotion.lock" => PromotionLock(PromotionArgs) -> data::Promotion,
    /// Lets a locked promotion's students and grades change again.
    "promotion.unlock" => PromotionUnlock(PromotionArgs) -> data::Promotion,
    /// Makes grades visible to their students.
    "grade.publish" => GradePublish(PublishArgs) -> data::Changed,
    /// Hides grades from their students again.
    "grade.unpublish" => GradeUnpublish(PublishArgs) -> data::Changed,
    /// Starts live events on this connection.
    "watch" => Watch(WatchArgs) -> data::Watching,
    /// Stops them.
    "unwatch" => Unwatch(NoArgs) -> data::Watching,
    /// A promotion's average and statistics.
    "promotion.average" => PromotionAverage(PromotionArgs) -> data::PromotionAverage,
    /// Per-subject statistics of a promotion.
    "promotion.subjects" => PromotionSubjects(PromotionArgs) -> data::PromotionSubjects,
    /// Adds a student to a promotion.
    "student.add" => StudentAdd(StudentAddArgs) -> data::Student,
    /// Lists a promotion's students.
    "student.list" => StudentList(StudentListArgs) -> data::Students,
    /// Changes a student's identity or promotion.
    "student.update" => StudentUpdate(StudentUpdateArgs) -> data::Student,
    /// Removes a student and their grades.
    "student.remove" => StudentRemove(IdArgs) -> data::Done,
    /// A student with grades, averages and rank.
    "student.show" => StudentShow(IdArgs) -> data::StudentShow,
    /// A student's general average.
    "student.average" => StudentAverage(IdArgs) -> data::StudentAverage,
    /// How a student's average is computed.
    "student.explain" => StudentExplain(IdArgs) -> data::StudentExplain,
    /// Adds a grade.
    "grade.add" => GradeAdd(GradeAddArgs) -> data::Grade,
    /// Changes a grade.
    "grade.update" => GradeUpdate(GradeUpdateArgs) -> data::Grade,
    /// Deletes a grade.
    "grade.delete" => GradeDelete(IdArgs) -> data::Done,
    /// Lists a student's grades.
    "grade.list" => GradeList(GradeListArgs) -> data::Grades,
    /// Lists grade changes.
    "audit.list" => AuditList(AuditListArgs) -> data::AuditEntries,
    /// Checks the change log's hash chain.
    "audit.verify" => AuditVerify(NoArgs) -> data::AuditVerify,
    /// Opens an import of a file's lines.
    "import.begin" => ImportBegin(ImportBeginArgs) -> data::ImportBegun,
    /// Sends lines to an open import.
    "import.rows" => ImportRows(ImportRowsArgs) -> data::ImportReceived,
    /// Checks an import and writes it in one transaction.
    "import.commit" => ImportCommit(ImportCommitArgs) -> data::ImportReport,
    /// Drops an open import.
    "import.abort" => ImportAbort(ImportAbortArgs) -> data::Done,
}

fn parse_args<T: DeserializeOwned>(cmd: &str, args: Option<Value>) -> Result<T, WireError> {
    let args = match args {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(WireError::bad_request("args must be an object")),
    };
    serde_json::from_value(args).map_err(|e| WireError::bad_request(format!("{cmd}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn parses_typed_arguments() {
        let c = Command::parse(
            "promotion.create",
            Some(json!({"name": "RT2-2026", "year": 2026})),
        )
        .expect("valid");
        assert_eq!(
            c,
            Command::PromotionCreate(PromotionCreateArgs {
                name: "RT2-2026".into(),
                year: Some(2026),
                description: None,
                publication: None,
            })
        );
        assert_eq!(c.name(), "promotion.create");
    }

    #[test]
    fn missing_args_mean_an_empty_object() {
        assert_eq!(Command::parse("ping", None), Ok(Command::Ping(NoArgs {})));
        let e = Command::parse("promotion.show", None).expect_err("name is required");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("name"), "{}", e.message);
    }

    #[test]
    fn unknown_arguments_and_commands_are_refused() {
        let e = Command::parse("promotion.show", Some(json!({"nmae": "x"})))
            .expect_err("typo in an argument");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("nmae"), "{}", e.message);
        let e = Command::parse("ping", Some(json!({"x": 1}))).expect_err("ping takes nothing");
        assert_eq!(e.code, ErrorCode::BadRequest);
        let e = Command::parse("promotion.destroy", None).expect_err("no such command");
        assert_eq!(e.code, ErrorCode::UnknownCommand);
        let e = Command::parse("ping", Some(json!([1]))).expect_err("args is not an object");
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn ill_typed_arguments_are_bad_requests() {
        let e = Command::parse("student.show", Some(json!({"id": "12"}))).expect_err("string id");
        assert_eq!(e.code, ErrorCode::BadRequest);
        let e = Command::parse(
            "grade.add",
            Some(json!({"student": 1, "subject": "Maths", "value": true})),
        )
        .expect_err("boolean grade");
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn updates_tell_absent_from_null() {
        let c =
            Command::parse("student.update", Some(json!({"id": 1, "email": null}))).expect("valid");
        let Command::StudentUpdate(a) = c else {
            panic!("wrong command")
        };
        assert_eq!(a.email, Some(None));
        assert_eq!(a.number, None);
    }

    #[test]
    fn arguments_round_trip_through_json() {
        let c = Command::GradeAdd(GradeAddArgs {
            student: 3,
            subject: "Networks".into(),
            value: GradeInput::Number(14.5),
            coefficient: Some(2.0),
            label: None,
        });
        assert_eq!(Command::parse(c.name(), Some(c.args())), Ok(c));
    }

    #[test]
    fn passwords_do_not_appear_in_debug_output() {
        let c = Command::parse(
            "auth.login",
            Some(json!({"username": "admin", "password": "correct horse"})),
        )
        .expect("valid");
        assert!(!format!("{c:?}").contains("correct horse"));
    }
}
