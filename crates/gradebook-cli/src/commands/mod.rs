//! One module per command family; each turns the command line's arguments
//! into one of the protocol's typed calls, and its typed reply into a table
//! or a sentence (or, with `--json`, prints the server's data unchanged).

pub mod audit;
pub mod auth;
pub mod grade;
pub mod misc;
pub mod promotion;
pub mod student;
pub mod user;
pub mod watch;

use gradebook_proto::{Call, Command};

use crate::app::Ctx;
use crate::error::CliError;
use crate::output;

/// Sends `call` and, with `--json`, prints the server's data as it came and
/// returns `None`; otherwise returns the data, typed, for human output.
pub async fn request<C: Call>(ctx: &mut Ctx, call: C) -> Result<Option<C::Reply>, CliError> {
    let command: Command = call.into();
    let name = command.name();
    let data = ctx.conn.run(command).await?;
    if ctx.json {
        output::print_json(&data);
        Ok(None)
    } else {
        output::decode::<C>(name, data).map(Some)
    }
}

/// A server error in the command line's words: the protocol names its
/// arguments (`first_name`, `force`), the user typed flags. `names` maps
/// each wire name to what the user typed (`--first-name`, `--force`);
/// rewritten are a message that starts with the name ("first_name is
/// longer than…"), a name in parentheses, and "pass NAME".
pub fn in_flags(e: CliError, names: &[(&str, &str)]) -> CliError {
    let CliError::Server(mut w) = e else {
        return e;
    };
    for (wire, flag) in names {
        if let Some(rest) = w.message.strip_prefix(wire)
            && rest.starts_with(' ')
        {
            w.message = format!("{flag}{rest}");
        }
        w.message = w
            .message
            .replace(&format!("({wire})"), &format!("({flag})"))
            .replace(&format!("pass {wire}"), &format!("add {flag}"));
    }
    CliError::Server(w)
}

/// A collation key for sorting names for display as people expect: accents
/// and case do not count (Émile sorts with Emile, Çelik among the C), nor
/// do apostrophes, hyphens and spaces (O'Brien among the O). Callers break
/// ties with the text itself, after every key, so the order is stable.
pub fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let mut key = String::with_capacity(name.len());
    for c in name.nfd() {
        match c {
            c if is_combining_mark(c) => {}
            '\'' | '\u{2019}' | '\u{02bc}' | '-' | '\u{2010}' | '\u{2011}' | ' ' | '.' => {}
            // Letters that do not decompose but are read as two.
            'æ' | 'Æ' => key.push_str("ae"),
            'œ' | 'Œ' => key.push_str("oe"),
            'ß' => key.push_str("ss"),
            c => key.extend(c.to_lowercase()),
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradebook_proto::{ErrorCode, WireError};

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        v.sort_by_cached_key(|n| (name_key(n), n.clone()));
        v
    }

    #[test]
    fn names_sort_without_regard_to_accents_case_or_apostrophes() {
        assert_eq!(
            sorted(&["O'Brien", "Zola", "Çelik", "Ozil", "Dupont", "Cohen"]),
            ["Çelik", "Cohen", "Dupont", "O'Brien", "Ozil", "Zola"]
        );
        assert_eq!(
            sorted(&["Emma", "Émile", "Emile", "emilie"]),
            ["Emile", "Émile", "emilie", "Emma"]
        );
        assert_eq!(
            sorted(&["Martin", "de la Tour", "Le-Bris", "Lebon"]),
            ["de la Tour", "Lebon", "Le-Bris", "Martin"]
        );
        assert_eq!(
            sorted(&["Oeuvray", "Œdipe", "Odile"]),
            ["Odile", "Œdipe", "Oeuvray"]
        );
    }

    #[test]
    fn server_messages_speak_in_flags() {
        let e = CliError::Server(WireError::new(
            ErrorCode::Conflict,
            "promotion 'P' has 2 student(s): remove them first, or pass force",
        ));
        let text = in_flags(e, &[("force", "--force")]).to_string();
        assert!(text.ends_with("or add --force"), "{text}");
        let e = CliError::Server(WireError::new(
            ErrorCode::InvalidValue,
            "first_name is longer than 100 characters",
        ));
        let text = in_flags(e, &[("first_name", "--first-name")]).to_string();
        assert!(text.contains(": --first-name is longer"), "{text}");
    }
}
