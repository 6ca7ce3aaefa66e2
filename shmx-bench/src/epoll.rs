//! Waiting in `epoll` for one descriptor to become readable, as an event loop does: the
//! receivers of `shmx-epoll` (on `Subscriber::fd()`) and `uds-epoll` (on a non-blocking Unix
//! socket, [`EpollStream`]).

use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use std::io::{self, ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;

/// An epoll instance watching `fd` for readability (level-triggered).
pub fn watch(fd: impl AsFd) -> io::Result<OwnedFd> {
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &epoll,
        fd,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::IN,
    )?;
    Ok(epoll)
}

/// Sleeps in `epoll_wait` until something `epoll` watches is ready (or a signal interrupts).
#[inline]
pub fn wait(epoll: impl AsFd) -> io::Result<()> {
    let mut events = [MaybeUninit::<epoll::Event>::uninit(); 4];
    match epoll::wait(epoll, &mut events, None) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A non-blocking Unix stream socket whose reads wait in `epoll` when nothing is there (and
/// whose writes wait in `poll` for room, which a full socket buffer needs).
#[derive(Debug)]
pub struct EpollStream {
    stream: UnixStream,
    epoll: OwnedFd,
}

impl EpollStream {
    /// Makes `stream` non-blocking (every descriptor of it: the flag belongs to the open
    /// socket) and watches it.
    pub fn new(stream: UnixStream) -> io::Result<EpollStream> {
        stream.set_nonblocking(true)?;
        let epoll = watch(&stream)?;
        Ok(EpollStream { stream, epoll })
    }

    /// The socket.
    pub fn get_ref(&self) -> &UnixStream {
        &self.stream
    }
}

impl Read for EpollStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.stream).read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => wait(&self.epoll)?,
                other => return other,
            }
        }
    }
}

impl Write for EpollStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags};
        loop {
            match (&self.stream).write(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(&self.stream, PollFlags::OUT)];
                    match poll(&mut fds, None) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl super::socket::CloseWrite for EpollStream {
    fn close_write(&mut self) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_data_and_see_the_end() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut r = EpollStream::new(a).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            (&b).write_all(&[7; 8]).unwrap();
            b.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut buf = [0u8; 8];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [7; 8]);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        writer.join().unwrap();
    }
}
