//! Creating, opening and mapping shared-memory files.
//!
//! A segment is created under a temporary name, its pages are reserved up front with
//! `fallocate` (a too-small `/dev/shm` is [`Error::OutOfSpace`] now, never a `SIGBUS` later),
//! it is initialised completely through its mapping, and only then linked into place, so no
//! process ever sees a half-written header. Files are created with mode `0600` unless the
//! configuration says otherwise.
//!
//! Topic directories are created, populated and removed while holding an exclusive `flock`
//! on the root directory ([`RootLock`]): opening a topic never races with its last
//! participant removing it.

use crate::error::{Error, Result};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A mapped file.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: MmapRaw,
    path: PathBuf,
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

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Holds an exclusive `flock` on the root directory while alive.
pub(crate) struct RootLock {
    _dir: File,
}

impl RootLock {
    /// Creates the root if needed and locks it.
    pub(crate) fn acquire(root: &Path) -> Result<RootLock> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e, 0))?;
        let dir = File::open(root).map_err(|e| Error::io(root, e, 0))?;
        #[cfg(unix)]
        loop {
            match rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io(root, e.into(), 0)),
            }
        }
        Ok(RootLock { _dir: dir })
    }
}

/// Creates `dir` (one level) with a mode derived from the file mode.
pub(crate) fn ensure_dir(dir: &Path, file_mode: u32) -> Result<()> {
    let dir_mode = file_mode | ((file_mode & 0o444) >> 2);
    match std::fs::DirBuilder::new().mode(dir_mode).create(dir) {
        // Set the mode explicitly: the umask must not take away what the user asked to share.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode))
            .map_err(|e| Error::io(dir, e, 0)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(dir, e, 0)),
    }
}

fn temp_path(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tmp.{}.{n}", std::process::id()))
}

/// Creates `dir/name` of `len` bytes, initialised by `init` through a writable mapping, and
/// links it into place atomically. Returns `Ok(None)` if `dir/name` exists already.
pub(crate) fn create(
    dir: &Path,
    name: &str,
    len: usize,
    mode: u32,
    init: impl FnOnce(&Mapping) -> Result<()>,
) -> Result<Option<Mapping>> {
    let final_path = dir.join(name);
    let tmp = temp_path(dir);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e, len as u64))?;
    let result = (|| {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&final_path, e, 0))?;
        reserve(&file, &final_path, len as u64)?;
        let raw = MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| Error::io(&final_path, e, len as u64))?;
        let mapping = Mapping {
            raw,
            path: final_path.clone(),
        };
        init(&mapping)?;
        match std::fs::hard_link(&tmp, &final_path) {
            Ok(()) => Ok(Some(mapping)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io(&final_path, e, 0)),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
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

/// How a file is opened and mapped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

/// Opens `path`; `Ok(None)` when it does not exist.
pub(crate) fn open_file(path: &Path, access: Access) -> Result<Option<File>> {
    match OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e, 0)),
    }
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
    Ok(Mapping {
        raw,
        path: path.to_owned(),
    })
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
