//! The one permission check: a command's access rule for the caller's
//! role (its one description, [`facts`]), and for scoped rules, whether the
//! target (a promotion, a student, a grade, an open import) is theirs.
//!
//! Rules read the in-memory model, never the store. A scoped caller cannot
//! tell a target that does not exist from one that is not theirs.

use gradebook_proto::{Command, ErrorCode, WireError};

use crate::context::{Caller, State};
use crate::facts::{Access, Target, facts};
use crate::model::View;
use crate::session::Session;

/// The one permission check: the command's rule for the caller's role
/// (its one description, [`facts`]), and for scoped rules, whether the
/// target is theirs.
pub fn authorize(state: &State, command: &Command, caller: &Caller) -> Result<(), WireError> {
    let Some(session) = caller.session.as_deref() else {
        // Only public commands get this far without a session.
        return Ok(());
    };
    let role = session.user.role;
    let facts = facts(command);
    let denied = || {
        WireError::forbidden(format!(
            "a {role} may not run {} on this target",
            command.name()
        ))
    };
    let view = state.model.read();
    match facts.access(role) {
        Access::Public | Access::Allow => Ok(()),
        Access::Deny => Err(WireError::forbidden(format!(
            "a {role} may not run {}",
            command.name()
        ))),
        Access::ManagedPromotion => {
            let targets = target_promotions(state, &view, facts.target, session)
                .map_err(|e| hide_existence(e, command))?;
            if targets.is_empty() {
                return Err(WireError::forbidden(format!(
                    "a {role} must name a promotion or student they manage for {}",
                    command.name()
                )));
            }
            for promotion in targets {
                let managed = view
                    .promotion(&promotion)
                    .is_ok_and(|p| p.managed_by(session.user_id));
                if !managed {
                    // The same words whatever the reason, and never the
                    // name of a promotion found through a student id.
                    return Err(hide_existence(WireError::not_found(promotion), command));
                }
            }
            Ok(())
        }
        Access::OwnPromotion => {
            let own = own_student(&view, session)?;
            let targets = target_promotions(state, &view, facts.target, session)
                .map_err(|e| hide_existence(e, command))?;
            if targets.iter().all(|p| *p == own) && !targets.is_empty() {
                Ok(())
            } else {
                Err(denied())
            }
        }
        Access::OwnStudent => {
            let own = session.user.student.ok_or_else(denied)?;
            match target_student(&view, facts.target).map_err(|e| hide_existence(e, command))? {
                Some(s) if s == own => Ok(()),
                _ => Err(denied()),
            }
        }
    }
}

/// For a scoped role, a student or grade that does not exist looks like one
/// that is not theirs: `not_found` would tell which ids exist elsewhere.
fn hide_existence(e: WireError, command: &Command) -> WireError {
    if e.code == ErrorCode::NotFound {
        WireError::forbidden(format!(
            "{}: no such target among those you may use",
            command.name()
        ))
    } else {
        e
    }
}

/// The promotion of the student record linked to a student account.
fn own_student(view: &View<'_>, session: &Session) -> Result<String, WireError> {
    let id = session
        .user
        .student
        .ok_or_else(|| WireError::forbidden("this student account has no student record"))?;
    Ok(view.student(id)?.student().promotion.clone())
}

/// The promotions a target touches (a move touches two). Empty for a
/// target with no promotion, which scoped rules then refuse.
fn target_promotions(
    state: &State,
    view: &View<'_>,
    target: Target<'_>,
    session: &Session,
) -> Result<Vec<String>, WireError> {
    let of_student = |id: i64| -> Result<String, WireError> {
        Ok(view.student(id)?.student().promotion.clone())
    };
    Ok(match target {
        Target::Nothing => vec![],
        Target::Promotion(name) => vec![name.to_owned()],
        Target::Student(id) => vec![of_student(id)?],
        Target::Grade(id) => vec![of_student(view.grade(id)?.student)?],
        Target::Move { student, to } => {
            let mut v = vec![of_student(student)?];
            v.extend(to.map(str::to_owned));
            v
        }
        Target::Audit { promotion, student } | Target::Watch { promotion, student } => {
            let mut v: Vec<String> = promotion.map(str::to_owned).into_iter().collect();
            if let Some(s) = student {
                v.push(of_student(s)?);
            }
            v
        }
        // The import is the session's own; its promotion is checked again
        // when it is written, in case the grant was taken away meanwhile.
        Target::Import(id) => vec![
            state
                .imports
                .promotion_of(&session.token_hash, id)
                .ok_or_else(|| WireError::not_found(format!("no open import {id}")))?,
        ],
    })
}

/// The student a target is about, for the student role's own-record rule.
fn target_student(view: &View<'_>, target: Target<'_>) -> Result<Option<i64>, WireError> {
    Ok(match target {
        Target::Student(id) => Some(id),
        Target::Grade(id) => Some(view.grade(id)?.student),
        // A student watches themselves; a promotion named beside must be
        // theirs too.
        Target::Watch {
            promotion,
            student: Some(id),
        } => {
            let theirs = view.student(id)?.student().promotion.clone();
            match promotion {
                Some(p) if p != theirs => None,
                _ => Some(id),
            }
        }
        Target::Nothing
        | Target::Promotion(_)
        | Target::Move { .. }
        | Target::Audit { .. }
        | Target::Watch { student: None, .. }
        | Target::Import(_) => None,
    })
}
