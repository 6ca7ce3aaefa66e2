//! The service record: the file `<root>/<encoded service>@service` that holds a service's
//! request and response types (name, fingerprint, size, alignment, schema text), made by the
//! first client or server and checked by every later one, so that a type mismatch on either
//! side is found when an endpoint is made, not when a request first meets a server.
//!
//! Written whole under a temporary name and linked into place with the root lock held (a
//! reader sees all of it or nothing); read with `O_NOFOLLOW` and checked like any file a
//! peer wrote: lengths are bounded, text must be UTF-8. A record whose service has no part
//! left (every client and server gone, crashed ones swept) is replaced by the next endpoint's
//! types, and the last endpoint to leave removes it.

use crate::dir::Access;
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::root::{Root, RootLock};
use crate::service::{mismatch, TypeFacts};
use crate::trust::Trust;
use std::io::{Read, Write};

const MAGIC: &[u8; 8] = b"SHMXSVC1";
/// Largest record read (two schema texts and names).
const MAX_LEN: u64 = 1 << 20;

/// Which side of a service a type is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Response => "response",
        }
    }
}

/// One type as the record holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TypeRecord {
    pub name: String,
    pub fingerprint: u64,
    pub size: u64,
    pub align: u64,
    pub schema: String,
}

impl TypeRecord {
    pub(crate) fn of(facts: &TypeFacts) -> TypeRecord {
        TypeRecord {
            name: facts.name.clone(),
            fingerprint: facts.fingerprint,
            size: facts.size as u64,
            align: facts.align as u64,
            schema: facts.schema.clone(),
        }
    }

    fn same(&self, other: &TypeRecord) -> bool {
        (self.fingerprint, self.size, self.align) == (other.fingerprint, other.size, other.align)
    }
}

/// A service's two types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub request: TypeRecord,
    pub response: TypeRecord,
}

