//! What tools see of services: the entries of a root that belong to a service (its record
//! and its queues, which are not topics), and a summary of each service.

use super::record::Record;
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::root::Root;
use crate::service::Service;
use crate::trust::Trust;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which queue of a service a directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// A server's request queue.
    Requests,
    /// A client's response queue.
    Responses,
}

/// The service whose encoded name is `encoded`, if that is the encoding of a valid name.
fn service_of(encoded: &str) -> Option<TopicName> {
    TopicName::decode(encoded)
        .and_then(|n| TopicName::new(&n).ok())
        .filter(|n| n.encoded() == encoded)
}

/// A root entry named `<encoded service>@req.<id>` or `@resp.<id>` (16 hex digits): the
/// service, which queue, the endpoint's id and the queue's topic name.
pub(crate) fn parse_part(entry: &str) -> Option<(TopicName, Part, u64, TopicName)> {
    let (encoded, suffix) = entry.rsplit_once('@')?;
    let (part, hex) = match suffix.split_once('.')? {
        ("req", hex) => (Part::Requests, hex),
        ("resp", hex) => (Part::Responses, hex),
        _ => return None,
    };
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let id = u64::from_str_radix(hex, 16).ok()?;
    let service = service_of(encoded)?;
    let name = service.part(suffix).ok()?;
    Some((service, part, id, name))
}

/// A root entry named `<encoded service>@service`: the service.
pub(crate) fn parse_record(entry: &str) -> Option<TopicName> {
    service_of(entry.strip_suffix("@service")?)
}

/// One service, as its record and queues show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The service's name.
    pub name: String,
    /// The request type's name, fingerprint and schema text (`None`: no record, or one
    /// that cannot be read).
    pub request: Option<(String, u64, String)>,
    /// The response type's.
    pub response: Option<(String, u64, String)>,
    /// Its servers (request queues).
    pub servers: Vec<EndpointInfo>,
    /// Its clients (response queues).
    pub clients: Vec<EndpointInfo>,
}

/// A server or client of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Its id (its queue is `<service>@req.<id>` or `@resp.<id>`, in hex).
    pub id: u64,
    /// The process that reads the queue (0 if none does now).
    pub pid: u64,
    /// Whether that process is alive.
    pub alive: bool,
    /// Peers connected to its queue: clients of a server, servers of a client.
    pub peers: usize,
    /// What waits in its queue: requests not yet taken by a server (in flight), responses
    /// not yet taken by a client.
    pub queued: u64,
    /// The queue's directory.
    pub dir: PathBuf,
}

/// Every service under `root`, by name.
///
/// # Errors
/// As [`topics`](crate::inspect::topics).
pub fn services(root: &Path) -> Result<Vec<ServiceInfo>> {
    let Some(root) = Root::open_existing(root, &Trust::for_tools())? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<ServiceInfo> = Vec::new();
    let entry_of = |out: &mut Vec<ServiceInfo>, service: &TopicName| -> usize {
        match out.iter().position(|s| s.name == service.as_str()) {
            Some(i) => i,
            None => {
                out.push(ServiceInfo {
                    name: service.as_str().to_owned(),
                    request: None,
                    response: None,
                    servers: Vec::new(),
                    clients: Vec::new(),
                });
                out.len() - 1
            }
        }
    };
    let trust = Trust::for_tools();
    for (entry, _) in root.dir().entries()? {
        let Some(entry) = entry.to_str() else {
            continue;
        };
        if let Some(service) = parse_record(entry) {
            let i = entry_of(&mut out, &service);
            if let Ok(Some(r)) = Record::read(&root, &service, &trust) {
                let t = |t: &super::record::TypeRecord| {
                    (t.name.clone(), t.fingerprint, t.schema.clone())
                };
                out[i].request = Some(t(&r.request));
                out[i].response = Some(t(&r.response));
            }
        } else if let Some((service, part, id, name)) = parse_part(entry) {
            let i = entry_of(&mut out, &service);
            if let Some(e) = endpoint(&root, &name, id) {
                match part {
                    Part::Requests => out[i].servers.push(e),
                    Part::Responses => out[i].clients.push(e),
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// One service, by name.
///
/// # Errors
/// [`Error::InvalidName`], or [`Error::Io`] (not found) if the root holds nothing of it.
pub fn service(root: &Path, name: &str) -> Result<ServiceInfo> {
    let wanted = TopicName::new(name)?;
    services(root)?
        .into_iter()
        .find(|s| s.name == wanted.as_str())
        .ok_or_else(|| Error::Io {
            path: root.join(super::record::file_name(&wanted)),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such service"),
        })
}

fn endpoint(root: &Arc<Root>, name: &TopicName, id: u64) -> Option<EndpointInfo> {
    let service = Service::open_untyped(root, name, &Trust::for_tools()).ok()??;
    let info = crate::inspect::describe_service(root, &service);
    let reader = info.subscribers.first();
    Some(EndpointInfo {
        id,
        pid: reader.map_or(0, |s| s.pid),
        alive: reader.is_some_and(|s| s.alive),
        peers: info.publishers.iter().filter(|p| p.alive).count(),
        queued: info.subscribers.iter().map(|s| s.queued).sum(),
        dir: info.dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_records_are_told_from_topics() {
        let (svc, part, id, name) = parse_part("robot%2Fparams@req.00000000000000ff").unwrap();
        assert_eq!(
            (svc.as_str(), part, id, name.encoded()),
            (
                "robot/params",
                Part::Requests,
                255,
                "robot%2Fparams@req.00000000000000ff"
            )
        );
        assert!(parse_part("robot%2Fparams@resp.00000000000000ff").is_some());
        for no in [
            "robot%2Fparams",
            "robot%2Fparams@req.ff",
            "robot%2Fparams@req.00000000000000FF",
            "robot%2Fparams@req.00000000000000fg",
            "robot%2Fparams@other.00000000000000ff",
            "robot/params@req.00000000000000ff",
            "%2E%2E@req.00000000000000ff",
            "@req.00000000000000ff",
        ] {
            assert!(parse_part(no).is_none(), "{no}");
        }
        assert_eq!(parse_record("a%2Fb@service").unwrap().as_str(), "a/b");
        assert!(parse_record("a%2Fb").is_none());
        assert!(parse_record("@service").is_none());
    }
}
