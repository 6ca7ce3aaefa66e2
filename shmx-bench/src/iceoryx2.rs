//! iceoryx2 (from crates.io, feature `compare-iceoryx2`): the same ping-pong and throughput
//! as shmx, over iceoryx2's publish-subscribe services of `[u8; N]` (`ipc::Service`).
//!
//! - Ping-pong (id `iceoryx2`): services `…/ping` (parent to child) and `…/pong` (child to
//!   parent), one publisher and one subscriber each. Each side loans a sample with
//!   `loan_uninit()`, writes only the 8-byte counter at its start, and sends it; the receiver
//!   polls `receive()` with `std::hint::spin_loop()` between polls (as `shmx-spin` does), checks
//!   the counter, answers first and then releases the ping's sample.
//! - Throughput (id `iceoryx2-stream`): service `…/stream` to 1 or 4 subscribers, subscriber
//!   buffers of 256 samples, the 8-byte message number written in place; subscribers poll
//!   `receive()` with `spin_loop()` (and yield every 128 empty polls when the processes
//!   outnumber the CPUs, as `shmx-stream` does). Answers go back on `…/ack` (`u64`).
//!
//! Nothing is dropped: every service is created with `enable_safe_overflow(false)` (a full
//! subscriber buffer is never overwritten) and every publisher with
//! `BackpressureStrategy::RetryUntilDelivered` (a publisher that meets a full buffer waits
//! until there is room, iceoryx2's own adaptive wait: it yields, and sleeps after 10,000
//! yields); no history. The sequence checks would fail on any loss.
//!
//! # Files
//!
//! iceoryx2 keeps static service and node files under its root path (`/tmp/iceoryx2` by
//! default) and its shared memory under `/dev/shm`, named with a prefix (`iox2_`). Each run
//! sets both in the `Config` of its nodes: the root path is the run directory itself (so those
//! files go away with it), the prefix `iox2_<run directory name>_`, and the service names
//! start with the run directory's name too. Whatever shared memory is still there with that
//! prefix when the parent's session ends (a child that died, say) is removed then, and the
//! first run of a process also removes what runs of dead processes left (killed before they
//! could clean up).

use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::throughput::Idle;
use super::{
    mismatch, read_header, with_payload, PingPong, Result, Session, Stream, Throughput, STOP,
};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::{
    ipc, BackpressureStrategy, Config, FileName, LogLevel, Node, NodeBuilder, Path as IoxPath,
    PortFactory as _, SemanticString as _, ServiceName, SignalHandlingMode,
};
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;
use std::fmt::Debug;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// iceoryx2 ping-pong (id `iceoryx2`) and throughput (id `iceoryx2-stream`).
#[derive(Debug, Clone, Copy)]
pub struct Iceoryx2;

/// Ping-pong: subscriber buffer, like `shmx-spin`'s queue depth.
const PING_BUFFER: usize = 4;
/// Throughput: subscriber buffer, like `shmx-stream`'s queue depth.
const STREAM_BUFFER: usize = 256;
/// Throughput: buffer of the parent's acknowledgement subscriber (per publisher).
const ACK_BUFFER: usize = 4;
/// Samples a publisher may loan at once, and a subscriber hold at once.
const MAX_LOANS: usize = 2;
/// The flush bit of a message number (as in [`super::throughput`]).
const FLUSH: u64 = 1 << 62;
/// Where POSIX shared memory objects live.
const SHM_DIR: &str = "/dev/shm";
/// The start of this harness's iceoryx2 prefixes; the run directory's name follows.
const PREFIX: &str = "iox2_";

type Pub<T> = Publisher<ipc::Service, T, ()>;
type Sub<T> = Subscriber<ipc::Service, T, ()>;
type Service<T> = PubSub<ipc::Service, T, ()>;

/// The name of the run directory `root` (`shmx-bench-<pid>-<random>`).
pub(super) fn run_name(root: &Path) -> Result<&str> {
    root.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("run directory {} has no usable name", root.display()).into())
}

/// The iceoryx2 prefix of the run in `root`: `iox2_<run name>_`.
fn prefix(root: &Path) -> Result<String> {
    Ok(format!("{PREFIX}{}_", run_name(root)?))
}

