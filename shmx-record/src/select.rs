//! [`Selection`]: which topics to record or play, as names and glob patterns.

use crate::error::{Error, Result};

/// Topic names and glob patterns: `*` matches any characters but `/`, `**` any characters,
/// `?` one character but `/`; everything else matches itself. An empty selection takes
/// every topic.
///
/// ```
/// use shmx_record::Selection;
/// let s = Selection::new(["robot/*", "logs/**", "clock"])?;
/// assert!(s.matches("robot/pose") && !s.matches("robot/arm/pose"));
/// assert!(s.matches("logs/a/b/c") && s.matches("clock") && !s.matches("clocks"));
/// assert!(Selection::new::<[&str; 0], &str>([])?.matches("anything"));
/// # Ok::<(), shmx_record::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    patterns: Vec<Vec<Token>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Segment,
    /// `**`
    Any,
}

impl Selection {
    /// The selection of these patterns.
    ///
    /// # Errors
    /// [`Error::Pattern`] for an empty pattern.
    pub fn new<I, S>(patterns: I) -> Result<Selection>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref();
            if p.is_empty() {
                return Err(Error::Pattern {
                    pattern: String::new(),
                    reason: "a pattern may not be empty".to_owned(),
                });
            }
            out.push(tokens(p));
        }
        Ok(Selection { patterns: out })
    }

    /// Whether `topic` is selected.
    pub fn matches(&self, topic: &str) -> bool {
        let topic: Vec<char> = topic.chars().collect();
        self.patterns.is_empty() || self.patterns.iter().any(|p| matches(p, &topic))
    }
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' if chars.next_if_eq(&'*').is_some() => Token::Any,
            '*' => Token::Segment,
            '?' => Token::One,
            c => Token::Char(c),
        });
    }
    out
}

/// Whether `p` matches all of `t`: a table of which prefixes of `p` match which prefixes of
/// `t` (quadratic, not exponential, in the worst pattern).
fn matches(p: &[Token], t: &[char]) -> bool {
    // row[j]: p[..i] matches t[..j], for the current i.
    let mut row = vec![false; t.len() + 1];
    row[0] = true;
    for token in p {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match token {
                Token::Char(c) => j > 0 && row[j - 1] && t[j - 1] == *c,
                Token::One => j > 0 && row[j - 1] && t[j - 1] != '/',
                // Matches nothing more, or one more character it may take.
                Token::Segment => row[j] || (j > 0 && next[j - 1] && t[j - 1] != '/'),
                Token::Any => row[j] || (j > 0 && next[j - 1]),
            };
        }
        row = next;
    }
    row[t.len()]
}

#[cfg(test)]
mod tests {
    use super::Selection;

    fn m(p: &str, t: &str) -> bool {
        Selection::new([p]).unwrap().matches(t)
    }

    #[test]
    fn globs_match_as_documented() {
        assert!(m("a/*", "a/b") && m("a/*", "a/") && !m("a/*", "a/b/c") && !m("a/*", "b/c"));
        assert!(m("a/**", "a/b/c") && m("**", "x/y") && m("**/pose", "r/1/pose"));
        assert!(m("*/pose", "r/pose") && !m("*/pose", "r/1/pose"));
        assert!(m("a?c", "abc") && !m("a?c", "a/c") && !m("a?c", "ac"));
        assert!(m("exact", "exact") && !m("exact", "exactly") && !m("exact", "xexact"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx") && !m("*a*b*c*", "cba"));
        assert!(m("é*", "éte") && m("*", ""));
        let long = "a".repeat(200);
        assert!(!m(&"*a".repeat(50), &format!("{long}b")));
        assert!(Selection::new([""]).is_err());
    }
}
