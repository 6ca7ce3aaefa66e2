//! [`RawClient`]: a client of a service whose types it reads from the service's record,
//! sending and receiving bytes (for tools: `shmx call`).

use super::record::Record;
use super::shared::Shared;
use super::{request_topic, response_topic, server_ids, split_tag, LAST, LOOK_EVERY, MARKER};
use crate::config::{Overflow, PublisherConfig, SubscriberConfig};
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::raw::{RawPublisher, RawSubscriber};
use crate::root::Root;
use crate::schema_text::MessageType;
use crate::trust::Trust;
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::path::Path;
use std::time::{Duration, Instant};

/// A client of an existing service, of the types its record holds: requests and responses
/// as bytes (the message, then the used part of its tail), one call at a time.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use shmx::request::RawClient;
/// use shmx::Server;
/// use std::time::Duration;
///
/// let root = dir.path().to_owned();
/// let (ready, started) = std::sync::mpsc::channel();
/// let server = std::thread::spawn(move || {
///     let server = Server::<u32, u64>::builder("doc/raw").root(&root).create()?;
///     ready.send(()).unwrap();
///     let request = server.recv_timeout(Duration::from_secs(10))?.expect("a request");
///     let value = u64::from(**request) * 2;
///     request.respond_last(value)
/// });
/// started.recv().unwrap();
/// let client = RawClient::open(Some(dir.path()), "doc/raw")?;
/// assert_eq!(client.request_type().schema(), "u32");
/// let mut got = Vec::new();
/// client.call(&21u32.to_ne_bytes(), Duration::from_secs(10), |bytes| got.push(bytes.to_vec()))?;
/// assert_eq!(got, vec![42u64.to_ne_bytes().to_vec()]);
/// server.join().unwrap()?;
/// # Ok::<(), shmx::Error>(())
/// ```
pub struct RawClient {
    servers: RefCell<Vec<(u64, RawPublisher)>>,
    responses: ManuallyDrop<RawSubscriber>,
    shared: Shared,
    request: MessageType,
    response: MessageType,
    next_request: Cell<u64>,
    next_server: Cell<usize>,
}

