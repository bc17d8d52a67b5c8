//! The permission table: for each command and role, the rule that decides.
//!
//! One table, deny by default, consulted at one point of the request path
//! (`dispatch`). A command missing from the table is denied to everyone but
//! the admin would still be refused: `Access::Deny` is the fallback.

use gradebook_core::Role;

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

use Access::{Allow, Deny, ManagedPromotion as Managed, OwnPromotion, OwnStudent, Public};

/// Each command with its rule for admin, teacher, student.
pub const TABLE: &[(&str, [Access; 3])] = &[
    ("hello", [Public, Public, Public]),
    ("ping", [Public, Public, Public]),
    ("auth.login", [Public, Public, Public]),
    ("auth.logout", [Allow, Allow, Allow]),
    ("auth.whoami", [Allow, Allow, Allow]),
    ("user.create", [Allow, Deny, Deny]),
    ("user.list", [Allow, Deny, Deny]),
    ("user.delete", [Allow, Deny, Deny]),
    // Own password for everyone; the handler keeps `username` for admins.
    ("user.password", [Allow, Allow, Allow]),
    ("promotion.create", [Allow, Allow, Deny]),
    // Teachers and students see only their own promotions in the list.
    ("promotion.list", [Allow, Allow, Allow]),
    ("promotion.show", [Allow, Managed, Deny]),
    ("promotion.delete", [Allow, Managed, Deny]),
    ("promotion.grant", [Allow, Deny, Deny]),
    ("promotion.revoke", [Allow, Deny, Deny]),
    ("promotion.average", [Allow, Managed, OwnPromotion]),
    ("promotion.subjects", [Allow, Managed, OwnPromotion]),
    ("student.add", [Allow, Managed, Deny]),
    ("student.list", [Allow, Managed, Deny]),
    ("student.update", [Allow, Managed, Deny]),
    ("student.remove", [Allow, Managed, Deny]),
    ("student.show", [Allow, Managed, OwnStudent]),
    ("student.average", [Allow, Managed, OwnStudent]),
    ("student.explain", [Allow, Managed, OwnStudent]),
    ("grade.add", [Allow, Managed, Deny]),
    ("grade.update", [Allow, Managed, Deny]),
    ("grade.delete", [Allow, Managed, Deny]),
    ("grade.list", [Allow, Managed, OwnStudent]),
    ("audit.list", [Allow, Managed, Deny]),
    ("import.begin", [Allow, Managed, Deny]),
    // Lines go to the session's own import, opened on a managed promotion.
    ("import.rows", [Allow, Allow, Deny]),
    ("import.commit", [Allow, Managed, Deny]),
    ("import.abort", [Allow, Allow, Deny]),
];

/// The rule for `command` and `role`; `Deny` for anything not in the table.
pub fn access(command: &str, role: Role) -> Access {
    let column = match role {
        Role::Admin => 0,
        Role::Teacher => 1,
        Role::Student => 2,
    };
    TABLE
        .iter()
        .find(|(name, _)| *name == command)
        .map_or(Deny, |(_, rules)| rules[column])
}

/// Whether `command` needs no session.
pub fn is_public(command: &str) -> bool {
    access(command, Role::Student) == Public
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradebook_proto::Command;

    #[test]
    fn every_command_has_exactly_one_row() {
        for name in Command::NAMES {
            let rows = TABLE.iter().filter(|(n, _)| n == name).count();
            assert_eq!(rows, 1, "{name}");
        }
        assert_eq!(TABLE.len(), Command::NAMES.len());
    }

    #[test]
    fn unknown_commands_are_denied() {
        for role in Role::ALL {
            assert_eq!(access("promotion.destroy", role), Deny);
        }
    }

    #[test]
    fn the_admin_may_run_everything() {
        for name in Command::NAMES {
            assert!(
                matches!(access(name, Role::Admin), Allow | Public),
                "{name}"
            );
        }
    }
}