/// A node whose files all belong to the run in `root`: root path `root`, prefix
/// [`prefix`]`(root)`, no signal handlers.
pub(super) fn node(root: &Path) -> Result<Node<ipc::Service>> {
    // Warnings (such as a missing config file, which this harness does not use) are noise in
    // a benchmark; errors still show.
    iceoryx2::prelude::set_log_level(LogLevel::Error);
    let mut config = Config::default();
    config
        .global
        .set_root_path(&IoxPath::new(root.as_os_str().as_bytes())?);
    config.global.prefix = FileName::new(prefix(root)?.as_bytes())?;
    Ok(NodeBuilder::new()
        .config(&config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()?)
}

/// The publish-subscribe service `<run name>/<topic>`, opened or created with a buffer of
/// `buffer` samples per subscriber and nothing ever overwritten.
fn service<T: Debug + iceoryx2::prelude::ZeroCopySend>(
    node: &Node<ipc::Service>,
    root: &Path,
    topic: &str,
    (publishers, subscribers, buffer): (usize, usize, usize),
) -> Result<Service<T>> {
    let name: ServiceName = format!("{}/{topic}", run_name(root)?).as_str().try_into()?;
    Ok(node
        .service_builder(&name)
        .publish_subscribe::<T>()
        .max_publishers(publishers)
        .max_subscribers(subscribers)
        .subscriber_max_buffer_size(buffer)
        .subscriber_max_borrowed_samples(MAX_LOANS)
        .history_size(0)
        .enable_safe_overflow(false)
        .open_or_create()?)
}

/// A publisher that waits for room instead of dropping.
fn publisher<T: Debug + iceoryx2::prelude::ZeroCopySend>(service: &Service<T>) -> Result<Pub<T>> {
    Ok(service
        .publisher_builder()
        .max_loaned_samples(MAX_LOANS)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?)
}

fn subscriber<T: Debug + iceoryx2::prelude::ZeroCopySend>(
    service: &Service<T>,
    buffer: usize,
) -> Result<Sub<T>> {
    Ok(service.subscriber_builder().buffer_size(buffer).create()?)
}

/// Loans a sample, writes `value` into its first 8 bytes and sends it; the rest of the
/// payload is left as it is.
#[inline(always)]
fn publish_header<const N: usize>(publisher: &Pub<[u8; N]>, value: u64) -> Result<()> {
    const { assert!(N >= 8, "the payload holds an 8-byte counter") };
    let mut sample = publisher.loan_uninit()?;
    let ptr = sample.payload_mut().as_mut_ptr().cast::<u64>();
    // SAFETY: the loaned chunk holds `N >= 8` writable bytes of payload, loaned to this sample
    // alone; `write_unaligned` needs no alignment.
    unsafe { ptr.write_unaligned(value) };
    // SAFETY: every byte of the payload holds a value: the data segment is a POSIX shared
    // memory object that the kernel zero-filled when the publisher created it, mapped with
    // `mmap`, and which since holds only bytes that earlier samples wrote; memory that comes
    // from `mmap` is never uninitialised to the compiler. Every bit pattern is a valid
    // `[u8; N]`.
    let sample = unsafe { sample.assume_init() };
    sample.send()?;
    Ok(())
}

/// Removes, when dropped, the shared memory objects that iceoryx2 left under `/dev/shm` with
/// one run's prefix. The parent holds it after everything else of the run (ports, services,
/// node, children), so it runs last.
pub(super) struct Residue {
    prefix: String,
}

impl Residue {
    /// The residue of the run in `root`; the first one of a process also removes the residue
    /// of runs whose process is gone.
    pub(super) fn new(root: &Path) -> Result<Residue> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(sweep_stale);
        Ok(Residue {
            prefix: prefix(root)?,
        })
    }
}

impl Drop for Residue {
    fn drop(&mut self) {
        remove_shm(|name| name.starts_with(&self.prefix));
    }
}

