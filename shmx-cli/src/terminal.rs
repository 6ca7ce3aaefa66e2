//! Output that cannot attack a terminal.
//!
//! Topic names, type names and schema text come from files any participant of a topic may
//! have written, and a name can hold any character but NUL: printed raw, `"\x1b]0;…\x07"`
//! retitles the terminal and `"\x1b[2J"` clears it. Everything the tool prints goes through a
//! [`Sanitizer`], which writes every control character (C0 but the newline, DEL, C1) and
//! every bidirectional-text control as a `\uXXXX` escape. Inside JSON strings (the only place
//! JSON output can hold them) that is the JSON escape of the same character, so JSON output
//! stays exact JSON with the same values. Names shown in tables go through [`printable`]
//! too, which also escapes the newline, so that a name cannot fake lines of output.

use std::borrow::Cow;
use std::io::{self, Write};

/// Whether `c` must not reach a terminal raw: a control character (C0, DEL, C1) or a
/// bidirectional-text control (which can make text display in another order).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(c: char, out: &mut String) {
    out.push_str(&format!("\\u{:04x}", u32::from(c)));
}

/// `text` with every control and bidirectional-text character, the newline included,
/// written as a `\uXXXX` escape.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer that escapes, in what passes through it, every character [`printable`] escapes
/// except the newline (which separates lines of output), and every byte that is not UTF-8
/// (as `\xNN`). Characters split across writes are put back together first.
pub struct Sanitizer<W: Write> {
    inner: W,
    /// The start of a character whose other bytes have not been written yet.
    pending: Vec<u8>,
}

impl<W: Write> Sanitizer<W> {
    /// Sanitizes what is written to `inner`.
    pub fn new(inner: W) -> Sanitizer<W> {
        Sanitizer {
            inner,
            pending: Vec::new(),
        }
    }

    /// Writes `sequence` raw: for the tool's own terminal controls (the monitor clears the
    /// screen), never for text from a topic.
    pub fn control(&mut self, sequence: &str) -> io::Result<()> {
        self.flush_pending()?;
        self.inner.write_all(sequence.as_bytes())
    }

    fn emit(&mut self, text: &str) -> io::Result<()> {
        if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
            return self.inner.write_all(text.as_bytes());
        }
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if c != '\n' && is_unsafe(c) {
                escape(c, &mut out);
            } else {
                out.push(c);
            }
        }
        self.inner.write_all(out.as_bytes())
    }

    /// Writes what is pending as escaped bytes (a character that never completed).
    fn flush_pending(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        for b in pending {
            write!(self.inner, "\\x{b:02x}")?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Sanitizer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let bytes = std::mem::take(&mut self.pending);
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.emit(text)?;
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // The first `valid_up_to` bytes are UTF-8, by the error's contract.
                    self.emit(std::str::from_utf8(valid).unwrap_or_default())?;
                    match e.error_len() {
                        // Not UTF-8 at all: escape the bad bytes and go on.
                        Some(n) => {
                            for b in &after[..n] {
                                write!(self.inner, "\\x{b:02x}")?;
                            }
                            rest = &after[n..];
                        }
                        // A character cut short by the end of this write: keep it for the next.
                        None => {
                            self.pending = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for Sanitizer<W> {
    fn drop(&mut self) {
        let _ = self.flush_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        {
            let mut s = Sanitizer::new(&mut out);
            for p in pieces {
                s.write_all(p).unwrap();
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn controls_are_escaped_and_text_and_newlines_pass() {
        assert_eq!(through(&[b"plain \xc3\xbc\n"]), "plain ü\n");
        assert_eq!(
            through(&["a\x1b]0;pwned\x07b\x1b[2J\r\t\x7f".as_bytes()]),
            "a\\u001b]0;pwned\\u0007b\\u001b[2J\\u000d\\u0009\\u007f"
        );
        // C1 (here CSI, U+009B) and a right-to-left override, split across writes.
        let csi = "\u{9b}".as_bytes();
        let rlo = "\u{202e}".as_bytes();
        assert_eq!(
            through(&[&csi[..1], &csi[1..], &rlo[..2], &rlo[2..], b"x"]),
            "\\u009b\\u202ex"
        );
        assert_eq!(
            through(&[b"bad \xff\xfe end", b"\xe2"]),
            "bad \\xff\\xfe end\\xe2"
        );
    }

    #[test]
    fn json_stays_exact_json() {
        let value = serde_json::json!({ "name": "evil\u{1b}[2J\u{9b}31m\u{202e}\u{7f}", "n": 1 });
        let text = through(&[serde_json::to_string_pretty(&value).unwrap().as_bytes()]);
        assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{text:?}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn printable_escapes_the_newline_too() {
        assert_eq!(printable("robot/pose"), "robot/pose");
        assert_eq!(printable("a\nb\u{1b}"), "a\\u000ab\\u001b");
    }
}
