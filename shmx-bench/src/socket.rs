//! Socket ping-pongs: a Unix domain stream socket, blocking (`uds`), busy-polled
//! (`uds-poll`: non-blocking socket, spinning on `WouldBlock`) or woken by `epoll`
//! (`uds-epoll`: non-blocking socket, [`EpollStream`]), and TCP over loopback with
//! `TCP_NODELAY` (`tcp`, blocking).
//!
//! Both directions carry the whole payload: the parent writes `N` bytes (`write_all`), the
//! child reads them (`read_exact`) and writes the same `N` bytes back; the first 8 bytes are a
//! counter the parent checks. Socket buffers keep the kernel's default sizes. The parent stops
//! the child by shutting the connection down (the child reads end-of-file at a message
//! boundary).
//!
//! [`StreamSession`] and [`echo`] serve any byte stream, the pipe too ([`super::pipe`]).

use super::epoll::EpollStream;
use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::{mismatch, read_header, write_header, PingPong, Result, Session};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// Which socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unix domain stream socket, blocking reads and writes.
    Uds,
    /// Unix domain stream socket, non-blocking, spinning on `WouldBlock`.
    UdsPoll,
    /// Unix domain stream socket, non-blocking, waiting in `epoll` on `WouldBlock`.
    UdsEpoll,
    /// TCP over 127.0.0.1 with `TCP_NODELAY`, blocking.
    Tcp,
}

/// A socket ping-pong.
#[derive(Debug, Clone, Copy)]
pub struct StreamPingPong {
    kind: Kind,
}

/// Unix domain stream socket, blocking (id `uds`): the reference of the ratios.
pub static UDS: StreamPingPong = StreamPingPong { kind: Kind::Uds };
/// Unix domain stream socket, busy-polling (id `uds-poll`).
pub static UDS_POLL: StreamPingPong = StreamPingPong {
    kind: Kind::UdsPoll,
};
/// Unix domain stream socket, woken by `epoll` (id `uds-epoll`).
pub static UDS_EPOLL: StreamPingPong = StreamPingPong {
    kind: Kind::UdsEpoll,
};
/// TCP loopback with `TCP_NODELAY`, blocking (id `tcp`).
pub static TCP: StreamPingPong = StreamPingPong { kind: Kind::Tcp };

/// Ends the writing direction of a byte stream, so that the peer reads end-of-file once the
/// writer is dropped too.
pub trait CloseWrite {
    /// Ends it (a no-op where dropping the writer is enough).
    fn close_write(&mut self) -> io::Result<()>;
}

