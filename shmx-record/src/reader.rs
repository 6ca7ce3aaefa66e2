//! [`Recording`]: reading a recording back, front to back, without shmx running; a file
//! cut off (a killed recorder) is read up to its last whole record.

use crate::error::{Error, Result};
use crate::format;
use mcap::records::Record;
use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The longest record (a chunk, compressed or not) a reader accepts, unless the file is
/// longer: a file that claims a longer one is refused rather than making the reader
/// allocate it (a record of another kind cannot be longer than the file; a chunk's contents
/// may, compressed, up to this).
const RECORD_LIMIT: usize = 64 << 20;

/// A recording on disk.
#[derive(Debug, Clone)]
pub struct Recording {
    path: PathBuf,
}

/// A channel of a recording: a topic with its type and encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel's id in the file.
    pub id: u16,
    /// The topic.
    pub topic: String,
    /// The schema's name (the message type's name, for shmx recordings).
    pub schema_name: String,
    /// The schema's encoding (`shmx` for samples' bytes, `jsonschema`, ...).
    pub schema_encoding: String,
    /// The schema's data (for `shmx`, the topic's schema text).
    pub schema_data: Vec<u8>,
    /// The messages' encoding (`shmx`, `json`, ...).
    pub message_encoding: String,
    /// The channel's metadata (see [`format`](crate::format) for shmx's keys).
    pub metadata: BTreeMap<String, String>,
}

impl ChannelInfo {
    /// The message type's fingerprint the channel's metadata records, if it is valid.
    pub fn fingerprint(&self) -> Option<u64> {
        format::parse_fingerprint(self.metadata.get(format::META_FINGERPRINT)?)
    }

    /// `size_of` the message type, as the channel's metadata records it.
    pub fn type_size(&self) -> Option<usize> {
        self.metadata.get(format::META_SIZE)?.parse().ok()
    }

    /// The topic's shmx schema text, as the channel's metadata records it.
    pub fn shmx_schema(&self) -> Option<&str> {
        self.metadata.get(format::META_SCHEMA).map(String::as_str)
    }

    /// Whether messages are samples' bytes (schema and message encoding `shmx`).
    pub fn is_raw(&self) -> bool {
        self.schema_encoding == format::SCHEMA_ENCODING
            && self.message_encoding == format::MESSAGE_ENCODING
    }
}

/// One recorded message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its channel.
    pub channel: Arc<ChannelInfo>,
    /// The low 32 bits of its publisher's sequence number.
    pub sequence: u32,
    /// The publisher that sent it, if the file says.
    pub publisher_id: Option<u64>,
    /// When it was recorded, in nanoseconds since the Unix epoch.
    pub log_time: u64,
    /// When it was published, in nanoseconds since the Unix epoch.
    pub publish_time: u64,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What a [`RecordingReader`] yields, in file order.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A channel, before its first message.
    Channel(Arc<ChannelInfo>),
    /// A message.
    Message(Message),
}

/// One channel's part of a recording.
#[derive(Debug, Clone)]
pub struct TopicCount {
    /// The channel.
    pub channel: Arc<ChannelInfo>,
    /// Messages.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The first and last message's log time.
    pub first: Option<u64>,
    /// See `first`.
    pub last: Option<u64>,
    /// The ids of the publishers that sent them.
    pub publishers: BTreeSet<u64>,
}

/// A summary of a whole recording.
#[derive(Debug, Clone)]
pub struct Info {
    /// The file.
    pub path: PathBuf,
    /// The MCAP header's profile (`shmx` for shmx recordings).
    pub profile: String,
    /// The library that wrote it.
    pub library: String,
    /// Every channel, in the order they appear.
    pub channels: Vec<TopicCount>,
    /// Messages in all channels.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The first message's log time (ns since the Unix epoch).
    pub start: Option<u64>,
    /// The last message's log time.
    pub end: Option<u64>,
    /// Set if the file was cut off (its recorder was killed, or it is still being
    /// written): what is counted is what lies before the cut, whole records only.
    pub truncated: Option<String>,
}

