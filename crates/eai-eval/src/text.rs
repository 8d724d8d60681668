//! Python string semantics the tasks depend on (`str.isspace`, `strip`, `capitalize`, `re.sub`).

use regex::Regex;

/// Python's `str.isspace()` for one character: Rust's `White_Space` property plus the four ASCII
/// information separators U+001C..U+001F, which Python also counts (bidirectional class B/S).
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `str.rstrip()` with no argument.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

/// Python 3.8+'s `str.capitalize()`: the first character in title case, all the rest lower-cased.
///
/// Title case differs from upper case only for the four Latin digraph letters (`ǆ` → `ǅ`), which
/// are handled. Lower-casing the rest uses Rust's `to_lowercase`, which applies the final-sigma
/// rule over the remainder only (CPython looks at the whole string); the two can differ only for
/// a Greek capital sigma in second position.
pub fn py_capitalize(s: &str) -> String {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return String::new() };
    let mut out = String::with_capacity(s.len());
    match first {
        '\u{01c4}'..='\u{01c6}' => out.push('\u{01c5}'),
        '\u{01c7}'..='\u{01c9}' => out.push('\u{01c8}'),
        '\u{01ca}'..='\u{01cc}' => out.push('\u{01cb}'),
        '\u{01f1}'..='\u{01f3}' => out.push('\u{01f2}'),
        c => out.extend(c.to_uppercase()),
    }
    out.push_str(&chars.as_str().to_lowercase());
    out
}

/// A regular expression applied with Python `re.sub(pattern, "", s)` semantics.
///
/// Rust's `regex` agrees with Python's `re` on the patterns the five tasks use (leftmost-first
/// alternation, non-greedy repeats, `(?s)`), except for the end anchor: Python's `$` (without
/// `re.M`) also matches just before a final `\n`. A pattern ending in an unescaped `$` is
/// therefore compiled as `(?:P)\n?\z` and the optional newline is put back after the deletion,
/// which reproduces Python for such end-anchored patterns.
#[derive(Clone, Debug)]
pub struct PyRegex {
    pattern: String,
    re: Regex,
    end_anchored: bool,
}

impl PyRegex {
    /// Compiles a Python pattern.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the pattern does not compile.
    pub fn new(pattern: &str) -> crate::Result<Self> {
        let end_anchored = ends_with_unescaped_dollar(pattern);
        let rust = if end_anchored {
            format!("(?:{})(?P<__eai_nl>\n?)\\z", &pattern[..pattern.len() - 1])
        } else {
            pattern.to_owned()
        };
        let re = Regex::new(&rust).map_err(|e| {
            crate::Error::config(format!("regex {pattern:?} does not compile: {e}"))
        })?;
        Ok(Self { pattern: pattern.to_owned(), re, end_anchored })
    }

    /// The pattern as written (Python syntax).
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The compiled Rust regex (for pattern forms other than end-anchored, identical semantics).
    pub(crate) fn regex(&self) -> &Regex {
        &self.re
    }

    /// `re.sub(pattern, "", s)`.
    pub fn delete_all(&self, s: &str) -> String {
        if self.end_anchored {
            match self.re.captures(s) {
                Some(c) => {
                    let (Some(all), nl) = (c.get(0), c.name("__eai_nl")) else {
                        return s.to_owned();
                    };
                    let mut out = String::with_capacity(s.len());
                    out.push_str(&s[..all.start()]);
                    if let Some(nl) = nl {
                        out.push_str(nl.as_str());
                    }
                    out
                }
                None => s.to_owned(),
            }
        } else {
            self.re.replace_all(s, "").into_owned()
        }
    }
}

fn ends_with_unescaped_dollar(p: &str) -> bool {
    if !p.ends_with('$') {
        return false;
    }
    let backslashes = p[..p.len() - 1].chars().rev().take_while(|&c| c == '\\').count();
    backslashes % 2 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalize_like_python() {
        assert_eq!(py_capitalize("the Man in RED"), "The man in red");
        assert_eq!(py_capitalize(""), "");
        assert_eq!(py_capitalize("ǆemal"), "ǅemal");
        assert_eq!(py_capitalize("éCOLE"), "École");
    }

    #[test]
    fn strip_includes_separators() {
        assert_eq!(py_strip("\u{1c} a \u{a0}"), "a");
        assert_eq!(py_rstrip("a\n\t "), "a");
    }

    #[test]
    fn dollar_matches_before_final_newline() {
        let r = PyRegex::new("\\.$").unwrap();
        assert_eq!(r.delete_all("5."), "5");
        assert_eq!(r.delete_all("5.\n"), "5\n");
        assert_eq!(r.delete_all("5.x"), "5.x");
        assert_eq!(r.delete_all("5.\n\n"), "5.\n\n");
        let r = PyRegex::new("(?s).*#### ").unwrap();
        assert_eq!(r.delete_all("a\nb #### 12\n#### 3"), "3");
        let r = PyRegex::new("\\\\$").unwrap();
        assert_eq!(r.delete_all("a\\"), "a");
        let r = PyRegex::new("\\$").unwrap();
        assert_eq!(r.delete_all("$5$"), "5");
    }
}
