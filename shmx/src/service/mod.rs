//! The service segment: one file per topic, `<root>/<topic>/service`.
//!
//! ```text
//! offset 0      ServiceParams   magic, layout version, type fingerprint/size/name, limits and
//!                               the offsets below; written once before the file is linked
//! offset 512    ServiceShared   generation (bumped on every slot change), next incarnation
//! schema_off    schema text     Schema::describe() of the message type, then the type's name
//! pub_off       PubSlot × max_publishers
//! sub_off       SubSlot × max_subscribers
//! conn_off      Connection × (max_publishers × max_subscribers), row-major by publisher:
//!                 delivery ring: head | tail | seen | ring_capacity slots (publisher → subscriber)
//!                 return ring:   head | tail | return_capacity slots (subscriber → publisher)
//! ```
//! Heads and tails sit on their own cache lines. Every number in `ServiceParams` is checked
//! against the file's length when the file is opened; peers never re-read them afterwards.
//!
//! A slot's `state` word packs the owner's incarnation (a number unique within the topic)
//! with the slot state, so one load tells both: `incarnation << 2 | state`.

mod layout;
pub(crate) mod mismatch;
mod sweep;
mod types;

pub use layout::LAYOUT_VERSION;
pub(crate) use layout::*;
pub(crate) use types::TypeFacts;

use crate::config::TopicConfig;
use crate::dir::Dir;
use crate::error::{Error, Result};
use crate::message::{ShmMessage, MAX_TYPE_NAME_LEN};
use crate::name::TopicName;
use crate::ring::{DeliveryRing, ReturnRing};
use crate::root::{Root, RootLock};
use crate::segment::{self, Access, Mapping};
use crate::sync::{AtomicU64, Ordering};
use crate::trust::Trust;
use std::sync::Arc;
use std::time::Duration;

/// An open service segment.
pub(crate) struct Service {
    map: Mapping,
    layout: Layout,
    params: ServiceParams,
    name: TopicName,
    /// The topic's directory, opened (and checked) once.
    dir: Dir,
    root: Arc<Root>,
    /// What the endpoint that opened the topic accepts (see `trust`).
    trust: Trust,
}

// SAFETY: `Service` only holds a mapping of shared memory and plain values; every access to
// the shared words goes through atomics, so using it from another thread is as safe as from
// another process.
unsafe impl Send for Service {}

/// Who is opening the topic.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

impl Service {
    /// Opens the topic's service segment, creating it (and the topic's directory) from
    /// `config` if it does not exist. Call with the root lock held.
    pub(crate) fn open_or_create<T: ShmMessage>(
        root: &Arc<Root>,
        name: &TopicName,
        config: &TopicConfig,
        trust: &Trust,
        lock: &RootLock,
    ) -> Result<Service> {
        if let Some(problem) = T::SCHEMA.name_problem() {
            // Only a hand-written `ShmMessage` impl gets here: the derive refuses such names.
            return Err(Error::InvalidConfig {
                topic: name.as_str().to_owned(),
                reason: format!(
                    "the message type's schema cannot be written down: {problem} (see \
                     shmx::schema_text)"
                ),
            });
        }
        Self::open_or_create_as(root, name, config, trust, lock, &TypeFacts::of::<T>())
    }

    /// [`open_or_create`](Self::open_or_create) for a message type described by `facts`.
    pub(crate) fn open_or_create_as(
        root: &Arc<Root>,
        name: &TopicName,
        config: &TopicConfig,
        trust: &Trust,
        lock: &RootLock,
        facts: &TypeFacts,
    ) -> Result<Service> {
        config.check(name.as_str())?;
        let encoded = name.encoded();
        // The group the topic's files are shared with, if its mode shares them.
        let group = trust.group().filter(|_| config.mode & 0o070 != 0);
        for _ in 0..3 {
            if let Some(service) = Self::open(root, name, trust)? {
                service.sweep(lock);
                if service.is_unused() {
                    // Left behind by processes that all died: start afresh, with this
                    // process's type and configuration.
                    service.remove_if_unused(lock);
                    continue;
                }
                service.check_type(facts)?;
                return Ok(service);
            }
            let made = root
                .dir()
                .create_dir(encoded, Trust::dir_mode(config.mode), group)?;
            let created = root
                .dir()
                .open_dir(encoded, trust)
                .and_then(|dir| match dir {
                    Some(dir) => Self::create(root, name, dir, config, trust, group, facts),
                    None => Ok(None),
                });
            match created {
                Ok(Some(service)) => return Ok(service),
                Ok(None) => {}
                Err(e) => {
                    if made {
                        // Nothing of a topic that could not be made stays behind.
                        root.dir().remove_dir(encoded);
                    }
                    return Err(e);
                }
            }
        }
        Err(Error::corrupt(
            root.dir().join(encoded).join("service"),
            "the file appears and disappears while it is being opened",
        ))
    }

