//! One description per command: who may run it, and what running it may
//! change. One exhaustive `match`, no `_ =>`: a new command does not
//! compile until it says all of it, so no fact about it can be left to a
//! silent fall-through somewhere else (a stale permission decision is a
//! security bug waiting).
//!
//! What a command targets is named here ([`Target`]); finding the
//! promotion behind a student or a grade needs the data, and is done
//! beside the one permission check, in `dispatch`.

use gradebook_core::Role;
use gradebook_proto::Command;

use Access::{Allow, Deny, ManagedPromotion as Managed, OwnPromotion, OwnStudent, Public};

/// What a role may do with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session needed (`hello`, `ping`, `auth.login`).
    Public,
    /// Any logged-in user of this role.
    Allow,
    /// Only on a promotion the teacher created or was granted.
    ManagedPromotion,
    /// Only on the student's own promotion.
    OwnPromotion,
    /// Only on the student's own record.
    OwnStudent,
    /// Never.
    Deny,
}

/// What a command is about, for the scoped rules (a teacher's managed
/// promotions, a student's own promotion or record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Nothing in particular: scoped rules refuse it.
    Nothing,
    /// A promotion, by name.
    Promotion(&'a str),
    /// A student, by id (their promotion is the target's).
    Student(i64),
    /// A grade, by id (its student's promotion is the target's).
    Grade(i64),
    /// A student moved to another promotion (or not): both count.
    Move {
        /// The student.
        student: i64,
        /// The promotion they move to.
        to: Option<&'a str>,
    },
    /// An audit query: the promotion and the student it names, if any.
    Audit {
        /// The promotion named.
        promotion: Option<&'a str>,
        /// The student named.
        student: Option<i64>,
    },
    /// The session's open import, by id (its promotion is the target's).
    Import(i64),
    /// A watch: the promotion and the student it names, if any (a teacher
    /// must name one they manage, a student themselves).
    Watch {
        /// The promotion named.
        promotion: Option<&'a str>,
        /// The student named.
        student: Option<i64>,
    },
}

/// What the server knows of a command before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The rule for an admin, a teacher and a student.
    pub access: [Access; 3],
    /// What the scoped rules are checked against.
    pub target: Target<'a>,
    /// Whether it writes to the store for its caller, so that over UDP its
    /// request is recorded with the change and never run twice.
    pub udp_write: bool,
    /// How it runs among the requests pipelined on one connection.
    pub flow: Flow,
}

/// How a command runs among the requests pipelined on one connection.
/// Whatever the flow, it behaves as if each request ran after the one
/// before had finished, and replies keep the requests' order; the flows
/// only let writes share commits.
///
/// A write that starts while earlier writes of its connection still wait
/// for their commit checks its permission against the data without them.
/// That is sound because those earlier writes only add ([`Flow::Ahead`]):
/// they can make a check fail that would pass after them (the write is
/// then run again once they are done), never pass one that would fail.
/// The backend runs queued writes in order, so its own checks see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Starts once everything before it is done; what comes after waits for
    /// it. Reads (they must see the writes before them), sessions, imports.
    Alone,
    /// A write that only adds or changes data: it may start while earlier
    /// `Ahead` writes wait for their commit.
    Ahead,
    /// A write that can take access away or make an id or a name point to
    /// something else: it may start behind `Ahead` writes, but what comes
    /// after it waits until it is done.
    Last,
}

impl Facts<'_> {
    /// The rule for `role`.
    pub fn access(&self, role: Role) -> Access {
        self.access[match role {
            Role::Admin => 0,
            Role::Teacher => 1,
            Role::Student => 2,
        }]
    }

    /// Whether the command needs no session.
    pub fn is_public(&self) -> bool {
        self.access == [Public; 3]
    }
}