impl Recording {
    /// The recording at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read; [`Error::NotMcap`] if it does not begin with the
    /// MCAP magic bytes.
    pub fn open(path: impl Into<PathBuf>) -> Result<Recording> {
        let path = path.into();
        let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut magic = [0u8; 8];
        let mut got = 0;
        while got < magic.len() {
            match file.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        if magic[..got] != *mcap::MAGIC {
            return Err(Error::NotMcap { path });
        }
        Ok(Recording { path })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file front to back.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be opened.
    pub fn reader(&self) -> Result<RecordingReader> {
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let finished = ends_with_magic(&mut file).map_err(|e| Error::io(&self.path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        let limit = usize::try_from(len).unwrap_or(usize::MAX).max(RECORD_LIMIT);
        let options = LinearReaderOptions::default()
            .with_emit_chunks(false)
            .with_prevalidate_chunk_crcs(true)
            .with_record_length_limit(limit);
        Ok(RecordingReader {
            path: self.path.clone(),
            file,
            reader: LinearReader::new_with_options(options),
            channels: HashMap::new(),
            schemas: HashMap::new(),
            publishers: HashMap::new(),
            header: None,
            finished,
            truncated: None,
            done: false,
        })
    }

    /// Reads the whole file and counts what it holds.
    ///
    /// # Errors
    /// [`Error::Mcap`] for a record that is not valid MCAP; a file cut off is not an error
    /// ([`Info::truncated`]).
    pub fn info(&self) -> Result<Info> {
        let mut reader = self.reader()?;
        let mut channels: Vec<TopicCount> = Vec::new();
        let mut index: HashMap<u16, usize> = HashMap::new();
        let mut info = Info {
            path: self.path.clone(),
            profile: String::new(),
            library: String::new(),
            channels: Vec::new(),
            messages: 0,
            bytes: 0,
            start: None,
            end: None,
            truncated: None,
        };
        for entry in &mut reader {
            match entry? {
                Entry::Channel(c) => {
                    index.entry(c.id).or_insert_with(|| {
                        channels.push(TopicCount {
                            channel: c.clone(),
                            messages: 0,
                            bytes: 0,
                            first: None,
                            last: None,
                            publishers: BTreeSet::new(),
                        });
                        channels.len() - 1
                    });
                }
                Entry::Message(m) => {
                    let Some(&i) = index.get(&m.channel.id) else {
                        continue;
                    };
                    let count = &mut channels[i];
                    count.messages += 1;
                    count.bytes += m.data.len() as u64;
                    count.first.get_or_insert(m.log_time);
                    count.last = Some(m.log_time);
                    count.publishers.extend(m.publisher_id);
                    info.messages += 1;
                    info.bytes += m.data.len() as u64;
                    info.start = Some(info.start.map_or(m.log_time, |s| s.min(m.log_time)));
                    info.end = Some(info.end.map_or(m.log_time, |e| e.max(m.log_time)));
                }
            }
        }
        if let Some((profile, library)) = reader.header.take() {
            (info.profile, info.library) = (profile, library);
        }
        info.truncated = reader.truncated().map(str::to_owned);
        info.channels = channels;
        Ok(info)
    }
}

/// Whether `file` ends with the MCAP magic bytes (leaves the file at its start).
fn ends_with_magic(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let len = file.seek(SeekFrom::End(0))?;
    let mut tail = [0u8; 8];
    let ok = len >= 16 && {
        file.seek(SeekFrom::End(-8))?;
        file.read_exact(&mut tail)?;
        tail == *mcap::MAGIC
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(ok)
}

/// Reads a recording front to back: channels, then their messages (see [`Entry`]).
///
/// Stops at the end of the file, or where it was cut off (then
/// [`truncated`](Self::truncated) says so). A whole chunk is read only if its checksum
/// matches; of the chunk a killed recorder was writing (no checksum yet), the records that
/// are whole. In a file that was finished (it ends with the MCAP magic bytes), a record
/// that is not valid MCAP is an error, after which it stops; in one that was not, it is
/// where the file was cut.
pub struct RecordingReader {
    path: PathBuf,
    file: File,
    reader: LinearReader,
    channels: HashMap<u16, Arc<ChannelInfo>>,
    /// Schemas by id: name, encoding, data.
    schemas: HashMap<u16, (String, String, Vec<u8>)>,
    /// The publisher of the messages that follow, per channel.
    publishers: HashMap<u16, u64>,
    header: Option<(String, String)>,
    /// The file ends with the MCAP magic bytes (its writer finished it): an error is then
    /// corruption, not a cut.
    finished: bool,
    truncated: Option<String>,
    done: bool,
}

impl RecordingReader {
    /// Why the file ended early, if it did (known once the reader has stopped).
    pub fn truncated(&self) -> Option<&str> {
        self.truncated.as_deref()
    }

    /// The next record, reading the file as the MCAP reader asks.
    fn next_record(&mut self) -> Option<mcap::McapResult<Record<'static>>> {
        loop {
            match self.reader.next_event()? {
                Ok(LinearReadEvent::ReadRequest(need)) => {
                    let buf = self.reader.insert(need);
                    let n = loop {
                        match self.file.read(buf) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Some(Err(mcap::McapError::Io(e))),
                        }
                    };
                    self.reader.notify_read(n);
                }
                Ok(LinearReadEvent::Record { data, opcode }) => {
                    return Some(mcap::parse_record(opcode, data).map(Record::into_owned));
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn channel(&mut self, c: mcap::records::Channel) -> Option<Arc<ChannelInfo>> {
        if self.channels.contains_key(&c.id) {
            // The summary repeats channels.
            return None;
        }
        let (schema_name, schema_encoding, schema_data) =
            self.schemas.get(&c.schema_id).cloned().unwrap_or_default();
        let info = Arc::new(ChannelInfo {
            id: c.id,
            topic: c.topic,
            schema_name,
            schema_encoding,
            schema_data,
            message_encoding: c.message_encoding,
            metadata: c.metadata,
        });
        self.channels.insert(c.id, info.clone());
        Some(info)
    }
}

impl Iterator for RecordingReader {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while !self.done {
            let record = match self.next_record() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Ok(record)) => record,
                // A file that was not finished ends wherever its writer stopped: in the
                // middle of a record, or of a chunk being written.
                Some(Err(e)) if !self.finished => {
                    self.done = true;
                    self.truncated = Some(format!(
                        "the file was cut off (it has no summary and no closing magic bytes: \
                         its recorder was killed, or is still writing); read up to its last \
                         whole record ({e})"
                    ));
                    return None;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(Error::mcap(&self.path, e)));
                }
            };
            match record {
                Record::Header(h) => self.header = Some((h.profile, h.library)),
                Record::Schema { header, data } => {
                    self.schemas.entry(header.id).or_insert((
                        header.name,
                        header.encoding,
                        data.into_owned(),
                    ));
                }
                Record::Channel(c) => {
                    if let Some(info) = self.channel(c) {
                        return Some(Ok(Entry::Channel(info)));
                    }
                }
                Record::Message { header, data } => {
                    let Some(channel) = self.channels.get(&header.channel_id).cloned() else {
                        self.done = true;
                        return Some(Err(Error::Mcap {
                            path: self.path.clone(),
                            source: mcap::McapError::UnknownChannel(
                                header.sequence,
                                header.channel_id,
                            ),
                        }));
                    };
                    return Some(Ok(Entry::Message(Message {
                        publisher_id: self.publishers.get(&channel.id).copied(),
                        channel,
                        sequence: header.sequence,
                        log_time: header.log_time,
                        publish_time: header.publish_time,
                        data: data.into_owned(),
                    })));
                }
                Record::Unknown { opcode, data } if opcode == format::PUBLISHER_OP => {
                    if let Some((channel, publisher)) = format::parse_publisher_record(&data) {
                        self.publishers.insert(channel, publisher);
                    }
                }
                _ => {}
            }
        }
        None
    }
}
