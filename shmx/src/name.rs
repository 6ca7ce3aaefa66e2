//! Topic names and where their files live.
//!
//! A topic name is a `/`-separated path such as `robot/pose`. Each topic gets one directory
//! under the root, named by percent-encoding the whole topic name into a single file name:
//! bytes outside `[A-Za-z0-9_.-]` (and a leading `.`) become `%XX`, so the mapping is
//! injective and never escapes the root. The root is `$SHMX_ROOT` if set, else the private
//! per-user `/dev/shm/shmx-<uid>` on Linux, else a `shmx-<uid>` folder in the temporary
//! directory.

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Longest encoded topic name, the file-name limit of Linux filesystems.
pub const MAX_ENCODED_LEN: usize = 255;

/// The directory that holds every topic of this process's shmx world: `$SHMX_ROOT` if set
/// (and not empty), else the defaults file's `root` (see [`defaults`](crate::defaults)),
/// else `/dev/shm/shmx-<effective uid>` on Linux (a `shmx-<uid>` folder in the temporary
/// directory elsewhere). A defaults file that cannot be used counts as none here;
/// [`Defaults::get`](crate::defaults::Defaults::get) says what is wrong with it (and every
/// endpoint's `create()` fails with that).
///
/// The default root is private to its user: endpoints create it with mode `0700` and refuse
/// it, with [`Error::PermissionDenied`], if another user made it, others may write it, or it
/// is a symbolic link. The same checks apply to a root named by `SHMX_ROOT` or a builder's
/// `root(..)`; that path is made absolute (and its parent directories' links resolved) once,
/// when an endpoint is built, so a later `chdir` changes nothing.
///
/// ```
/// # if std::env::var_os("SHMX_ROOT").is_none()
/// #     && shmx::defaults::Defaults::get().map_or(true, |d| d.file().is_none()) {
/// let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
/// # if let Ok(uid) = uid {
/// assert_eq!(shmx::name::root_dir(), std::path::PathBuf::from(format!("/dev/shm/shmx-{uid}")));
/// # }}
/// ```
pub fn root_dir() -> PathBuf {
    crate::root::default_path()
}

/// A validated topic name with its encoded directory name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicName {
    name: String,
    encoded: String,
}

impl TopicName {
    /// Validates `name`: non-empty, no NUL, no empty, `.` or `..` component, and at most
    /// [`MAX_ENCODED_LEN`] bytes once encoded.
    ///
    /// ```
    /// use shmx::name::TopicName;
    /// assert_eq!(TopicName::new("robot/pose").unwrap().encoded(), "robot%2Fpose");
    /// assert!(TopicName::new("robot//pose").is_err());
    /// assert!(TopicName::new("../etc").is_err());
    /// ```
    pub fn new(name: &str) -> Result<TopicName> {
        let bad = |reason| {
            Err(Error::InvalidName {
                name: name.to_owned(),
                reason,
            })
        };
        if name.is_empty() {
            return bad("it is empty");
        }
        if name.contains('\0') {
            return bad("it contains a NUL byte");
        }
        for component in name.split('/') {
            match component {
                "" => {
                    return bad("it has an empty path component (leading, trailing or double '/')")
                }
                "." | ".." => return bad("'.' and '..' are not allowed as path components"),
                _ => {}
            }
        }
        let encoded = encode(name);
        if encoded.len() > MAX_ENCODED_LEN {
            return bad("it is longer than 255 bytes once encoded as a file name");
        }
        Ok(TopicName {
            name: name.to_owned(),
            encoded,
        })
    }

    /// Whether this is the name of a part of a request/response service (made by
    /// [`part`](Self::part): no topic's encoded name has an `@`).
    pub(crate) fn is_part(&self) -> bool {
        self.encoded.contains('@')
    }

    /// The name of a part of the service named `self` (`suffix` is made of bytes that names
    /// keep as they are, e.g. `req.3`): `service@suffix`, whose directory name
    /// (`<encoded>@suffix`) no topic name encodes to (every `@` of a topic name is encoded).
    pub(crate) fn part(&self, suffix: &str) -> Result<TopicName> {
        debug_assert!(suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.'));
        let encoded = format!("{}@{suffix}", self.encoded);
        if encoded.len() > MAX_ENCODED_LEN {
            return Err(Error::InvalidName {
                name: self.name.clone(),
                reason: "it is too long for a service (its parts' file names pass 255 bytes)",
            });
        }
        Ok(TopicName {
            name: format!("{}@{suffix}", self.name),
            encoded,
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The encoded directory name.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// Decodes a directory name back into a topic name (for tools that list the root).
    pub fn decode(encoded: &str) -> Option<String> {
        let bytes = encoded.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = encoded.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }
}

fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for bad in ["", "a//b", "/a", "a/", "..", "a/../b", ".", "a\0b"] {
            assert!(
                matches!(TopicName::new(bad), Err(Error::InvalidName { .. })),
                "{bad:?} should be refused"
            );
        }
        assert!(TopicName::new(&"x".repeat(255)).is_ok());
        assert!(TopicName::new(&"x".repeat(256)).is_err());
        // 100 '/' -> 300 bytes once encoded.
        assert!(TopicName::new("a/".repeat(100).trim_end_matches('/')).is_err());
    }

    #[test]
    fn encoding_is_injective_and_reversible() {
        let names = ["robot/pose", "robot%2Fpose", ".hidden", "a.b", "ü/ß", "a b"];
        let encoded: Vec<_> = names.iter().map(|n| encode(n)).collect();
        for (i, e) in encoded.iter().enumerate() {
            assert!(!e.contains('/') && !e.starts_with('.'), "{e}");
            assert_eq!(TopicName::decode(e).as_deref(), Some(names[i]));
            for (j, f) in encoded.iter().enumerate() {
                assert_eq!(i == j, e == f);
            }
        }
    }
}
