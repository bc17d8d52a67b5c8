//! The rules of access: for each command and role, the rule that decides.
//!
//! Each command states its rules in its one description
//! ([`crate::facts`]), an exhaustive `match`: a new command cannot be
//! forgotten. They are consulted at one point of the request path
//! (`dispatch`).

use gradebook_core::Role;
use gradebook_proto::Command;

use crate::facts::facts;

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

/// The rule for `command` and `role`, from the command's one description
/// ([`crate::facts`]).
pub fn access(command: &Command, role: Role) -> Access {
    facts(command).access(role)
}
