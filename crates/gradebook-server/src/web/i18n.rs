//! French and English texts of the portal.
//!
//! The texts live in `web/i18n/*.tsv`, one file per part of the portal, one
//! line per text: `key<TAB>English<TAB>French`. A page's language comes
//! from the `gradebook_lang` cookie (set by the switch on every page), else
//! from `Accept-Language`, else English. Messages from the protocol (its
//! errors) stay in English, as they are on the wire.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::{HeaderMap, header};

/// The cookie that remembers a chosen language.
pub const LANG_COOKIE: &str = "gradebook_lang";

/// The text files, each embedded in the binary.
const FILES: &[(&str, &str)] = &[
    ("common", include_str!("../../web/i18n/common.tsv")),
    ("student", include_str!("../../web/i18n/student.tsv")),
    ("teacher", include_str!("../../web/i18n/teacher.tsv")),
    ("admin", include_str!("../../web/i18n/admin.tsv")),
];

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

impl Lang {
    /// `en` or `fr`, as in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language a code names (`fr`, `fr-FR`, `en-GB`…).
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Fr,
            Lang::Fr => Lang::En,
        }
    }

    /// The language of a request: the cookie's, else the first of
    /// `Accept-Language` (by weight) that the portal speaks, else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = super::session::cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
            return lang;
        }
        let Some(accept) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut offers: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Lang::parse(parts.next()?)?;
                let weight = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (weight > 0.0).then_some((weight, lang))
            })
            .collect();
        // Stable: among equal weights, the first listed wins.
        offers.sort_by(|a, b| b.0.total_cmp(&a.0));
        offers.first().map_or(Lang::En, |(_, lang)| *lang)
    }

    /// The text `key` in this language; empty, and a warning logged, if it
    /// has none (a test checks that every key the templates use exists).
    pub fn t(self, key: &str) -> &'static str {
        self.text(key).unwrap_or_else(|| {
            tracing::warn!(key, "web: no text for this key");
            ""
        })
    }

    /// The text `key` in this language, if there is one (for optional
    /// variants, such as a count's `KEY.one`).
    pub fn text(self, key: &str) -> Option<&'static str> {
        let [en, fr] = texts().get(key)?;
        Some(match self {
            Lang::En => en,
            Lang::Fr => fr,
        })
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Every text, by key.
fn texts() -> &'static HashMap<&'static str, [&'static str; 2]> {
    static TEXTS: OnceLock<HashMap<&'static str, [&'static str; 2]>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        FILES
            .iter()
            .flat_map(|(_, text)| text.lines())
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let mut cells = line.split('\t');
                Some((cells.next()?, [cells.next()?, cells.next()?]))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn every_line_has_a_key_and_two_texts_and_no_key_is_repeated() {
        let mut seen = std::collections::HashSet::new();
        for (file, text) in FILES {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() || line.starts_with('#') {
                    continue;
                }
                let cells: Vec<&str> = line.split('\t').collect();
                assert_eq!(cells.len(), 3, "{file}.tsv line {}: {line:?}", n + 1);
                assert!(
                    cells.iter().all(|c| !c.trim().is_empty()),
                    "{file}.tsv line {}",
                    n + 1
                );
                assert!(seen.insert(cells[0]), "{file}.tsv: key {} twice", cells[0]);
            }
        }
    }

    /// Every `t("…")` in a template names a text.
    #[test]
    fn every_key_the_templates_use_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/templates");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("the templates' directory") {
            let path = entry.expect("a template").path();
            let text = std::fs::read_to_string(&path).expect("a template's text");
            for piece in text.split("t(\"").skip(1) {
                let key = piece.split('"').next().unwrap_or_default();
                assert!(
                    texts().contains_key(key),
                    "{}: no text for {key:?}",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(
            checked > 10,
            "only {checked} keys found: is the pattern right?"
        );
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_accept_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-DE, fr;q=0.8, en;q=0.5"),
        );
        assert_eq!(Lang::of(&h), Lang::Fr);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en-GB,fr-FR;q=0.9"),
        );
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr;q=0, en;q=0.1"),
        );
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("gradebook_lang=fr"),
        );
        assert_eq!(Lang::of(&h), Lang::Fr);
    }

    #[test]
    fn texts_differ_by_language() {
        assert_ne!(Lang::En.t("nav.logout"), Lang::Fr.t("nav.logout"));
    }
}