impl RawClient {
    /// A client of service `service` under `root` (`None`: the default root), which must
    /// exist (some server or client made its record).
    ///
    /// # Errors
    /// [`Error::Io`] (not found) if there is no such service; [`Error::Corrupt`] if its
    /// record does not describe its types; what making a subscriber may fail with.
    pub fn open(root: Option<&Path>, service: &str) -> Result<RawClient> {
        let name = TopicName::new(service)?;
        let topic = super::queue_topic(crate::defaults::publisher().topic, 64, 64);
        let trust = Trust::of(&topic);
        let root_dir = Root::open(root, &trust)?;
        let path = root_dir.dir().join(&super::record::file_name(&name));
        let record = Record::read(&root_dir, &name, &trust)?.ok_or_else(|| Error::Io {
            path: path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such service: start a server or client of it first",
            ),
        })?;
        let parse = |t: &super::record::TypeRecord| {
            let ty = MessageType::parse(&t.schema).map_err(|e| {
                Error::corrupt(&path, format!("a type's schema text is not one: {e}"))
            })?;
            if ty.fingerprint() != t.fingerprint || ty.size() as u64 != t.size {
                return Err(Error::corrupt(
                    &path,
                    "a type's schema text describes another type than the one it records",
                ));
            }
            Ok(ty)
        };
        let (request, response) = (parse(&record.request)?, parse(&record.response)?);
        let shared = Shared::open(
            service,
            root.map(Path::to_owned),
            topic,
            (request.facts(), response.facts()),
        )?;
        let mut shared = shared;
        let config = SubscriberConfig {
            topic,
            queue_depth: 64,
            publish_times: false,
        };
        let responses = super::with_client_id(&mut shared, |shared| {
            RawSubscriber::open_part(
                shared.root_path.as_deref(),
                &response_topic(&shared.service, shared.id)?,
                &response,
                config,
            )
        });
        let responses = match responses {
            Ok(r) => r,
            Err(e) => {
                shared.leave();
                return Err(e);
            }
        };
        Ok(RawClient {
            servers: RefCell::new(Vec::new()),
            responses: ManuallyDrop::new(responses),
            shared,
            request,
            response,
            next_request: Cell::new(1),
            next_server: Cell::new(0),
        })
    }

    /// The request type, as the service's record holds it.
    pub fn request_type(&self) -> &MessageType {
        &self.request
    }

    /// The response type.
    pub fn response_type(&self) -> &MessageType {
        &self.response
    }

    /// Sends `request` (a message of the request type, then its tail) to the next live
    /// server and hands each response's bytes to `each`, until the stream ends; returns how
    /// many responses came.
    ///
    /// # Errors
    /// [`Error::PeerGone`] if no server runs or the server dies first; [`Error::Timeout`]
    /// if the stream has not ended after `timeout`; [`Error::InvalidConfig`] for a request
    /// shorter than the type or longer than a chunk holds.
    pub fn call(
        &self,
        request: &[u8],
        timeout: Duration,
        mut each: impl FnMut(&[u8]),
    ) -> Result<usize> {
        let deadline = Instant::now().checked_add(timeout);
        let server = self.pick(request.len())?;
        let id = self.next_request.get();
        self.next_request.set(super::next_request(id));
        {
            let servers = self.servers.borrow();
            let (_, publisher) = servers
                .iter()
                .find(|(s, _)| *s == server)
                .expect("picked just now");
            let mut loan = publisher.loan(request.len())?;
            // SAFETY: the loan's chunk holds `capacity() ≥ request.len()` writable bytes
            // (asked for in `loan`), ours alone until it is published.
            unsafe {
                std::ptr::copy_nonoverlapping(request.as_ptr(), loan.as_mut_ptr(), request.len())
            };
            loan.publish_tagged(request.len(), super::request_tag(self.shared.id, id))?;
        }
        let mut count = 0;
        let mut next_check = Instant::now() + LOOK_EVERY;
        loop {
            let now = Instant::now();
            let mut slice = next_check.saturating_duration_since(now);
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(Error::Timeout {
                        topic: self.shared.service.as_str().to_owned(),
                        operation: "waiting for the end of the responses",
                    });
                }
                slice = slice.min(left);
            }
            if let Some(sample) = self.responses.recv_timeout(slice)? {
                let (tag, empty) = sample.tag();
                match tag.map(split_tag) {
                    Some((r, flags)) if r == id && flags & MARKER != 0 => return Ok(count),
                    // Bytes of no value (only a marker may have none): a peer's lie, dropped.
                    Some(_) if empty && self.response.size() > 0 => {}
                    Some((r, flags)) if r == id => {
                        each(sample.bytes());
                        count += 1;
                        if flags & LAST != 0 {
                            return Ok(count);
                        }
                    }
                    _ => {} // an earlier call's, or a stranger's: dropped
                }
                continue;
            }
            if Instant::now() >= next_check {
                next_check = Instant::now() + LOOK_EVERY;
                let alive = self
                    .servers
                    .borrow()
                    .iter()
                    .any(|(s, p)| *s == server && p.subscriber_count() > 0);
                if !alive && !self.responses.samples_waiting() {
                    return Err(self.shared.gone(format!(
                        "the server {server:016x} is gone with the request in flight"
                    )));
                }
            }
        }
    }

    /// The next live server, connecting to those that appeared.
    fn pick(&self, len: usize) -> Result<u64> {
        let mut servers = self.servers.borrow_mut();
        servers.retain(|(_, p)| p.subscriber_count() > 0);
        let tail = len.saturating_sub(self.request.size());
        for server in server_ids(&self.shared.root, &self.shared.service) {
            if servers.iter().any(|(s, _)| *s == server) {
                continue;
            }
            let config = PublisherConfig {
                topic: self.shared.topic,
                queue_depth: 16,
                max_loans: 4,
                history: 0,
                overflow: Overflow::Fail,
                max_tail_bytes: if self.request.ty().has_relative() {
                    tail.max(64)
                } else {
                    0
                },
                ..PublisherConfig::default()
            };
            let name = request_topic(&self.shared.service, server)?;
            if let Ok(Some(p)) = RawPublisher::open_part(
                self.shared.root_path.as_deref(),
                &name,
                &self.request,
                config,
            ) {
                servers.push((server, p));
            }
        }
        let n = servers.len();
        for k in 0..n {
            let i = (self.next_server.get() + k) % n;
            if servers[i].1.connected() > 0 {
                self.next_server.set(i + 1);
                return Ok(servers[i].0);
            }
        }
        Err(self
            .shared
            .gone("no server of the service is running".to_owned()))
    }
}

impl Drop for RawClient {
    fn drop(&mut self) {
        self.servers.get_mut().clear();
        // SAFETY: dropped once, here; nothing borrows it (no sample outlives a `call`).
        unsafe { ManuallyDrop::drop(&mut self.responses) };
        self.shared.leave();
    }
}
