//! One description per command: who may run it, and what running it may
//! change. One exhaustive `match`, no `_ =>`: a new command does not
//! compile until it says all of it, so no fact about it can be left to a
//! silent fall-through somewhere else (a stale permission decision is a
//! security bug waiting).
//!
//! What a command *targets* (which promotion or student a scoped rule is
//! checked against) needs the store, and lives beside the one permission
//! check in `dispatch`.

use gradebook_core::Role;
use gradebook_proto::Command;

use crate::permission::Access::{
    self, Allow, Deny, ManagedPromotion as Managed, OwnPromotion, OwnStudent, Public,
};

/// What the server knows of a command before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The rule for an admin, a teacher and a student.
    pub access: [Access; 3],
    /// Whether it writes to the store for its caller, so that over UDP its
    /// request is recorded with the change and never run twice.
    pub udp_write: bool,
    /// Whether it can change what a read or a permission check sees: reads
    /// served from memory are forgotten after it.
    pub changes_reads: bool,
    /// Whether it can take access away, or make an id or a name point to
    /// something else: permission decisions remembered before it are
    /// forgotten. Adding grants nobody anything refused before.
    pub changes_access: bool,
}

impl Facts {
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
const fn read(access: [Access; 3]) -> Facts {
    Facts {
        access,
        udp_write: false,
        changes_reads: false,
        changes_access: false,
    }
}

/// A write that only adds or changes data: remembered permissions stay.
const fn write(access: [Access; 3]) -> Facts {
    Facts {
        access,
        udp_write: true,
        changes_reads: true,
        changes_access: false,
    }
}

/// A write that can take access away or make an id name something else.
const fn revoking(access: [Access; 3]) -> Facts {
    Facts {
        access,
        udp_write: true,
        changes_reads: true,
        changes_access: true,
    }
}

/// Everything known about `command`.
pub fn facts(command: &Command) -> Facts {
    use Command as C;
    match command {
        C::Hello(_) | C::Ping(_) | C::Login(_) => read([Public; 3]),
        // Sessions: recorded over UDP (a retried logout gets its ok), but
        // nothing a read shows changes.
        C::Logout(_) => Facts {
            udp_write: true,
            ..read([Allow; 3])
        },
        C::Whoami(_) => read([Allow; 3]),
        C::UserCreate(_) => revoking([Allow, Deny, Deny]),
        C::UserList(_) => read([Allow, Deny, Deny]),
        C::UserDelete(_) => revoking([Allow, Deny, Deny]),
        // Own password for everyone; the handler keeps `username` for
        // admins.
        C::UserPassword(_) => Facts {
            udp_write: true,
            ..read([Allow; 3])
        },
        C::PromotionCreate(_) => write([Allow, Allow, Deny]),
        // Teachers and students see only their own promotions in the list.
        C::PromotionList(_) => read([Allow; 3]),
        C::PromotionShow(_) => read([Allow, Managed, Deny]),
        C::PromotionDelete(_) => revoking([Allow, Managed, Deny]),
        C::PromotionGrant(_) | C::PromotionRevoke(_) => revoking([Allow, Deny, Deny]),
        C::PromotionAverage(_) | C::PromotionSubjects(_) => read([Allow, Managed, OwnPromotion]),
        C::StudentAdd(_) => write([Allow, Managed, Deny]),
        C::StudentList(_) => read([Allow, Managed, Deny]),
        // A move between promotions changes who manages the student.
        C::StudentUpdate(_) | C::StudentRemove(_) => revoking([Allow, Managed, Deny]),
        C::StudentShow(_) | C::StudentAverage(_) | C::StudentExplain(_) => {
            read([Allow, Managed, OwnStudent])
        }
        C::GradeAdd(_) | C::GradeUpdate(_) => write([Allow, Managed, Deny]),
        C::GradeDelete(_) => revoking([Allow, Managed, Deny]),
        C::GradeList(_) => read([Allow, Managed, OwnStudent]),
        C::AuditList(_) => read([Allow, Managed, Deny]),
        // Imports hold their lines in memory until the commit writes them
        // all; they run over TCP only, so nothing is recorded for UDP.
        C::ImportBegin(_) => read([Allow, Managed, Deny]),
        // Lines go to the session's own import, opened on a managed
        // promotion; the commit checks that promotion again.
        C::ImportRows(_) | C::ImportAbort(_) => read([Allow, Allow, Deny]),
        C::ImportCommit(_) => Facts {
            udp_write: false,
            ..write([Allow, Managed, Deny])
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
    fn whatever_can_take_access_away_forgets_remembered_decisions() {
        let revoking = [
            "user.create",
            "user.delete",
            "promotion.delete",
            "promotion.grant",
            "promotion.revoke",
            "student.update",
            "student.remove",
            "grade.delete",
        ];
        for name in Command::NAMES {
            let f = facts(&sample(name));
            assert_eq!(f.changes_access, revoking.contains(name), "{name}");
            // Whatever changes access changes what reads see.
            assert!(!f.changes_access || f.changes_reads, "{name}");
        }
    }

    #[test]
    fn the_admin_may_run_everything_and_only_three_commands_are_public() {
        for name in Command::NAMES {
            let f = facts(&sample(name));
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
