//! Liveness of processes without a daemon or heartbeats.
//!
//! Every process that has an endpoint in a root holds an exclusive `flock` on its own *node
//! file*, `<root>/node.<id>`, for as long as it has endpoints there. The kernel drops the lock
//! when the process dies, however it dies (`SIGKILL` included), so anyone can tell a dead
//! owner by trying to take a shared lock on its file: refused means alive, granted (or no
//! file) means dead. Node ids are random 64-bit numbers, never reused, so a recycled pid can
//! never pass for the dead process. Slots record the node id of their owner.
//!
//! The file is created under a temporary name, locked, and only then linked into place, so no
//! peer ever sees an unlocked node file of a live process.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// This process's node in one root; shared by all its endpoints there.
#[derive(Debug)]
pub(crate) struct Node {
    id: u64,
    path: PathBuf,
    _file: File,
}

impl Node {
    /// The node id recorded in slots.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn node_path(root: &Path, id: u64) -> PathBuf {
    root.join(format!("node.{id:016x}"))
}

/// This process's node in `root`, created and locked on first use.
pub(crate) fn join(root: &Path) -> Result<Arc<Node>> {
    static NODES: OnceLock<Mutex<HashMap<PathBuf, Weak<Node>>>> = OnceLock::new();
    let mut nodes = NODES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(node) = nodes.get(root).and_then(Weak::upgrade) {
        return Ok(node);
    }
    let node = Arc::new(create(root)?);
    nodes.retain(|_, n| n.strong_count() > 0);
    nodes.insert(root.to_owned(), Arc::downgrade(&node));
    Ok(node)
}

fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

fn create(root: &Path) -> Result<Node> {
    for _ in 0..16 {
        let id = random_id();
        let path = node_path(root, id);
        let tmp = root.join(format!(".node.{id:016x}.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e, 0))?;
        lock(&file, true, &tmp)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                return Ok(Node {
                    id,
                    path,
                    _file: file,
                })
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&path, e, 0)),
        }
    }
    Err(Error::corrupt(root, "could not find a free node id"))
}

/// Takes a lock on `file`: exclusive and blocking, or shared and non-blocking. `Ok(false)`
/// when a shared lock is refused because someone holds it exclusively.
fn lock(file: &File, exclusive: bool, path: &Path) -> Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    let op = if exclusive {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    loop {
        match flock(file, op) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(e) => return Err(Error::io(path, e.into(), 0)),
        }
    }
}

/// Whether the process that owns node `id` in `root` is alive. A node that cannot be checked
/// (an I/O error other than "not found") counts as alive: never reclaim on a doubt.
pub(crate) fn is_alive(root: &Path, id: u64) -> bool {
    let path = node_path(root, id);
    match File::open(&path) {
        Ok(file) => !matches!(lock(&file, false, &path), Ok(true)),
        Err(e) => e.kind() != ErrorKind::NotFound,
    }
}

/// Removes the node file of a dead process (no-op if it is alive or gone).
pub(crate) fn remove_if_dead(root: &Path, id: u64) {
    if !is_alive(root, id) {
        let _ = std::fs::remove_file(node_path(root, id));
    }
}

/// With the root lock held (nodes are only created under it): removes the node files of dead
/// processes in `root`, and the temporary files of nodes whose creator died half-way.
pub(crate) fn sweep_root(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(".node.") && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(id) = name
            .strip_prefix("node.")
            .filter(|hex| hex.len() == 16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        {
            remove_if_dead(root, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_node_is_alive_and_a_dropped_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let node = join(dir.path()).unwrap();
        let again = join(dir.path()).unwrap();
        assert_eq!(node.id(), again.id(), "one node per process and root");
        assert!(is_alive(dir.path(), node.id()));
        assert!(
            !is_alive(dir.path(), node.id() ^ 1),
            "an unknown node is dead"
        );
        let id = node.id();
        drop((node, again));
        assert!(!is_alive(dir.path(), id));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn an_unlocked_node_file_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(node_path(dir.path(), 42), b"").unwrap();
        assert!(!is_alive(dir.path(), 42));
        std::fs::write(dir.path().join(".node.000000000000002b.tmp"), b"").unwrap();
        let live = join(dir.path()).unwrap();
        sweep_root(dir.path());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(
            left,
            vec![node_path(dir.path(), live.id())],
            "only the live node stays"
        );
    }
}