    fn create(
        root: &Arc<Root>,
        name: &TopicName,
        dir: Dir,
        config: &TopicConfig,
        trust: &Trust,
        group: Option<u32>,
        facts: &TypeFacts,
    ) -> Result<Option<Service>> {
        let schema = &facts.schema;
        let type_name = facts.name.as_bytes();
        if type_name.len() > MAX_TYPE_NAME_LEN {
            return Err(Error::InvalidConfig {
                topic: name.as_str().to_owned(),
                reason: format!(
                    "the type name is {} bytes, over the limit of {MAX_TYPE_NAME_LEN}",
                    type_name.len()
                ),
            });
        }
        if schema.len() > MAX_SCHEMA_LEN {
            return Err(Error::InvalidConfig {
                topic: name.as_str().to_owned(),
                reason: format!(
                    "the schema text of `{}` is {} bytes, over the limit of {MAX_SCHEMA_LEN}",
                    facts.name,
                    schema.len()
                ),
            });
        }
        let schema_off = SHARED_OFF + core::mem::size_of::<ServiceShared>();
        let ring_capacity = config.max_queue_depth.next_power_of_two();
        let return_capacity = (config.max_queue_depth + config.max_held + 2).next_power_of_two();
        let layout = Layout::compute(
            config.max_publishers,
            config.max_subscribers,
            ring_capacity,
            return_capacity,
            config.max_held,
            config.max_history,
            schema_off + schema.len() + type_name.len(),
        )
        .ok_or_else(|| Error::InvalidConfig {
            topic: name.as_str().to_owned(),
            reason: "the topic's limits overflow the address space".into(),
        })?;
        let params = ServiceParams {
            magic: SERVICE_MAGIC,
            version: LAYOUT_VERSION,
            mode: config.mode,
            total_len: layout.total_len as u64,
            fingerprint: facts.fingerprint,
            type_size: facts.size as u64,
            type_align: facts.align as u64,
            sample_align: facts.sample_align as u64,
            flags: if facts.has_tail { HAS_TAIL } else { 0 },
            schema_off: schema_off as u64,
            schema_len: schema.len() as u64,
            type_name_len: type_name.len() as u64,
            max_publishers: layout.max_publishers as u32,
            max_subscribers: layout.max_subscribers as u32,
            ring_capacity: ring_capacity as u32,
            return_capacity: return_capacity as u32,
            max_held: layout.max_held as u32,
            max_history: layout.max_history as u32,
            pub_off: layout.pub_off as u64,
            pub_stride: layout.pub_stride as u64,
            sub_off: layout.sub_off as u64,
            sub_stride: layout.sub_stride as u64,
            conn_off: layout.conn_off as u64,
            conn_stride: layout.conn_stride as u64,
        };
        let created =
            segment::create(&dir, "service", layout.total_len, config.mode, group, |m| {
                // SAFETY: the mapping is `total_len` bytes, fresh (zero-filled) and private to
                // this process until linked; `ServiceParams` (≤ 512 bytes, align 8) fits at the
                // page-aligned offset 0, and the schema text and the type name after it fit at
                // `schema_off` by the layout (computed with both lengths).
                unsafe {
                    m.ptr().cast::<ServiceParams>().write(params);
                    std::ptr::copy_nonoverlapping(
                        schema.as_ptr(),
                        m.ptr().add(schema_off),
                        schema.len(),
                    );
                    std::ptr::copy_nonoverlapping(
                        type_name.as_ptr(),
                        m.ptr().add(schema_off + schema.len()),
                        type_name.len(),
                    );
                }
                Ok(())
            })?;
        Ok(created.map(|map| Service {
            map,
            layout,
            params,
            name: name.clone(),
            dir,
            root: Arc::clone(root),
            trust: *trust,
        }))
    }

