//! Creating, opening and mapping shared-memory files.
//!
//! A segment is created under a temporary name in its directory (relative to the
//! directory's descriptor, see [`dir`](crate::dir)), its pages are reserved up front with
//! `fallocate` (a too-small `/dev/shm` is [`Error::OutOfSpace`] now, never a `SIGBUS` later),
//! it is initialised completely through its mapping, and only then linked into place, so no
//! process ever sees a half-written header. Files are created with the topic's mode (`0600`
//! unless configured otherwise, see [`trust`](crate::trust)).

use crate::dir::Dir;
use crate::error::{Error, Result};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use crate::dir::Access;

/// A mapped file.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: MmapRaw,
}

impl Mapping {
    /// First byte of the mapping.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.raw.as_mut_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}

/// A name for a file being created, unique within this process and among processes.
pub(crate) fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".tmp.{}.{n}", std::process::id())
}

/// Creates `dir/name` of `len` bytes with `mode` and `group`, initialised by `init` through
/// a writable mapping, and links it into place atomically. Returns `Ok(None)` if `dir/name`
/// exists already.
pub(crate) fn create(
    dir: &Dir,
    name: &str,
    len: usize,
    mode: u32,
    group: Option<u32>,
    init: impl FnOnce(&Mapping) -> Result<()>,
) -> Result<Option<Mapping>> {
    let final_path = dir.join(name);
    let (tmp, file) = dir.create_temp(mode, group)?;
    let result = (|| {
        reserve(&file, &final_path, len as u64)?;
        let raw = MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| Error::io(&final_path, e, len as u64))?;
        let mapping = Mapping { raw };
        init(&mapping)?;
        Ok(dir.link(&tmp, name)?.then_some(mapping))
    })();
    dir.remove_file(&tmp);
    result
}

/// Reserves the file's pages so that running out of shared memory is an error now.
fn reserve(file: &File, path: &Path, len: u64) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{fallocate, FallocateFlags};
        match fallocate(file, FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(Error::io(path, e.into(), len)),
        }
    }
    file.set_len(len).map_err(|e| Error::io(path, e, len))
}

/// Maps `len` bytes at `offset` of an open file, checking first that the file is that long.
pub(crate) fn map(
    file: &File,
    path: &Path,
    offset: u64,
    len: usize,
    access: Access,
) -> Result<Mapping> {
    let file_len = file.metadata().map_err(|e| Error::io(path, e, 0))?.len();
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|end| end > file_len) {
        return Err(Error::corrupt(
            path,
            format!("file is {file_len} bytes, shorter than its header says ({offset} + {len})"),
        ));
    }
    let mut opts = MmapOptions::new();
    opts.offset(offset).len(len);
    let raw = match access {
        Access::ReadOnly => opts.map_raw_read_only(file),
        Access::ReadWrite => opts.map_raw(file),
    }
    .map_err(|e| Error::io(path, e, 0))?;
    Ok(Mapping { raw })
}

/// The file's length.
pub(crate) fn file_len(file: &File, path: &Path) -> Result<u64> {
    Ok(file.metadata().map_err(|e| Error::io(path, e, 0))?.len())
}

/// Page size of this machine.
pub(crate) fn page_size() -> usize {
    #[cfg(unix)]
    {
        static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as usize,
            _ => 4096,
        })
    }
    #[cfg(not(unix))]
    {
        4096
    }
}

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
pub(crate) const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}
