//! Pipe ping-pong (id `pipe`): the child's standard input and output are two anonymous pipes
//! from and to the parent, blocking, with the kernel's default capacity (64 KiB). Like the
//! sockets, both directions carry the whole payload; the parent stops the child by closing
//! its standard input.

use super::process::{ChildEnv, ChildStdio, RunDir};
use super::socket::{echo, StreamSession};
use super::{PingPong, Result, Session};
use std::fs::File;
use std::os::fd::AsFd;

/// Two anonymous pipes (id `pipe`).
#[derive(Debug, Clone, Copy)]
pub struct Pipe;

impl PingPong for Pipe {
    fn id(&self) -> &'static str {
        "pipe"
    }

    fn describe(&self) -> &'static str {
        "two anonymous pipes, blocking"
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        if payload < 8 {
            return Err(super::unsupported(self.id(), payload));
        }
        let spawned = run.spawn(self.id(), payload, "", ChildStdio::Piped)?;
        let w = spawned.stdin.ok_or("the pipe child has no stdin pipe")?;
        let r = spawned.stdout.ok_or("the pipe child has no stdout pipe")?;
        Ok(Box::new(StreamSession::new(
            self.id(),
            r,
            w,
            payload,
            spawned.peer,
        )))
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        // Unbuffered handles of the very pipes (std's stdout would buffer by line).
        let r = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
        let w = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
        echo(r, w, env.payload)
    }
}