impl CloseWrite for UnixStream {
    fn close_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl CloseWrite for TcpStream {
    fn close_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl CloseWrite for std::process::ChildStdin {
    fn close_write(&mut self) -> io::Result<()> {
        Ok(()) // ours is the only write end: dropping it closes the pipe
    }
}

/// Id of [`UDS_EPOLL`] (and of the paced receiver of the same kind).
pub const UDS_EPOLL_ID: &str = "uds-epoll";

/// Writes all of `buf`, spinning while a non-blocking stream says `WouldBlock`.
#[inline]
pub fn write_msg<W: Write>(w: &mut W, buf: &[u8]) -> io::Result<()> {
    let mut off = 0;
    while off < buf.len() {
        match w.write(&buf[off..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(k) => off += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf`, spinning while a non-blocking stream says `WouldBlock`. `Ok(false)` if the
/// stream ended cleanly before the first byte; an error if it ended within the message.
#[inline]
pub fn read_msg<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut off = 0;
    while off < buf.len() {
        match r.read(&mut buf[off..]) {
            Ok(0) if off == 0 => return Ok(false),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(k) => off += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The child of a byte-stream ping-pong: reads `payload` bytes, writes them back, until the
/// stream ends.
pub fn echo<R: Read, W: Write>(mut r: R, mut w: W, payload: usize) -> Result<()> {
    let mut buf = vec![0u8; payload];
    while read_msg(&mut r, &mut buf)? {
        write_msg(&mut w, &buf)?;
    }
    Ok(())
}

/// The parent of a byte-stream ping-pong: writes a ping of the payload's size, reads the pong
/// into the same buffer, checks the counter.
pub struct StreamSession<R: Read, W: Write + CloseWrite> {
    id: &'static str,
    r: R,
    w: Option<W>,
    buf: Vec<u8>,
    peer: Option<Peer>,
    seq: u64,
}

impl<R: Read, W: Write + CloseWrite> StreamSession<R, W> {
    /// A session over `r` and `w` with the child `peer`.
    pub fn new(id: &'static str, r: R, w: W, payload: usize, peer: Peer) -> Self {
        StreamSession {
            id,
            r,
            w: Some(w),
            buf: vec![0u8; payload],
            peer: Some(peer),
            seq: 0,
        }
    }
}

impl<R: Read, W: Write + CloseWrite> Session for StreamSession<R, W> {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (r, buf, seq, id) = (&mut self.r, &mut self.buf, &mut self.seq, self.id);
        let w = self.w.as_mut().ok_or("the session is finished")?;
        super::timed_round_trips(n, rtts, || {
            *seq += 1;
            write_header(buf, *seq);
            write_msg(w, buf)?;
            if !read_msg(r, buf)? {
                return Err(format!("the {id} child closed the stream").into());
            }
            let v = read_header(buf);
            if v != *seq {
                return Err(mismatch(id, *seq, v));
            }
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        let w = self.w.take();
        Ok(vec![peer.stop(move || {
            if let Some(mut w) = w {
                // Dropping the writer closes a pipe; a socket needs the shutdown (the reader
                // holds a second descriptor of it).
                let _ = w.close_write();
                drop(w);
            }
            Ok(())
        })?])
    }
}

/// Accepts one connection on a non-blocking `accept`, within [`PEER_TIMEOUT`].
fn accept<T>(what: &str, mut accept: impl FnMut() -> io::Result<T>) -> Result<T> {
    let mut got = None;
    let mut failed = None;
    crate::wait_until(PEER_TIMEOUT, || match accept() {
        Ok(s) => {
            got = Some(s);
            true
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => {
            failed = Some(e);
            true
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    got.ok_or_else(|| format!("the {what} child did not connect").into())
}

/// Listens on a Unix socket at `path` and accepts `n` connections (children must be started
/// in between: `spawn` is called once the listener exists).
pub(crate) fn accept_unix(
    listener: &UnixListener,
    what: &str,
    n: usize,
) -> Result<Vec<UnixStream>> {
    listener.set_nonblocking(true)?;
    (0..n)
        .map(|_| {
            let s = accept(what, || listener.accept().map(|(s, _)| s))?;
            s.set_nonblocking(false)?;
            Ok(s)
        })
        .collect()
}

impl PingPong for StreamPingPong {
    fn id(&self) -> &'static str {
        match self.kind {
            Kind::Uds => super::UDS_ID,
            Kind::UdsPoll => "uds-poll",
            Kind::UdsEpoll => UDS_EPOLL_ID,
            Kind::Tcp => "tcp",
        }
    }

    fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Uds => "Unix domain stream socket, blocking",
            Kind::UdsPoll => "Unix domain stream socket, busy-polling",
            Kind::UdsEpoll => "Unix domain stream socket, non-blocking, woken by epoll",
            Kind::Tcp => "TCP loopback, TCP_NODELAY, blocking",
        }
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        if payload < 8 {
            return Err(super::unsupported(self.id(), payload));
        }
        let id = self.id();
        match self.kind {
            Kind::Uds | Kind::UdsPoll => {
                let path = run.path().join("pingpong.sock");
                let listener = UnixListener::bind(&path)?;
                let spawned = run.spawn(id, payload, &path.to_string_lossy(), ChildStdio::Null)?;
                let stream = accept_unix(&listener, id, 1)?.remove(0);
                stream.set_nonblocking(self.kind == Kind::UdsPoll)?;
                let r = stream.try_clone()?;
                Ok(Box::new(StreamSession::new(
                    id,
                    r,
                    stream,
                    payload,
                    spawned.peer,
                )))
            }
            Kind::UdsEpoll => {
                let path = run.path().join("pingpong.sock");
                let listener = UnixListener::bind(&path)?;
                let spawned = run.spawn(id, payload, &path.to_string_lossy(), ChildStdio::Null)?;
                let stream = accept_unix(&listener, id, 1)?.remove(0);
                let r = EpollStream::new(stream.try_clone()?)?;
                let w = EpollStream::new(stream)?;
                Ok(Box::new(StreamSession::new(
                    id,
                    r,
                    w,
                    payload,
                    spawned.peer,
                )))
            }
            Kind::Tcp => {
                let listener = TcpListener::bind(("127.0.0.1", 0))?;
                let addr = listener.local_addr()?.to_string();
                let spawned = run.spawn(id, payload, &addr, ChildStdio::Null)?;
                listener.set_nonblocking(true)?;
                let stream = accept(id, || listener.accept().map(|(s, _)| s))?;
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                let r = stream.try_clone()?;
                Ok(Box::new(StreamSession::new(
                    id,
                    r,
                    stream,
                    payload,
                    spawned.peer,
                )))
            }
        }
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        match self.kind {
            Kind::Uds | Kind::UdsPoll => {
                let stream = UnixStream::connect(&env.arg)?;
                stream.set_nonblocking(self.kind == Kind::UdsPoll)?;
                echo(&stream, &stream, env.payload)
            }
            Kind::UdsEpoll => {
                let stream = UnixStream::connect(&env.arg)?;
                let r = EpollStream::new(stream.try_clone()?)?;
                echo(r, EpollStream::new(stream)?, env.payload)
            }
            Kind::Tcp => {
                let stream = TcpStream::connect(&env.arg)?;
                stream.set_nodelay(true)?;
                echo(&stream, &stream, env.payload)
            }
        }
    }
}
