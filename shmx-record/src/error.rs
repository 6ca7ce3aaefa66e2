//! What can go wrong while recording or playing.

use std::path::PathBuf;

/// An error of recording, reading or playing a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of shmx itself (opening a topic, a type mismatch on playback, ...).
    #[error(transparent)]
    Shmx(#[from] shmx::Error),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not an MCAP file.
    #[error("{}: not an MCAP file (it does not begin with the MCAP magic bytes)", path.display())]
    NotMcap {
        /// The file.
        path: PathBuf,
    },
    /// The MCAP library refused the file or a record.
    #[error("{}: {source}", path.display())]
    Mcap {
        /// The file.
        path: PathBuf,
        /// What the MCAP library said.
        source: mcap::McapError,
    },
    /// A channel of the recording cannot be played: it was not recorded by shmx in its own
    /// encoding (another schema encoding, or metadata that is missing or does not agree
    /// with the schema).
    #[error("{}: topic {topic:?} cannot be played: {reason}", path.display())]
    Unplayable {
        /// The file.
        path: PathBuf,
        /// The channel's topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A [`Transcode`](crate::Transcode) refused a topic's type.
    #[error("topic {topic:?}: {reason}")]
    Transcode {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A topic pattern is not valid.
    #[error("topic pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn mcap(path: impl Into<PathBuf>, source: mcap::McapError) -> Error {
        match source {
            mcap::McapError::Io(source) => Error::io(path, source),
            source => Error::Mcap {
                path: path.into(),
                source,
            },
        }
    }
}

/// The result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;
