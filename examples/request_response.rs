//! Request/response: a parameter server in one process answers a client's `get`, `set` and
//! `list` requests from another, zero-copy both ways.
//!
//! ```text
//! cargo run --example request_response
//! ```
//!
//! Run without a role, the program starts itself as the **server** of the service
//! `examples/params/<pid>-<time>`, then acts as the client: it sets and reads parameters,
//! asks for a parameter that does not exist (an error response), lists every parameter (a
//! stream of responses, one per parameter), times a few thousand round trips, and finally
//! asks the server to stop. It shows:
//!
//! - one request type and one response type for several operations (an `Op` enum), with
//!   the parameter's name as a `RelStr` in the request's tail and the response's;
//! - `client.loan()` + the derived writer to fill a request in place, `send()` for one
//!   written whole, `respond()` / `loan_response()` on the server, and a stream ended by
//!   dropping the request;
//! - errors as data (`Status::NotFound`), and what a client sees if the server goes.
//!
//! The roles can be started by hand in two terminals: `request_response server SERVICE` and
//! `request_response client SERVICE`.

use shmx::{Client, RelStr, Server, ShmMessage};
use shmx_suite::{spawn_self, unique_topic, wait_all, ExampleRoot};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What a request asks.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Op {
    Get = 0,
    Set = 1,
    List = 2,
    Stop = 3,
}

/// A request: the operation, the parameter's name and, for `Set`, its new value.
#[derive(ShmMessage)]
#[repr(C)]
struct ParamRequest {
    op: Op,
    _pad: u32,
    value: f64,
    name: RelStr,
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Status {
    Ok = 0,
    NotFound = 1,
}

/// A response: the status, the parameter's name and value.
#[derive(ShmMessage)]
#[repr(C)]
struct ParamResponse {
    status: Status,
    _pad: u32,
    value: f64,
    name: RelStr,
}

/// Room in a request's or response's tail for a parameter name.
const NAME_BYTES: usize = 64;

const WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => parent(),
        ["server", service] => server(service),
        ["client", service] => client(service),
        _ => {
            eprintln!("usage: request_response [server SERVICE | client SERVICE]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("request_response: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn parent() -> Result<()> {
    let root = ExampleRoot::new()?;
    let service = unique_topic("examples/params");
    let server = spawn_self(["server", service.as_str()])?;
    let outcome = client(&service);
    let ok = wait_all(vec![("server".into(), server)], WAIT, WAIT);
    outcome?;
    if !ok {
        return Err("the server failed".into());
    }
    let left = root.leftovers(std::iter::empty());
    if !left.is_empty() {
        return Err(format!("left behind: {left:?}").into());
    }
    println!("done: the server stopped and left no files behind");
    Ok(())
}

fn server(service: &str) -> Result<()> {
    let server = Server::<ParamRequest, ParamResponse>::builder(service)
        .max_tail_bytes(NAME_BYTES)
        .create()?;
    let mut params = BTreeMap::from([("speed".to_owned(), 1.5), ("gain".to_owned(), 0.25)]);
    println!("[server] serving {service:?}");
    loop {
        let Some(req) = server.recv_timeout(Duration::from_secs(30))? else {
            return Err("no request for 30 s".into());
        };
        let name = req.name().to_owned();
        // Each response: status, value and name, written in place.
        let answer = |status, name: &str, value| -> shmx::Result<()> {
            let mut resp = req.loan_response()?;
            let mut w = resp.writer();
            *w.status = status;
            *w.value = value;
            w.set_name(name)?;
            resp.send()
        };
        match req.op {
            Op::Get => match params.get(&name) {
                Some(&v) => answer(Status::Ok, &name, v)?,
                None => answer(Status::NotFound, &name, 0.0)?,
            },
            Op::Set => {
                params.insert(name.clone(), req.value);
                answer(Status::Ok, &name, req.value)?;
            }
            // A stream: one response per parameter; dropping `req` ends it.
            Op::List => {
                for (k, v) in &params {
                    answer(Status::Ok, k, *v)?;
                }
            }
            Op::Stop => {
                drop(req);
                println!("[server] stopping");
                return Ok(());
            }
        }
    }
}

fn client(service: &str) -> Result<()> {
    let client = Client::<ParamRequest, ParamResponse>::builder(service)
        .max_tail_bytes(NAME_BYTES)
        .create()?;
    client.wait_for_servers(1, WAIT)?;
    let ask = |op, name: &str, value| -> Result<Vec<(Status, String, f64)>> {
        let mut req = client.loan()?;
        let mut w = req.writer();
        *w.op = op;
        *w.value = value;
        w.set_name(name)?;
        let pending = req.send()?;
        let mut out = Vec::new();
        while let Some(r) = pending.recv_timeout(WAIT)? {
            out.push((r.status, r.name().to_owned(), r.value));
        }
        Ok(out)
    };
    println!("[client] get speed -> {:?}", ask(Op::Get, "speed", 0.0)?);
    println!(
        "[client] set speed 2.0 -> {:?}",
        ask(Op::Set, "speed", 2.0)?
    );
    println!("[client] get speed -> {:?}", ask(Op::Get, "speed", 0.0)?);
    println!(
        "[client] get missing -> {:?}",
        ask(Op::Get, "missing", 0.0)?
    );
    println!("[client] list -> {:?}", ask(Op::List, "", 0.0)?);
    // Round trips, one at a time.
    let n = 10_000;
    let t0 = Instant::now();
    for _ in 0..n {
        let got = ask(Op::Get, "gain", 0.0)?;
        assert_eq!(got[0].2, 0.25);
    }
    let per = t0.elapsed() / n;
    println!("[client] {n} get round trips: {per:?} each (one response, its end marker)");
    let mut r = client.loan()?;
    *r.writer().op = Op::Stop;
    let stop = r.send()?;
    // The server ends the stream as it stops; then it is gone.
    let _ = stop.recv_timeout(WAIT);
    drop(stop);
    match client.send(ParamRequest {
        op: Op::Get,
        _pad: 0,
        value: 0.0,
        name: RelStr::default(),
    }) {
        Err(e) => println!("[client] after the server stopped: {e}"),
        Ok(p) => {
            // The server may still be leaving: the request fails once it is gone.
            if let Err(e) = p.recv_timeout(WAIT) {
                println!("[client] after the server stopped: {e}");
            }
        }
    }
    Ok(())
}