/// The record's file name in the root.
pub(crate) fn file_name(service: &TopicName) -> String {
    format!("{}@service", service.encoded())
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for t in [&self.request, &self.response] {
            out.extend_from_slice(&t.fingerprint.to_le_bytes());
            out.extend_from_slice(&t.size.to_le_bytes());
            out.extend_from_slice(&t.align.to_le_bytes());
            out.extend_from_slice(&(t.name.len() as u32).to_le_bytes());
            out.extend_from_slice(&(t.schema.len() as u32).to_le_bytes());
            out.extend_from_slice(t.name.as_bytes());
            out.extend_from_slice(t.schema.as_bytes());
        }
        out
    }

    /// Parses a record's bytes; `Err` names what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<Record, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not a shmx service record (bad magic)")?;
        let mut at = rest;
        let mut take = |n: usize| -> std::result::Result<&[u8], String> {
            if at.len() < n {
                return Err(format!("truncated: {} bytes", bytes.len()));
            }
            let (head, tail) = at.split_at(n);
            at = tail;
            Ok(head)
        };
        let mut types = Vec::with_capacity(2);
        for _ in 0..2 {
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
            let fingerprint = word(take(8)?);
            let size = word(take(8)?);
            let align = word(take(8)?);
            let name_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let schema_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            let text = |b: &[u8]| {
                String::from_utf8(b.to_vec()).map_err(|_| "a type's text is not UTF-8".to_owned())
            };
            let name = text(take(name_len)?)?;
            let schema = text(take(schema_len)?)?;
            types.push(TypeRecord {
                name,
                fingerprint,
                size,
                align,
                schema,
            });
        }
        if !at.is_empty() {
            return Err(format!("{} bytes after the record", at.len()));
        }
        let response = types.pop().expect("two types");
        let request = types.pop().expect("two types");
        Ok(Record { request, response })
    }

    /// The record of `service` in `root`, if there is one.
    pub(crate) fn read(root: &Root, service: &TopicName, trust: &Trust) -> Result<Option<Record>> {
        let name = file_name(service);
        let Some(file) = root.dir().open_file(&name, Access::ReadOnly, trust)? else {
            return Ok(None);
        };
        let path = root.dir().join(&name);
        let mut bytes = Vec::new();
        file.take(MAX_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_LEN {
            return Err(Error::corrupt(&path, "a service record over 1 MiB"));
        }
        Record::decode(&bytes)
            .map(Some)
            .map_err(|reason| Error::corrupt(&path, reason))
    }

    /// Makes sure `root` records `self` for `service`: writes it if there is no record (or
    /// one that `in_use` says no part of the service uses any more), else checks the types
    /// against it: [`Error::TypeMismatch`] naming the side (`service (request)`) that
    /// differs. Call with the root lock held.
    pub(crate) fn ensure(
        &self,
        root: &Root,
        service: &TopicName,
        trust: &Trust,
        mode: u32,
        in_use: impl Fn() -> bool,
        _lock: &RootLock,
    ) -> Result<()> {
        if let Some(existing) = Record::read(root, service, trust)? {
            let first = [
                (Side::Request, &existing.request, &self.request),
                (Side::Response, &existing.response, &self.response),
            ]
            .into_iter()
            .find(|(_, there, here)| !there.same(here));
            let Some((side, there, here)) = first else {
                return Ok(());
            };
            if in_use() {
                return Err(mismatch_error(service, side, there, here));
            }
            // Left by endpoints that are all gone: this endpoint's types from now on.
            root.dir().remove_file(&file_name(service));
        }
        let (tmp, mut file) = root.dir().create_temp(mode & 0o666, trust.group())?;
        let written = file.write_all(&self.encode()).map_err(|source| Error::Io {
            path: root.dir().join(&tmp),
            source,
        });
        let linked = written.and_then(|()| root.dir().link(&tmp, &file_name(service)));
        root.dir().remove_file(&tmp);
        match linked? {
            true => Ok(()),
            // Someone linked one in between: impossible under the root lock, unless another
            // user's process does this (whose record we then must not trust blindly).
            false => match Record::read(root, service, trust)? {
                Some(r) if r.request.same(&self.request) && r.response.same(&self.response) => {
                    Ok(())
                }
                _ => Err(Error::corrupt(
                    root.dir().join(&file_name(service)),
                    "the service record changed while it was being written",
                )),
            },
        }
    }
}

/// [`Error::TypeMismatch`] of `side` of `service`.
fn mismatch_error(service: &TopicName, side: Side, there: &TypeRecord, here: &TypeRecord) -> Error {
    let difference = mismatch::difference(
        &mismatch::Described {
            name: &there.name,
            schema: &there.schema,
            size: there.size,
            align: there.align,
        },
        &mismatch::Described {
            name: &here.name,
            schema: &here.schema,
            size: here.size,
            align: here.align,
        },
    );
    Error::TypeMismatch {
        topic: format!("{} ({} type)", service.as_str(), side.as_str()),
        existing_type: there.name.clone(),
        existing_fingerprint: there.fingerprint,
        existing_size: there.size,
        requested_type: here.name.clone(),
        requested_fingerprint: here.fingerprint,
        requested_size: here.size,
        difference: difference.into_boxed_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let t = |name: &str, fp| TypeRecord {
            name: name.into(),
            fingerprint: fp,
            size: 8,
            align: 8,
            schema: format!("{name}{{x@0:u64}}"),
        };
        Record {
            request: t("Get", 1),
            response: t("Value", 2),
        }
    }

    #[test]
    fn records_round_trip_and_bad_bytes_are_errors() {
        let r = record();
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), r);
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Record::decode(&long).is_err());
        let mut huge = bytes.clone();
        huge[8 + 24..8 + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&huge).is_err());
        let mut bad_utf8 = bytes;
        bad_utf8[8 + 32] = 0xff;
        assert!(Record::decode(&bad_utf8).is_err());
    }
}
