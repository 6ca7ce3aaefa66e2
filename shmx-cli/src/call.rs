//! `shmx call SERVICE JSON`: sends one request, given as JSON and encoded by the service's
//! stored request schema, to a server of the service, and prints each response decoded by
//! the response schema, one JSON line each, until the stream ends.

use crate::codec;
use crate::output::{self, Failure};
use serde_json::{json, Value};
use shmx::request::RawClient;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Bytes a request's variable-length fields may take.
const MAX_TAIL: usize = 1 << 20;

/// Calls `service` with `json_text`; waits up to `timeout` for the stream to end.
pub fn run(
    out: &mut dyn Write,
    root: &Path,
    service: &str,
    json_text: &str,
    timeout: Duration,
    max_elements: usize,
) -> output::Result {
    let value: Value = serde_json::from_str(json_text)
        .map_err(|e| Failure::Message(format!("the request is not valid JSON: {e}")))?;
    let client = match RawClient::open(Some(root), service) {
        Ok(c) => c,
        Err(shmx::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Message(format!(
                "no service {service:?} under {}: start a server of it first",
                root.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let request = client.request_type();
    let bytes = codec::encode(request.ty(), &value, MAX_TAIL).map_err(Failure::Message)?;
    let response = client.response_type().ty().clone();
    let mut lines = Vec::new();
    let result = client.call(&bytes, timeout, |bytes| {
        lines.push(match codec::decode(&response, bytes, max_elements) {
            Ok(value) => json!({ "value": value }),
            Err(error) => json!({ "len": bytes.len(), "error": error }),
        });
    });
    for line in &lines {
        serde_json::to_writer(&mut *out, line)?;
        writeln!(out)?;
    }
    result?;
    Ok(())
}