/// Removes every entry of `/dev/shm` whose name satisfies `matches`.
fn remove_shm(mut matches: impl FnMut(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(SHM_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(&mut matches) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes the shared memory of runs whose process no longer exists: names
/// `iox2_shmx-bench-<pid>-…` whose pid has no `/proc` entry.
fn sweep_stale() {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell who is alive
    }
    let stale = format!("{PREFIX}shmx-bench-");
    remove_shm(|name| {
        name.strip_prefix(&stale)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    });
}

// ---------------------------------------------------------------------------------------
// Ping-pong
// ---------------------------------------------------------------------------------------

/// One side of the ping-pong: what it sends and what it receives. Fields drop in order:
/// ports, then services, then the node.
struct Ports<const N: usize> {
    tx: Pub<[u8; N]>,
    rx: Sub<[u8; N]>,
    tx_service: Service<[u8; N]>,
    rx_service: Service<[u8; N]>,
    _node: Node<ipc::Service>,
}

impl<const N: usize> Ports<N> {
    /// This side's ports: publishing on `tx`, subscribed to `rx`.
    fn open(root: &Path, tx: &str, rx: &str) -> Result<Ports<N>> {
        let node = node(root)?;
        let limits = (1, 1, PING_BUFFER);
        let tx_service = service::<[u8; N]>(&node, root, tx, limits)?;
        let rx_service = service::<[u8; N]>(&node, root, rx, limits)?;
        Ok(Ports {
            tx: publisher(&tx_service)?,
            rx: subscriber(&rx_service, PING_BUFFER)?,
            tx_service,
            rx_service,
            _node: node,
        })
    }
}

const PING: &str = "ping";
const PONG: &str = "pong";

struct Iceoryx2Session<const N: usize> {
    ports: Ports<N>,
    peer: Option<Peer>,
    seq: u64,
    _residue: Residue,
}

impl PingPong for Iceoryx2 {
    fn id(&self) -> &'static str {
        "iceoryx2"
    }

    fn describe(&self) -> &'static str {
        "iceoryx2 publish-subscribe, receivers spinning on receive()"
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        with_payload!(PingPong::id(self), payload, N => {
            let residue = Residue::new(run.path())?;
            let ports = Ports::<N>::open(run.path(), PING, PONG)?;
            let spawned = run.spawn(PingPong::id(self), payload, "", ChildStdio::Null)?;
            if !crate::wait_until(PEER_TIMEOUT, || {
                ports.tx_service.dynamic_config().number_of_subscribers() >= 1
                    && ports.rx_service.dynamic_config().number_of_publishers() >= 1
            }) {
                return Err("the iceoryx2 child did not connect".into());
            }
            Ok(Box::new(Iceoryx2Session::<N> {
                ports,
                peer: Some(spawned.peer),
                seq: 0,
                _residue: residue,
            }) as Box<dyn Session>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        with_payload!(PingPong::id(self), env.payload, N => ping_child::<N>(&env.root))
    }
}

fn ping_child<const N: usize>(root: &Path) -> Result<()> {
    let ports = Ports::<N>::open(root, PONG, PING)?;
    loop {
        let sample = super::spin_wait(|| Ok(ports.rx.receive()?))?;
        let v = read_header(sample.payload());
        if v == STOP {
            return Ok(());
        }
        // Answer first, then hand the ping's sample back.
        publish_header(&ports.tx, v)?;
        drop(sample);
    }
}

impl<const N: usize> Session for Iceoryx2Session<N> {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (ping, pong, seq) = (&self.ports.tx, &self.ports.rx, &mut self.seq);
        super::timed_round_trips(n, rtts, || {
            *seq += 1;
            publish_header(ping, *seq)?;
            let sample = super::spin_wait(|| Ok(pong.receive()?))?;
            let v = read_header(sample.payload());
            if v != *seq {
                return Err(mismatch("iceoryx2 pong", *seq, v));
            }
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        let ping = &self.ports.tx;
        Ok(vec![peer.stop(|| publish_header(ping, STOP))?])
    }
}

// ---------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------

const STREAM: &str = "stream";
const ACK: &str = "ack";

/// The service limits of the stream and of the acknowledgements.
fn stream_limits(subscribers: usize) -> (usize, usize, usize) {
    (1, subscribers, STREAM_BUFFER)
}

fn ack_limits(subscribers: usize) -> (usize, usize, usize) {
    (subscribers, 1, ACK_BUFFER)
}

/// The parent of a throughput run. Fields drop in order: ports, services, node, children,
/// then the residue.
struct Iceoryx2Sender<const N: usize> {
    stream: Pub<[u8; N]>,
    acks: Sub<u64>,
    _stream_service: Service<[u8; N]>,
    _ack_service: Service<u64>,
    _node: Node<ipc::Service>,
    subscribers: usize,
    peers: Vec<Peer>,
    seq: u64,
    _residue: Residue,
}

impl Throughput for Iceoryx2 {
    fn id(&self) -> &'static str {
        "iceoryx2-stream"
    }

    fn describe(&self) -> &'static str {
        "iceoryx2 publish-subscribe, RetryUntilDelivered, subscribers spinning on receive()"
    }

    fn start(&self, payload: usize, subscribers: usize, run: &RunDir) -> Result<Box<dyn Stream>> {
        with_payload!(Throughput::id(self), payload, N => {
            let root = run.path();
            let residue = Residue::new(root)?;
            let node = node(root)?;
            let stream_service = service::<[u8; N]>(&node, root, STREAM, stream_limits(subscribers))?;
            let ack_service = service::<u64>(&node, root, ACK, ack_limits(subscribers))?;
            let stream = publisher(&stream_service)?;
            let acks = subscriber(&ack_service, ACK_BUFFER)?;
            // The children's affinity may be one CPU (pinning): the parent decides.
            let arg = format!("{subscribers} {}", u8::from(Idle::new(subscribers).yields));
            let peers = (0..subscribers)
                .map(|_| {
                    Ok(run.spawn(Throughput::id(self), payload, &arg, ChildStdio::Null)?.peer)
                })
                .collect::<Result<Vec<_>>>()?;
            if !crate::wait_until(PEER_TIMEOUT, || {
                stream_service.dynamic_config().number_of_subscribers() == subscribers
                    && ack_service.dynamic_config().number_of_publishers() == subscribers
            }) {
                return Err("the iceoryx2-stream subscribers did not connect".into());
            }
            Ok(Box::new(Iceoryx2Sender::<N> {
                stream,
                acks,
                _stream_service: stream_service,
                _ack_service: ack_service,
                _node: node,
                subscribers,
                peers,
                seq: 0,
                _residue: residue,
            }) as Box<dyn Stream>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let (subscribers, yields) = env
            .arg
            .split_once(' ')
            .ok_or("iceoryx2-stream children need `<subscribers> <yields>`")?;
        let (subscribers, yields) = (subscribers.parse()?, yields == "1");
        with_payload!(Throughput::id(self), env.payload, N => {
            stream_child::<N>(&env.root, subscribers, yields)
        })
    }
}

fn stream_child<const N: usize>(root: &Path, subscribers: usize, yields: bool) -> Result<()> {
    let node = node(root)?;
    let stream_service = service::<[u8; N]>(&node, root, STREAM, stream_limits(subscribers))?;
    let ack_service = service::<u64>(&node, root, ACK, ack_limits(subscribers))?;
    let sub = subscriber(&stream_service, STREAM_BUFFER)?;
    let ack = publisher(&ack_service)?;
    let (mut last, mut idle) = (0u64, Idle::with_yields(yields));
    loop {
        let Some(sample) = sub.receive()? else {
            idle.wait();
            continue;
        };
        let h = read_header(sample.payload());
        drop(sample);
        if h == STOP {
            return Ok(());
        }
        let n = h & !FLUSH;
        if n != last + 1 {
            return Err(format!("expected message {}, received {n}", last + 1).into());
        }
        last = n;
        if h & FLUSH != 0 {
            ack.send_copy(last)?;
        }
    }
}

impl<const N: usize> Stream for Iceoryx2Sender<N> {
    fn send(&mut self, n: u64) -> Result<Duration> {
        let start = Instant::now();
        if n == 0 {
            return Ok(start.elapsed());
        }
        for _ in 1..n {
            self.seq += 1;
            publish_header(&self.stream, self.seq)?;
        }
        self.seq += 1;
        publish_header(&self.stream, self.seq | FLUSH)?;
        let (mut answered, mut idle) = (0, Idle::new(self.subscribers));
        while answered < self.subscribers {
            match self.acks.receive()? {
                Some(count) if *count.payload() == self.seq => answered += 1,
                Some(count) => {
                    return Err(mismatch(
                        "iceoryx2-stream subscriber",
                        self.seq,
                        *count.payload(),
                    ))
                }
                None => idle.wait(),
            }
        }
        Ok(start.elapsed())
    }

    fn finish(self: Box<Self>) -> Result<Vec<Placement>> {
        let this = *self;
        this.peers.iter().for_each(Peer::expect_exit);
        publish_header(&this.stream, STOP)?;
        this.peers
            .into_iter()
            .map(|p| p.wait(PEER_TIMEOUT))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Paced one-way latency, receiver waiting in iceoryx2's WaitSet (`iceoryx2-waitset`)
// ---------------------------------------------------------------------------------------

const PACED: &str = "paced";
const PACED_EVENT: &str = "paced-event";

/// The event service `<run name>/<topic>` for one notifier and one listener.
fn event_service(
    node: &Node<ipc::Service>,
    root: &Path,
    topic: &str,
) -> Result<iceoryx2::service::port_factory::event::PortFactory<ipc::Service>> {
    let name: ServiceName = format!("{}/{topic}", run_name(root)?).as_str().try_into()?;
    Ok(node
        .service_builder(&name)
        .event()
        .max_notifiers(1)
        .max_listeners(1)
        .open_or_create()?)
}

/// The parent of a paced run of `iceoryx2-waitset`: a publisher of the 8-byte send stamp that
/// notifies the event service after each send (what wakes a receiver in iceoryx2's
/// `WaitSet`). Fields drop in order: ports, services, node, then the residue.
pub(crate) struct PacedSender {
    publisher: Pub<[u8; super::paced::PAYLOAD]>,
    notifier: iceoryx2::port::notifier::Notifier<ipc::Service>,
    _service: Service<[u8; super::paced::PAYLOAD]>,
    _events: iceoryx2::service::port_factory::event::PortFactory<ipc::Service>,
    _node: Node<ipc::Service>,
    _residue: Residue,
}

impl PacedSender {
    /// Sends the current time and notifies; returns the time sent.
    #[inline(always)]
    pub(crate) fn send_now(&self) -> Result<u64> {
        let stamp = crate::monotonic_ns();
        publish_header(&self.publisher, stamp)?;
        self.notifier.notify()?;
        Ok(stamp)
    }

    /// Tells the receiver to stop.
    pub(crate) fn stop(&self) -> Result<()> {
        publish_header(&self.publisher, STOP)?;
        self.notifier.notify()?;
        Ok(())
    }
}

/// The services of a paced run in `root`: (node, publish-subscribe, event).
#[allow(clippy::type_complexity)]
fn paced_services(
    root: &Path,
) -> Result<(
    Node<ipc::Service>,
    Service<[u8; super::paced::PAYLOAD]>,
    iceoryx2::service::port_factory::event::PortFactory<ipc::Service>,
)> {
    let node = node(root)?;
    let limits = (1, 1, super::paced::QUEUE_DEPTH);
    let service = service::<[u8; super::paced::PAYLOAD]>(&node, root, PACED, limits)?;
    let events = event_service(&node, root, PACED_EVENT)?;
    Ok((node, service, events))
}

/// Parent side of a paced run: creates the services and ports, starts the child `child_id`
/// with `arg` and waits until it is connected.
pub(crate) fn paced_start(
    run: &RunDir,
    child_id: &str,
    arg: &str,
) -> Result<(PacedSender, super::process::Spawned)> {
    let residue = Residue::new(run.path())?;
    let (node, service, events) = paced_services(run.path())?;
    let publisher = publisher(&service)?;
    let notifier = events.notifier_builder().create()?;
    let spawned = run.spawn(child_id, super::paced::PAYLOAD, arg, ChildStdio::Null)?;
    if !crate::wait_until(PEER_TIMEOUT, || {
        service.dynamic_config().number_of_subscribers() >= 1
            && events.dynamic_config().number_of_listeners() >= 1
    }) {
        return Err("the paced iceoryx2-waitset child did not connect".into());
    }
    Ok((
        PacedSender {
            publisher,
            notifier,
            _service: service,
            _events: events,
            _node: node,
            _residue: residue,
        },
        spawned,
    ))
}

/// Child side of a paced run: waits in a `WaitSet` on the event's listener; on each wake-up
/// consumes the notifications and receives every sample that waits, recording its latency
/// ([`super::paced::record`]), until one says stop.
pub(crate) fn paced_child(root: &Path, latencies: &mut Vec<u64>) -> Result<()> {
    use iceoryx2::prelude::{CallbackProgression, WaitSetBuilder};
    use iceoryx2::waitset::WaitSetRunResult;
    let (_node, service, events) = paced_services(root)?;
    let sub = subscriber(&service, super::paced::QUEUE_DEPTH)?;
    let listener = events.listener_builder().create()?;
    let waitset = WaitSetBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()?;
    let _guard = waitset.attach_notification(&listener)?;
    let mut last = 0;
    let mut failed: Option<super::Error> = None;
    let mut on_event = |_| {
        let mut step = || -> Result<bool> {
            listener.try_wait(|_| {})?;
            while let Some(sample) = sub.receive()? {
                let now = crate::monotonic_ns();
                let sent = read_header(sample.payload());
                drop(sample);
                if sent == STOP {
                    return Ok(true);
                }
                super::paced::record(latencies, &mut last, sent, now)?;
            }
            Ok(false)
        };
        match step() {
            Ok(false) => CallbackProgression::Continue,
            Ok(true) => CallbackProgression::Stop,
            Err(e) => {
                failed = Some(e);
                CallbackProgression::Stop
            }
        }
    };
    // Signal handling is off: only the callback stops the loop.
    while waitset.wait_and_process_once(&mut on_event)? != WaitSetRunResult::StopRequest {}
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
