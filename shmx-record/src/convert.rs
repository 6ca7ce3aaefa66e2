//! [`convert`]: a recording written again in another encoding (e.g. JSON for Foxglove).

use crate::error::{Error, Result};
use crate::format::{self, PUBLISHER_OP};
use crate::reader::{ChannelInfo, Entry, Recording};
use crate::recorder::Compression;
use crate::transcode::{TopicType, Transcode};
use mcap::records::MessageHeader;
use mcap::write::PrivateRecordOptions;
use std::collections::HashMap;
use std::io::BufWriter;
use std::path::Path;

/// What [`convert`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Converted {
    /// Channels written.
    pub channels: u64,
    /// Messages written.
    pub messages: u64,
    /// Messages `transcode` could not encode (left out).
    pub unencodable: u64,
    /// Channels left out: not samples' bytes, or refused by `transcode` (with why).
    pub skipped: Vec<String>,
    /// Set if the input was cut off (see [`Info::truncated`](crate::Info::truncated)).
    pub truncated: Option<String>,
}

/// Writes recording `input` again to `output` (which must not exist), every channel of
/// samples' bytes encoded by `transcode`, with the same times, sequence numbers and
/// publishers. The file is written as `<output>.part` and renamed once whole: a failure
/// leaves no `output`.
///
/// # Errors
/// Reading `input` ([`Error::NotMcap`], [`Error::Mcap`]) or writing `output` fails
/// ([`Error::Io`] if it exists).
pub fn convert(
    input: &Path,
    output: &Path,
    transcode: &mut dyn Transcode,
    compression: Compression,
) -> Result<Converted> {
    let recording = Recording::open(input)?;
    if output.exists() {
        return Err(Error::io(
            output,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file exists"),
        ));
    }
    let mut part = output.as_os_str().to_owned();
    part.push(".part");
    let part = std::path::PathBuf::from(part);
    let result = write(&recording, &part, transcode, compression).and_then(|done| {
        std::fs::rename(&part, output).map_err(|e| Error::io(output, e))?;
        Ok(done)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// [`convert`] into `output`.
fn write(
    recording: &Recording,
    output: &Path,
    transcode: &mut dyn Transcode,
    compression: Compression,
) -> Result<Converted> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(output)
        .map_err(|e| Error::io(output, e))?;
    let mut writer = mcap::WriteOptions::new()
        .profile(format::PROFILE)
        .library(concat!("shmx-record ", env!("CARGO_PKG_VERSION")))
        .compression(compression.mcap())
        .create(BufWriter::new(file))
        .map_err(|e| Error::mcap(output, e))?;
    let mut done = Converted::default();
    // Input channel id → output channel id and the topic's type.
    let mut channels: HashMap<u16, (u16, TopicType)> = HashMap::new();
    let mut publishers: HashMap<u16, u64> = HashMap::new();
    let mut buf = Vec::new();
    let mut reader = recording.reader()?;
    for entry in &mut reader {
        match entry? {
            Entry::Channel(c) => match add_channel(&mut writer, output, &c, transcode) {
                Ok(Some(out)) => {
                    channels.insert(c.id, out);
                    done.channels += 1;
                }
                Ok(None) => done.skipped.push(format!(
                    "{}: not samples' bytes (encoding {:?})",
                    c.topic, c.message_encoding
                )),
                Err(Error::Transcode { topic, reason }) => {
                    done.skipped.push(format!("{topic}: {reason}"));
                }
                Err(e) => return Err(e),
            },
            Entry::Message(m) => {
                let Some((id, ty)) = channels.get(&m.channel.id) else {
                    continue;
                };
                buf.clear();
                if transcode.message(ty, &m.data, &mut buf).is_err() {
                    done.unencodable += 1;
                    continue;
                }
                let wrote = (|| {
                    if let Some(p) = m.publisher_id {
                        if publishers.insert(*id, p) != Some(p) {
                            writer.write_private_record(
                                PUBLISHER_OP,
                                &format::publisher_record(*id, p),
                                PrivateRecordOptions::IncludeInChunks.into(),
                            )?;
                        }
                    }
                    let header = MessageHeader {
                        channel_id: *id,
                        sequence: m.sequence,
                        log_time: m.log_time,
                        publish_time: m.publish_time,
                    };
                    writer.write_to_known_channel(&header, &buf)
                })();
                wrote.map_err(|e| Error::mcap(output, e))?;
                done.messages += 1;
            }
        }
    }
    done.truncated = reader.truncated().map(str::to_owned);
    writer.finish().map_err(|e| Error::mcap(output, e))?;
    writer
        .into_inner()
        .into_inner()
        .map_err(|e| Error::io(output, e.into_error()))?;
    Ok(done)
}

/// The output channel for input channel `c`; `None` if it is not samples' bytes.
fn add_channel(
    writer: &mut mcap::Writer<BufWriter<std::fs::File>>,
    path: &Path,
    c: &ChannelInfo,
    transcode: &mut dyn Transcode,
) -> Result<Option<(u16, TopicType)>> {
    if !c.is_raw() {
        return Ok(None);
    }
    let schema = String::from_utf8_lossy(&c.schema_data).into_owned();
    let ty = TopicType {
        topic: c.topic.clone(),
        type_name: c.schema_name.clone(),
        fingerprint: c.fingerprint().unwrap_or(0),
        size: c.type_size().unwrap_or(0),
        schema,
    };
    let encoding = transcode.encoding(&ty).map_err(|reason| Error::Transcode {
        topic: c.topic.clone(),
        reason,
    })?;
    let schema_id = writer
        .add_schema(
            &encoding.schema_name,
            &encoding.schema_encoding,
            &encoding.schema_data,
        )
        .map_err(|e| Error::mcap(path, e))?;
    let id = writer
        .add_channel(schema_id, &c.topic, &encoding.message_encoding, &c.metadata)
        .map_err(|e| Error::mcap(path, e))?;
    Ok(Some((id, ty)))
}
