//! The checks of one case against the real `shmx` binary and the running probe: layout,
//! `shmx pub` -> typed subscriber, derive writer -> `shmx echo`, and the same bytes.

use crate::commands::{shmx, Background};
use crate::generate::Gen;
use crate::model::Case;
use crate::probe::Probe;
use crate::values::GenJson;
use serde_json::{json, Value};
use std::path::Path;

/// Checks one case; the probe's session for it is closed whatever happens (if the probe
/// still answers).
pub(crate) fn check_case(
    gen: &Gen,
    case: &Case,
    probe: &mut Probe,
    root: &Path,
) -> Result<(), String> {
    let topic = format!("layout/t{}", case.index);
    probe.send(&format!("case {} {topic}", case.index))?;
    let layout = probe.answer_json("ready")?;
    let result = check_open_case(gen, case, probe, root, &topic, &layout);
    let closed = probe
        .send("done")
        .and_then(|()| probe.answer("closed").map(drop));
    match (result, closed) {
        (Err(e), Err(c)) => Err(format!("{e}\n  (and closing the case failed: {c})")),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn check_open_case(
    gen: &Gen,
    case: &Case,
    probe: &mut Probe,
    root: &Path,
    topic: &str,
    layout: &Value,
) -> Result<(), String> {
    let ty = &case.ty;
    // 1. Layout: the derive's schema text is the generator's, with rustc's size and
    // alignment (the probe asserted the generator's offsets at compile time), and the topic
    // shows it.
    let text = gen.text(ty);
    let expected_layout = json!({
        "describe": text,
        "size": gen.size(ty),
        "align": gen.align(ty),
        "sample_align": gen.sample_align(ty),
    });
    if *layout != expected_layout {
        return Err(format!(
            "the derive's layout is not the generator's:\n  derive:    {layout}\n  generator: {expected_layout}"
        ));
    }
    let info: Value = shmx(root, &["info", topic, "--json"]).and_then(|out| {
        serde_json::from_str(&out).map_err(|e| format!("shmx info: not JSON ({e}): {out}"))
    })?;
    if info["schema"] != text || info["type_size"] != gen.size(ty) {
        return Err(format!(
            "shmx info shows schema {} of {} bytes, not the derive's {text} of {}",
            info["schema"],
            info["type_size"],
            gen.size(ty)
        ));
    }

    // 2. CLI encodes, derive reads, with exactly the tail the value needs.
    let mut rng_gen = GenJson::new(gen, case.index as u64);
    let message = rng_gen.pub_json(ty, &case.value).to_string();
    let tail = gen.tail_need(ty, &case.value).to_string();
    shmx(root, &["pub", topic, &message, "--max-tail-bytes", &tail])
        .map_err(|e| format!("{e}\n  message: {message}"))?;
    probe.send("recv")?;
    let received = probe.answer_json("received").map_err(|e| {
        format!("the typed subscriber refused what `shmx pub` sent: {e}\n  message: {message}")
    })?;
    gen.compare(ty, &case.value, &received["value"], "")
        .map_err(|e| format!("the typed subscriber read what `shmx pub` sent differently, {e}\n  message: {message}\n  read: {}", received["value"]))?;
    if received["aligned"] != true {
        return Err("the sample `shmx pub` sent is not aligned to sample_align".to_owned());
    }

    // 3. Derive writes, CLI decodes. `echo` subscribes first (the topic then has three
    // subscribers: the probe's typed and raw ones, and echo's); the probe publishes once its
    // publisher sees all three.
    let mut echo = Background::start(root, &["echo", topic, "-n", "1", "--timeout", "30"]);
    echo.wait_for_subscribers(root, topic, 3)?;
    probe.send(&format!("publish {tail} 3"))?;
    let published = probe
        .answer_json("published")
        .map_err(|e| format!("the derive's publisher failed: {e}"))?;
    let echoed = echo.finish().map_err(|e| format!("shmx echo: {e}"))?;
    let line: Value = serde_json::from_str(echoed.trim())
        .map_err(|e| format!("shmx echo printed no JSON line ({e}): {echoed}"))?;
    let Some(value) = line.get("value") else {
        return Err(format!(
            "shmx echo could not decode the derive's sample: {line}"
        ));
    };
    gen.compare(ty, &case.value, value, "").map_err(|e| {
        format!("shmx echo decoded the derive's sample differently, {e}\n  echo: {line}")
    })?;
    gen.compare(ty, &case.value, &published["value"], "")
        .map_err(|e| {
            format!("the typed subscriber read the derive's own sample differently, {e}")
        })?;
    if published["aligned"] != true {
        return Err("the derive's sample is not aligned to sample_align".to_owned());
    }

    // 4. The same bytes, message and tail.
    if received["hex"] != published["hex"] {
        return Err(format!(
            "the samples differ:\n  shmx pub: {}\n  derive:   {}",
            received["hex"], published["hex"]
        ));
    }
    Ok(())
}
