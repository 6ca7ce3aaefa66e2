//! What a subscriber's descriptor costs its publisher: system calls only for a subscriber that
//! armed it (a `take()` that found nothing, then a wait in `epoll`), one per wake-up, and none
//! at all for a subscriber that spins on `take()`.
//!
//! Three roles, started by hand so that `strace` sees the publisher alone:
//!
//! - `wake_syscalls sub-fd ROOT`: takes until `take()` finds nothing, then waits in
//!   `epoll_wait` on `Subscriber::fd()`; at the end prints its messages and wake-ups;
//! - `wake_syscalls sub-spin ROOT`: spins on `take()`; prints its messages;
//! - `wake_syscalls sub-waitset ROOT`: waits in a `WaitSet` (which spins for an adaptive
//!   budget before it arms the descriptor and sleeps), then takes until `take()` finds nothing
//!   (which does not arm it: the program never asked for the descriptor); prints its messages
//!   and waits;
//! - `wake_syscalls sub-fd-spin ROOT`: as `sub-fd`, but calls `Subscriber::spin()` before it
//!   sleeps (the descriptor is disarmed while it spins);
//! - `wake_syscalls pub ROOT SUBSCRIBERS MESSAGES INTERVAL_US`: waits for `SUBSCRIBERS`
//!   subscribers, publishes `MESSAGES` `u64`s `INTERVAL_US` apart (busy-waiting on the clock,
//!   which makes no system call), then a stop message, and waits for the subscribers to leave.
//!
//! ```text
//! cargo build --release --example wake_syscalls
//! E=target/release/examples/wake_syscalls; R=$(mktemp -d /dev/shm/wake.XXXXXX)
//! $E sub-fd $R & $E sub-spin $R &
//! strace -c -f $E pub $R 2 2000 1000      # one armed fd subscriber, one spinning
//! $E sub-spin $R &
//! strace -c -f $E pub $R 1 2000 1000      # the spinning subscriber alone: no sendto
//! $E sub-waitset $R &
//! strace -c -f $E pub $R 1 20000 10       # a WaitSet subscriber, a message every 10 us
//! $E sub-fd-spin $R &
//! strace -c -f $E pub $R 1 20000 10       # an fd loop that spins, a message every 10 us
//! wait; rm -r $R
//! ```
//!
//! A wake-up is one `sendto` of one byte on a datagram socket connected to the subscriber's
//! (`shmx::signal`); the subscriber consumes it when it arms again.

use rustix::event::epoll;
use rustix::fd::AsFd;
use shmx::{Overflow, Publisher, Subscriber, WaitSet};
use std::mem::MaybeUninit;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const TOPIC: &str = "examples/wake_syscalls";
const STOP: u64 = u64::MAX;

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["sub-fd", root] => sub_fd(Path::new(root)),
        ["sub-spin", root] => sub_spin(Path::new(root)),
        ["sub-waitset", root] => sub_waitset(Path::new(root)),
        ["sub-fd-spin", root] => sub_fd_spin(Path::new(root)),
        ["pub", root, subs, messages, interval] => (|| {
            publish(
                Path::new(root),
                subs.parse()?,
                messages.parse()?,
                Duration::from_micros(interval.parse()?),
            )
        })(),
        _ => Err(
            "usage: wake_syscalls sub-fd ROOT | sub-spin ROOT | sub-waitset ROOT | \
                  pub ROOT SUBSCRIBERS MESSAGES INTERVAL_US"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wake_syscalls: {e}");
            ExitCode::FAILURE
        }
    }
}

fn subscriber(root: &Path) -> Result<Subscriber<u64>, Error> {
    Ok(Subscriber::builder(TOPIC)
        .root(root)
        .queue_depth(256)
        .create()?)
}

fn sub_fd(root: &Path) -> Result<(), Error> {
    let sub = subscriber(root)?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    // The descriptor exists before the first take, so that a take that finds nothing arms it.
    epoll::add(
        &ep,
        sub.fd()?,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::IN,
    )?;
    let (mut messages, mut wakeups) = (0u64, 0u64);
    let mut events = [MaybeUninit::<epoll::Event>::uninit(); 4];
    loop {
        while let Some(sample) = sub.take()? {
            if *sample == STOP {
                eprintln!("sub-fd: {messages} messages, {wakeups} wake-ups from epoll_wait");
                return Ok(());
            }
            messages += 1;
        }
        epoll::wait(ep.as_fd(), &mut events, None)?;
        wakeups += 1;
    }
}

fn sub_spin(root: &Path) -> Result<(), Error> {
    let sub = subscriber(root)?;
    let mut messages = 0u64;
    loop {
        match sub.take()? {
            Some(sample) if *sample == STOP => {
                eprintln!("sub-spin: {messages} messages");
                return Ok(());
            }
            Some(_) => messages += 1,
            None => std::hint::spin_loop(),
        }
    }
}

fn sub_waitset(root: &Path) -> Result<(), Error> {
    let sub = subscriber(root)?;
    let mut waitset = WaitSet::new()?;
    waitset.attach(&sub)?;
    let (mut messages, mut waits) = (0u64, 0u64);
    loop {
        while let Some(sample) = sub.take()? {
            if *sample == STOP {
                eprintln!("sub-waitset: {messages} messages, {waits} waits");
                return Ok(());
            }
            messages += 1;
        }
        waitset.wait(|_| {})?;
        waits += 1;
    }
}

fn sub_fd_spin(root: &Path) -> Result<(), Error> {
    let sub = subscriber(root)?;
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &epoll,
        sub.fd()?,
        epoll::EventData::new_u64(0),
        epoll::EventFlags::IN,
    )?;
    let (mut messages, mut sleeps) = (0u64, 0u64);
    let mut events = [MaybeUninit::<epoll::Event>::uninit(); 4];
    loop {
        while let Some(sample) = sub.take()? {
            if *sample == STOP {
                eprintln!("sub-fd-spin: {messages} messages, {sleeps} sleeps");
                return Ok(());
            }
            messages += 1;
        }
        if sub.spin() {
            continue;
        }
        epoll::wait(&epoll, &mut events, None)?;
        sleeps += 1;
    }
}

fn publish(root: &Path, subs: usize, messages: u64, interval: Duration) -> Result<(), Error> {
    let publisher = Publisher::<u64>::builder(TOPIC)
        .root(root)
        .queue_depth(256)
        .overflow(Overflow::Block)
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while publisher.subscriber_count() < subs {
        if Instant::now() > deadline {
            return Err(format!("{subs} subscribers did not come").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut next = Instant::now();
    for i in 0..messages {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        publisher.send(i)?;
        next = Instant::now() + interval;
    }
    publisher.send(STOP)?;
    while publisher.subscriber_count() > 0 && Instant::now() < deadline + Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("pub: {messages} messages to {subs} subscribers");
    Ok(())
}