    fn open(root: &Arc<Root>, name: &TopicName, trust: &Trust) -> Result<Option<Service>> {
        let Some(dir) = root.dir().open_dir(name.encoded(), trust)? else {
            return Ok(None);
        };
        let Some(file) = dir.open_file("service", Access::ReadWrite, trust)? else {
            return Ok(None);
        };
        let path = &dir.join("service");
        let file_len = segment::file_len(&file, path)?;
        if file_len < SHARED_OFF as u64 {
            return Err(Error::corrupt(
                path,
                format!("file is only {file_len} bytes"),
            ));
        }
        let head = segment::map(&file, path, 0, SHARED_OFF, Access::ReadOnly)?;
        // SAFETY: the mapping is at least 512 bytes, page-aligned, and `ServiceParams` is
        // plain integers (every bit pattern valid). A peer may be writing it (it never should
        // after linking); a volatile read takes one snapshot that is then validated.
        let params = unsafe { head.ptr().cast::<ServiceParams>().read_volatile() };
        drop(head);
        if params.magic != SERVICE_MAGIC {
            return Err(Error::corrupt(
                path,
                "not a shmx service segment (bad magic)",
            ));
        }
        if params.version != LAYOUT_VERSION {
            return Err(Error::Version {
                path: path.to_owned(),
                found: params.version,
                expected: LAYOUT_VERSION,
            });
        }
        let layout = params
            .layout(file_len)
            .map_err(|r| Error::corrupt(path, r))?;
        // The mode every participant gives the files it creates here: a valid permission
        // mode, within what this endpoint accepts.
        if params.mode & !0o777 != 0 || params.mode & 0o600 != 0o600 {
            return Err(Error::corrupt(
                path,
                format!(
                    "stored file mode {:o} is not a permission mode",
                    params.mode
                ),
            ));
        }
        trust.check_stored_mode(params.mode, path)?;
        let map = segment::map(&file, path, 0, layout.total_len, Access::ReadWrite)?;
        Ok(Some(Service {
            map,
            layout,
            params,
            name: name.clone(),
            dir,
            root: Arc::clone(root),
            trust: *trust,
        }))
    }

    /// Opens an existing topic of message type `T` that some participant still uses, never
    /// creating one: `Ok(None)` if there is none (or only one that every participant left).
    /// Call with the root lock held.
    pub(crate) fn open_existing<T: ShmMessage>(
        root: &Arc<Root>,
        name: &TopicName,
        trust: &Trust,
        lock: &RootLock,
    ) -> Result<Option<Service>> {
        Self::open_existing_as(root, name, trust, lock, &TypeFacts::of::<T>())
    }

    /// [`open_existing`](Self::open_existing) of a message type described by `facts`.
    pub(crate) fn open_existing_as(
        root: &Arc<Root>,
        name: &TopicName,
        trust: &Trust,
        lock: &RootLock,
        facts: &TypeFacts,
    ) -> Result<Option<Service>> {
        let Some(service) = Self::open(root, name, trust)? else {
            return Ok(None);
        };
        service.sweep(lock);
        if service.is_unused() {
            return Ok(None);
        }
        service.check_type(facts)?;
        Ok(Some(service))
    }

    /// Opens an existing topic whatever its message type (for tools); `Ok(None)` if there is
    /// no such topic.
    pub(crate) fn open_untyped(
        root: &Arc<Root>,
        name: &TopicName,
        trust: &Trust,
    ) -> Result<Option<Service>> {
        Self::open(root, name, trust)
    }

    /// The topic's header, as read (and validated) when it was opened.
    pub(crate) fn params(&self) -> &ServiceParams {
        &self.params
    }

