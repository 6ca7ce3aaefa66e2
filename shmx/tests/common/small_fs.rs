//! A small tmpfs mounted by a test, to fill shared memory on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted for one test (needs root and mount rights: `mount`
/// returns `None` otherwise, and the test says it skipped); unmounted and removed when
/// dropped.
pub struct SmallFs(PathBuf);

impl SmallFs {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `"256k"`, `"12m"`) on a fresh directory
    /// named after `name` and this process.
    pub fn mount(name: &str, size: &str) -> Option<SmallFs> {
        let dir = std::env::temp_dir().join(format!("shmx-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(SmallFs(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