/// A command that reads only.
const fn read(access: [Access; 3], target: Target<'_>) -> Facts<'_> {
    Facts {
        access,
        target,
        udp_write: false,
        flow: Flow::Alone,
    }
}

/// A write that only adds or changes data: remembered permissions stay.
const fn write(access: [Access; 3], target: Target<'_>) -> Facts<'_> {
    Facts {
        access,
        target,
        udp_write: true,
        flow: Flow::Ahead,
    }
}

/// A write that can take access away or make an id name something else.
const fn revoking(access: [Access; 3], target: Target<'_>) -> Facts<'_> {
    Facts {
        access,
        target,
        udp_write: true,
        flow: Flow::Last,
    }
}

/// Everything known about `command`.
pub fn facts(command: &Command) -> Facts<'_> {
    use Command as C;
    use Target::{Grade, Nothing, Promotion, Student};
    match command {
        C::Hello(_) | C::Ping(_) | C::Login(_) => read([Public; 3], Nothing),
        // Sessions: recorded over UDP (a retried logout gets its ok), but
        // nothing a read shows changes.
        C::Logout(_) => Facts {
            udp_write: true,
            ..read([Allow; 3], Nothing)
        },
        C::Whoami(_) => read([Allow; 3], Nothing),
        // Accounts change who is who: never pipelined.
        C::UserCreate(_) => Facts {
            flow: Flow::Alone,
            ..revoking([Allow, Deny, Deny], Nothing)
        },
        C::UserList(_) => read([Allow, Deny, Deny], Nothing),
        C::UserDelete(_) => Facts {
            flow: Flow::Alone,
            ..revoking([Allow, Deny, Deny], Nothing)
        },
        // Own password for everyone; the handler keeps `username` for
        // admins.
        C::UserPassword(_) => Facts {
            udp_write: true,
            ..read([Allow; 3], Nothing)
        },
        C::PromotionCreate(_) => write([Allow, Allow, Deny], Nothing),
        // Teachers and students see only their own promotions in the list.
        C::PromotionList(_) => read([Allow; 3], Nothing),
        C::PromotionShow(a) => read([Allow, Managed, Deny], Promotion(&a.name)),
        C::PromotionDelete(a) => revoking([Allow, Managed, Deny], Promotion(&a.name)),
        C::PromotionGrant(a) | C::PromotionRevoke(a) => {
            revoking([Allow, Deny, Deny], Promotion(&a.name))
        }
        C::PromotionUpdate(a) => write([Allow, Managed, Deny], Promotion(&a.name)),
        // A teacher of the promotion may lock it; only an admin unlocks
        // (protocol §9). Locked promotions refuse changes in the store,
        // in the order writes commit.
        C::PromotionLock(a) => write([Allow, Managed, Deny], Promotion(&a.name)),
        C::PromotionUnlock(a) => write([Allow, Deny, Deny], Promotion(&a.name)),
        C::GradePublish(a) | C::GradeUnpublish(a) => {
            write([Allow, Managed, Deny], Promotion(&a.promotion))
        }
        C::PromotionAverage(a) | C::PromotionSubjects(a) => {
            read([Allow, Managed, OwnPromotion], Promotion(&a.name))
        }
        C::StudentAdd(a) => write([Allow, Managed, Deny], Promotion(&a.promotion)),
        C::StudentList(a) => read([Allow, Managed, Deny], Promotion(&a.promotion)),
        // A move between promotions changes who manages the student.
        C::StudentUpdate(a) => revoking(
            [Allow, Managed, Deny],
            Target::Move {
                student: a.id,
                to: a.promotion.as_deref(),
            },
        ),
        C::StudentRemove(a) => revoking([Allow, Managed, Deny], Student(a.id)),
        C::StudentShow(a) | C::StudentAverage(a) | C::StudentExplain(a) => {
            read([Allow, Managed, OwnStudent], Student(a.id))
        }
        C::GradeAdd(a) => write([Allow, Managed, Deny], Student(a.student)),
        C::GradeUpdate(a) => write([Allow, Managed, Deny], Grade(a.id)),
        C::GradeDelete(a) => revoking([Allow, Managed, Deny], Grade(a.id)),
        C::GradeList(a) => read([Allow, Managed, OwnStudent], Student(a.student)),
        C::AuditList(a) => read(
            [Allow, Managed, Deny],
            Target::Audit {
                promotion: a.promotion.as_deref(),
                student: a.student,
            },
        ),
        // Events: an admin may watch everything; a teacher names a
        // promotion or student they manage, a student themselves. Each
        // event is filtered for the watcher again when it is sent.
        C::Watch(a) => read(
            [Allow, Managed, OwnStudent],
            Target::Watch {
                promotion: a.promotion.as_deref(),
                student: a.student,
            },
        ),
        C::Unwatch(_) => read([Allow; 3], Nothing),
        // The whole log, every promotion's: the admin's.
        C::AuditVerify(_) => read([Allow, Deny, Deny], Nothing),
        // Imports hold their lines in memory until the commit writes them
        // all; they run over TCP only, so nothing is recorded for UDP.
        C::ImportBegin(a) => read([Allow, Managed, Deny], Promotion(&a.promotion)),
        // Lines go to the session's own import, opened on a managed
        // promotion; the commit checks that promotion again.
        C::ImportRows(a) => read([Allow, Allow, Deny], Target::Import(a.import)),
        C::ImportAbort(a) => read([Allow, Allow, Deny], Target::Import(a.import)),
        C::ImportCommit(a) => Facts {
            udp_write: false,
            flow: Flow::Alone,
            ..write([Allow, Managed, Deny], Target::Import(a.import))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn udp_writes_are_the_commands_that_write_for_their_caller() {
        // Stated here by name, apart from the description: a command that
        // writes but is not recorded could run twice over UDP. (Imports
        // write, but only over TCP: over UDP they are refused before
        // anything runs.)
        let writes = [
            "auth.logout",
            "user.create",
            "user.delete",
            "user.password",
            "promotion.create",
            "promotion.delete",
            "promotion.grant",
            "promotion.revoke",
            "promotion.update",
            "promotion.lock",
            "promotion.unlock",
            "grade.publish",
            "grade.unpublish",
            "student.add",
            "student.update",
            "student.remove",
            "grade.add",
            "grade.update",
            "grade.delete",
        ];
        for name in Command::NAMES {
            assert_eq!(
                facts(&sample(name)).udp_write,
                writes.contains(name),
                "{name}"
            );
        }
    }

    #[test]
    fn only_writes_that_add_let_later_writes_start_before_their_commit() {
        // Stated by name: a write that can take access away (or make an
        // id name something else) must not let a later write check its
        // permission against the data without it.
        let ahead = [
            "promotion.create",
            "promotion.update",
            "promotion.lock",
            "promotion.unlock",
            "grade.publish",
            "grade.unpublish",
            "student.add",
            "grade.add",
            "grade.update",
        ];
        let last = [
            "promotion.delete",
            "promotion.grant",
            "promotion.revoke",
            "student.update",
            "student.remove",
            "grade.delete",
        ];
        for name in Command::NAMES {
            let command = sample(name);
            let f = facts(&command);
            let expected = if ahead.contains(name) {
                Flow::Ahead
            } else if last.contains(name) {
                Flow::Last
            } else {
                Flow::Alone
            };
            assert_eq!(f.flow, expected, "{name}");
            // Whatever is pipelined is a write recorded for UDP.
            assert!(f.flow == Flow::Alone || f.udp_write, "{name}");
        }
    }

    #[test]
    fn the_admin_may_run_everything_and_only_three_commands_are_public() {
        for name in Command::NAMES {
            let command = sample(name);
            let f = facts(&command);
            assert!(matches!(f.access(Role::Admin), Allow | Public), "{name}");
            assert_eq!(
                f.is_public(),
                matches!(*name, "hello" | "ping" | "auth.login"),
                "{name}"
            );
        }
    }

    /// A command with the given name and minimal arguments.
    fn sample(name: &str) -> Command {
        let args = serde_json::json!({
            "id": 1, "name": "P", "username": "u", "password": "p", "role": "admin",
            "new": "p", "promotion": "P", "first_name": "A", "last_name": "B",
            "student": 1, "subject": "S", "value": 1,
            "kind": "grades", "columns": [], "import": 1, "rows": [],
        });
        let Value::Object(all) = args else {
            unreachable!()
        };
        // Keep only the arguments the command accepts.
        let mut kept = serde_json::Map::new();
        for (k, v) in all {
            let mut trial = kept.clone();
            trial.insert(k.clone(), v.clone());
            if !matches!(Command::parse(name, Some(Value::Object(trial.clone()))),
                Err(e) if e.message.contains("unknown field"))
            {
                kept = trial;
            }
        }
        Command::parse(name, Some(Value::Object(kept))).expect("a valid sample")
    }
}