    /// The schema text stored in the topic (`Schema::describe` of its message type).
    pub(crate) fn schema_text(&self) -> String {
        let (off, len) = (
            self.params.schema_off as usize,
            self.params.schema_len as usize,
        );
        // SAFETY: `schema_off + schema_len` was checked against the file length when the file
        // was opened, and the mapping covers the whole file; the bytes are read as `u8`.
        let bytes = unsafe { std::slice::from_raw_parts(self.map.ptr().add(off), len) };
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// The message type's name, as stored in the topic (whole: never cut).
    pub(crate) fn type_name(&self) -> String {
        let off = (self.params.schema_off + self.params.schema_len) as usize;
        let len = self.params.type_name_len as usize;
        // SAFETY: `schema_off + schema_len + type_name_len` was checked against the file
        // length when the file was opened, and the mapping covers the whole file; the bytes
        // are read as `u8`.
        let bytes = unsafe { std::slice::from_raw_parts(self.map.ptr().add(off), len) };
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// Whether the topic's samples carry a tail after the message (relative pointers, or an
    /// rkyv archive), as stored in the topic.
    pub(crate) fn has_tail(&self) -> bool {
        self.params.flags & HAS_TAIL != 0
    }

    /// The message type's fingerprint and size, and the alignment of a sample's first byte in
    /// every data segment (`sample_align`), as stored in the topic.
    pub(crate) fn type_facts(&self) -> (u64, usize, usize) {
        (
            self.params.fingerprint,
            self.params.type_size as usize,
            self.params.sample_align as usize,
        )
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn topic(&self) -> &str {
        self.name.as_str()
    }

    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    pub(crate) fn root(&self) -> &Arc<Root> {
        &self.root
    }

    pub(crate) fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The mode of the files participants create in this topic: the stored one (checked to
    /// lie within this endpoint's when the topic was opened).
    pub(crate) fn mode(&self) -> u32 {
        self.params.mode
    }

    /// The group of the files participants create in this topic: the shared group, when
    /// the topic's mode shares them with one.
    pub(crate) fn group(&self) -> Option<u32> {
        self.trust.group().filter(|_| self.params.mode & 0o070 != 0)
    }

    /// # Safety
    /// `off + size_of::<X>()` must lie inside the mapping and `off` be aligned for `X`, and
    /// `X` must be made only of atomics (valid for every bit pattern, shared-mutable).
    #[inline]
    unsafe fn at<X>(&self, off: usize) -> &X {
        debug_assert!(off + core::mem::size_of::<X>() <= self.map.len());
        // SAFETY: forwarded to the caller.
        unsafe { &*self.map.ptr().add(off).cast::<X>() }
    }

    /// # Safety
    /// As [`Self::at`], for `n` consecutive `AtomicU64` at `off`.
    #[inline]
    unsafe fn words(&self, off: usize, n: usize) -> &[AtomicU64] {
        debug_assert!(off + n * 8 <= self.map.len());
        // SAFETY: forwarded to the caller.
        unsafe { std::slice::from_raw_parts(self.map.ptr().add(off).cast::<AtomicU64>(), n) }
    }

    #[inline]
    pub(crate) fn shared(&self) -> &ServiceShared {
        // SAFETY: offset 512 is inside every valid service file (validated length > 512 +
        // schema), 8-aligned, and `ServiceShared` is two atomics.
        unsafe { self.at(SHARED_OFF) }
    }

    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.shared().generation.load(Ordering::Acquire)
    }

    /// Records a change of the slot tables, and wakes whoever waits for one
    /// ([`wait_for_change`](Self::wait_for_change)).
    pub(crate) fn bump_generation(&self) {
        self.shared().generation.fetch_add(1, Ordering::SeqCst);
        crate::event::wake_all(&self.shared().changed);
    }

    /// Wakes every subscriber that sleeps or waits on its descriptor, so that it looks at
    /// the topic again: after a publisher joined or left (rare: each armed subscriber costs
    /// a connection and a datagram).
    pub(crate) fn notify_subscribers(&self) {
        crate::event::before_notify(false);
        for s in 0..self.layout.max_subscribers {
            let slot = self.sub_slot(s);
            let word = slot.state.load(Ordering::Acquire);
            if state_of(word) == ACTIVE && crate::event::notify(&slot.wake, &slot.sleeping) {
                let sent = crate::signal::notify_once(&self.dir, incarnation_of(word));
                crate::event::rearm_if_failed(&slot.sleeping, sent);
            }
        }
    }

    /// The value to pass to [`wait_for_change`](Self::wait_for_change): read it before
    /// looking at the slots.
    pub(crate) fn change_token(&self) -> u32 {
        self.shared().changed.load(Ordering::Acquire)
    }

    /// Sleeps until a slot changes after `token` was read, or `timeout` passes (spurious
    /// returns allowed).
    pub(crate) fn wait_for_change(&self, token: u32, timeout: Duration) {
        crate::event::wait(&self.shared().changed, token, Some(timeout));
    }

    /// Publisher slot `p` (`p < max_publishers`, else panics: callers index with their own
    /// bounded loop counters, never with numbers read from shared memory).
    #[inline]
    pub(crate) fn pub_slot(&self, p: usize) -> &PubSlot {
        assert!(p < self.layout.max_publishers);
        // SAFETY: `p` is in range and the layout was validated against the file length, so
        // the slot lies inside the mapping, 64-aligned; `PubSlot` is made of atomics.
        unsafe { self.at(self.layout.pub_off + p * self.layout.pub_stride) }
    }

    /// The `(chunk index, sequence)` history pairs of publisher slot `p`.
    pub(crate) fn pub_history(&self, p: usize) -> &[AtomicU64] {
        assert!(p < self.layout.max_publishers);
        let off =
            self.layout.pub_off + p * self.layout.pub_stride + core::mem::size_of::<PubSlot>();
        // SAFETY: the layout reserves `max_history × 16` bytes after each `PubSlot`, inside
        // the validated file, 8-aligned.
        unsafe { self.words(off, self.layout.max_history * 2) }
    }

    /// Subscriber slot `s` (`s < max_subscribers`).
    #[inline]
    pub(crate) fn sub_slot(&self, s: usize) -> &SubSlot {
        assert!(s < self.layout.max_subscribers);
        // SAFETY: as for `pub_slot`.
        unsafe { self.at(self.layout.sub_off + s * self.layout.sub_stride) }
    }

    #[inline]
    fn conn_off(&self, p: usize, s: usize) -> usize {
        assert!(p < self.layout.max_publishers && s < self.layout.max_subscribers);
        self.layout.conn_off + (p * self.layout.max_subscribers + s) * self.layout.conn_stride
    }

    /// The delivery ring from publisher slot `p` to subscriber slot `s`.
    #[inline]
    pub(crate) fn delivery(&self, p: usize, s: usize) -> DeliveryRing<'_> {
        let off = self.conn_off(p, s);
        // SAFETY: the connection's `delivery_ring_bytes(ring_capacity)` lie inside the
        // validated file; head at +0, tail at +64, seen at +128, slots from +192, all
        // 8-aligned atomics.
        unsafe {
            DeliveryRing::new(
                self.at(off),
                self.at(off + LINE),
                self.at(off + 2 * LINE),
                self.words(off + 3 * LINE, self.layout.ring_capacity),
            )
        }
    }

    /// The return ring from subscriber slot `s` to publisher slot `p`.
    #[inline]
    pub(crate) fn returns(&self, p: usize, s: usize) -> ReturnRing<'_> {
        let base = self.conn_off(p, s);
        let off = base + layout::delivery_ring_bytes(self.layout.ring_capacity).unwrap_or(0);
        // SAFETY: the return ring follows the delivery ring inside the connection's stride,
        // which the validated layout keeps inside the file.
        unsafe {
            ReturnRing::new(
                self.at(off),
                self.at(off + LINE),
                self.words(off + 2 * LINE, self.layout.return_capacity),
            )
        }
    }

    /// Claims a free slot in the table of `role`, giving it a new incarnation. Call with the
    /// root lock held. Returns `(slot, incarnation)`.
    pub(crate) fn claim(&self, role: Role, node: u64) -> Result<(usize, u64)> {
        let (n, what) = match role {
            Role::Publisher => (self.layout.max_publishers, "publisher"),
            Role::Subscriber => (self.layout.max_subscribers, "subscriber"),
        };
        let inc = self
            .shared()
            .next_incarnation
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        for i in 0..n {
            let state = match role {
                Role::Publisher => &self.pub_slot(i).state,
                Role::Subscriber => &self.sub_slot(i).state,
            };
            if state
                .compare_exchange(
                    FREE,
                    state_word(inc, CLAIMING),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                match role {
                    Role::Publisher => self.pub_slot(i).node.store(node, Ordering::Relaxed),
                    Role::Subscriber => self.sub_slot(i).node.store(node, Ordering::Relaxed),
                }
                return Ok((i, inc));
            }
        }
        Err(Error::TooManyParticipants {
            topic: self.topic().to_owned(),
            role: what,
            max: n,
        })
    }

    /// Whether every slot is free (the topic may be removed).
    pub(crate) fn is_unused(&self) -> bool {
        (0..self.layout.max_publishers)
            .all(|p| self.pub_slot(p).state.load(Ordering::Acquire) == FREE)
            && (0..self.layout.max_subscribers)
                .all(|s| self.sub_slot(s).state.load(Ordering::Acquire) == FREE)
    }

    /// With the root lock held: removes the topic's files if no slot is in use.
    pub(crate) fn remove_if_unused(&self, _lock: &RootLock) {
        if !self.is_unused() {
            return;
        }
        for (name, _) in self.dir.entries().unwrap_or_default() {
            self.dir.remove_file(&name);
        }
        self.root.dir().remove_dir(self.name.encoded());
        // The last one out also takes away what dead processes left in the root.
        crate::node::sweep_root(&self.root);
    }
}

impl Service {
    /// Removes every data segment file of publisher incarnation `inc` (segment 0 and those
    /// its pool grew), as the directory lists them now.
    pub(crate) fn remove_data_files(&self, inc: u64) {
        for k in crate::data::segment_numbers(self, inc) {
            self.dir()
                .remove_file(&crate::data::segment_file_name(inc, k));
        }
    }
}
