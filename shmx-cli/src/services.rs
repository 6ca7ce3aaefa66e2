//! Services in `shmx list` and `shmx info`: a service's types, its servers and clients, and
//! what waits in their queues (requests in flight to each server, responses not yet taken by
//! each client).

use crate::output::{self, hex, pid_cell, Table};
use crate::terminal::printable;
use serde::Serialize;
use shmx::inspect::{EndpointInfo, ServiceInfo};
use std::io::Write;

/// One service, as `--json` shows it (`"kind": "service"` beside the topics of `list`).
#[derive(Debug, Serialize)]
pub struct Service {
    /// Always `"service"`.
    pub kind: &'static str,
    /// The service's name.
    pub name: String,
    /// The request type: name, fingerprint (hex) and schema text (absent without a record).
    pub request: Option<TypeJson>,
    /// The response type.
    pub response: Option<TypeJson>,
    /// Its servers.
    pub servers: Vec<Endpoint>,
    /// Its clients.
    pub clients: Vec<Endpoint>,
}

/// A message type of a service.
#[derive(Debug, Serialize)]
pub struct TypeJson {
    /// The type's name.
    pub type_name: String,
    /// Its fingerprint, in hex.
    pub fingerprint: String,
    /// Its schema text.
    pub schema: String,
}

/// A server or client.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    /// Its id, in hex (its queue's directory ends with it).
    pub id: String,
    /// The process that reads its queue.
    pub pid: u64,
    /// Whether that process is alive.
    pub alive: bool,
    /// Peers connected: clients of a server, servers of a client.
    pub peers: usize,
    /// What waits in its queue: requests in flight to a server, responses for a client.
    pub queued: u64,
}

impl From<&ServiceInfo> for Service {
    fn from(s: &ServiceInfo) -> Self {
        let ty = |t: &Option<(String, u64, String)>| {
            t.as_ref().map(|(name, fp, schema)| TypeJson {
                type_name: name.clone(),
                fingerprint: hex(*fp),
                schema: schema.clone(),
            })
        };
        let ep = |e: &EndpointInfo| Endpoint {
            id: format!("{:016x}", e.id),
            pid: e.pid,
            alive: e.alive,
            peers: e.peers,
            queued: e.queued,
        };
        Service {
            kind: "service",
            name: s.name.clone(),
            request: ty(&s.request),
            response: ty(&s.response),
            servers: s.servers.iter().map(ep).collect(),
            clients: s.clients.iter().map(ep).collect(),
        }
    }
}

/// The services table of `shmx list` (nothing when there are none).
pub fn table(out: &mut dyn Write, services: &[ServiceInfo]) -> output::Result {
    if services.is_empty() {
        return Ok(());
    }
    let mut table = Table::new(&[
        "SERVICE",
        "REQUEST",
        "RESPONSE",
        "SERVERS",
        "CLIENTS",
        "IN FLIGHT",
    ]);
    for s in services {
        let name = |t: &Option<(String, u64, String)>| {
            t.as_ref()
                .map_or("?".to_owned(), |(n, _, _)| printable(n).into_owned())
        };
        table.row(vec![
            printable(&s.name).into_owned(),
            name(&s.request),
            name(&s.response),
            endpoints(&s.servers),
            endpoints(&s.clients),
            s.servers.iter().map(|e| e.queued).sum::<u64>().to_string(),
        ]);
    }
    writeln!(out)?;
    table.write(out, "")?;
    Ok(())
}

fn endpoints(list: &[EndpointInfo]) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter()
        .map(|e| pid_cell(e.pid, e.alive))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `shmx info SERVICE`.
pub fn info(out: &mut dyn Write, s: &ServiceInfo, json: bool) -> output::Result {
    if json {
        return output::write_json(out, &Service::from(s));
    }
    let mut head = Table::new(&["service", &printable(&s.name)]);
    for (side, t) in [("request", &s.request), ("response", &s.response)] {
        match t {
            Some((name, fp, schema)) => {
                head.row(vec![
                    format!("{side} type"),
                    format!("{} ({})", printable(name), hex(*fp)),
                ]);
                head.row(vec![
                    format!("{side} schema"),
                    printable(schema).into_owned(),
                ]);
            }
            None => head.row(vec![format!("{side} type"), "? (no record)".into()]),
        }
    }
    head.write(out, "")?;
    for (title, list, peers, queued) in [
        ("servers", &s.servers, "CLIENTS", "IN FLIGHT"),
        ("clients", &s.clients, "SERVERS", "RESPONSES WAITING"),
    ] {
        writeln!(out, "\n{title} ({}):", list.len())?;
        if list.is_empty() {
            continue;
        }
        let mut table = Table::new(&["ID", "PID", "ALIVE", peers, queued]);
        for e in list {
            table.row(vec![
                format!("{:016x}", e.id),
                e.pid.to_string(),
                if e.alive { "yes" } else { "NO" }.to_owned(),
                e.peers.to_string(),
                e.queued.to_string(),
            ]);
        }
        table.write(out, "  ")?;
    }
    Ok(())
}
