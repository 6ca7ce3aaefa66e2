//! Opening the defaults file without trusting what another user could have put in its way.
//!
//! A `shmx.toml` sets the root and the mode of a process's topics, so a file that another
//! user could write would let that user redirect them (into a directory the other user
//! reads) or widen them. Like `ssh` with its configuration, the file is refused unless:
//!
//! - it is a regular file owned by the process's effective uid or by root (uid 0);
//! - neither its group nor others may write it (no `0o022` bit);
//! - every symbolic link on the way to it, in its name or in any directory's, is owned by
//!   the effective uid or by root.
//!
//! Each fact comes from the opened object itself, never from a look at a path followed by
//! an open of the same path (which another user could swap in between): the path is walked
//! one component at a time, each opened relative to its parent's descriptor with
//! `O_NOFOLLOW` (on Linux with `O_PATH`: a descriptor of a symbolic link itself, whose
//! owner `fstat` gives and whose target `readlinkat` reads), and the file's owner and mode
//! are those of the descriptor that is then read (`fstat`). Directories on the way are not
//! checked: in a directory another user may write, their own files and links are refused,
//! but they could choose *which* trusted file is read there (a hard link to a file of
//! yours or root's where `fs.protected_hardlinks` is off, or a file of yours they can
//! rename), not what it says. That is why the search reads `./shmx.toml` only from a current
//! directory that no other user may write (see `defaults`). Files served by procfs or sysfs
//! are refused: they belong to root but may show another process's words.

use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed at most on the way to the file (as the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Write permission of the group and of others.
const GROUP_OR_OTHERS_WRITE: u32 = 0o022;

/// What [`open`] found at a path.
#[derive(Debug)]
pub(super) enum Found {
    /// The file, open for reading and trusted.
    File(File),
    /// Nothing: the file or a directory on the way does not exist.
    Missing,
    /// A directory on the way that this process may not search (say the `HOME` of another
    /// user after `su`): what the process cannot reach, it does not find.
    Hidden(String),
}

/// Opens `path` for reading if it exists and may be trusted; `Err` says why it is refused
/// or cannot be opened.
pub(super) fn open(path: &Path) -> Result<Found, String> {
    let euid = rustix::process::geteuid().as_raw();
    // The components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dirs: Vec<OwnedFd> = vec![open_dir(start).map_err(|e| cannot(start.as_ref(), e))?];
    // The path walked so far, for messages (a link's target replaces the link's name).
    let mut walked = PathBuf::from(start);
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name.is_empty() || name == "." {
            continue;
        }
        let dir = dirs.last().expect("the start directory is never popped");
        if name == ".." {
            walked.push("..");
            if dirs.len() > 1 {
                dirs.pop();
            } else {
                let up = rustix::fs::openat(dir, "..", DIR_FLAGS, Mode::empty())
                    .map_err(|e| cannot(&walked, e))?;
                dirs[0] = up;
            }
            continue;
        }
        let here = walked.join(&name);
        let last = pending.is_empty();
        let entry = match probe(dir, &name) {
            Ok(entry) => entry,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(Found::Missing),
            Err(Errno::ACCESS) => {
                let reason = format!(
                    "cannot look into {}: this process may not search it",
                    walked.display()
                );
                return Ok(Found::Hidden(reason));
            }
            Err(e) => return Err(cannot(&here, e)),
        };
        match entry {
            Entry::Link { uid, target } => {
                if uid != euid && uid != 0 {
                    return Err(format!(
                        "refused: it is reached through the symbolic link {} of uid {uid}, \
                         neither this process's uid {euid} nor root; another user could point \
                         it at a file of theirs (which would set the root and mode of your \
                         topics): remove the link, or point SHMX_CONFIG at the file itself",
                        here.display()
                    ));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!(
                        "cannot open it: more than {MAX_LINKS} symbolic links on the way"
                    ));
                }
                if target.is_absolute() {
                    dirs = vec![open_dir("/").map_err(|e| cannot("/".as_ref(), e))?];
                    walked = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            Entry::Dir(fd) if !last => {
                dirs.push(fd);
                walked = here;
            }
            Entry::File if last => return read_trusted(dir, &name, &here, euid),
            // A file where a directory should be: the path names nothing.
            _ if !last => return Ok(Found::Missing),
            _ => return Err("it is not a regular file".into()),
        }
    }
    // The path ends in `/`, `.` or `..`: a directory.
    Err("it is not a regular file".into())
}

/// Opens `name` in `dir` for reading and checks the opened file's owner and mode. A file
/// this process may not read is [`Found::Hidden`], as a directory it may not search.
fn read_trusted(dir: &OwnedFd, name: &OsStr, here: &Path, euid: u32) -> Result<Found, String> {
    // `NONBLOCK`: a FIFO swapped in after the probe must not hang the open (it is refused
    // below, as everything but a regular file).
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(dir, name, flags | OFlags::NOCTTY, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => {
            return Err("it was replaced by a symbolic link while it was opened".into());
        }
        Err(Errno::ACCESS) => {
            return Ok(Found::Hidden(format!(
                "cannot read {}: this process may not read it",
                here.display()
            )));
        }
        Err(e) => return Err(cannot(here, e)),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| cannot(here, e))?;
    check(&stat, euid)?;
    if served_by_the_kernel(&fd) {
        return Err(
            "refused: it is served by procfs or sysfs, whose root-owned files may show              another process's words"
                .into(),
        );
    }
    Ok(Found::File(File::from(fd)))
}

/// Whether `fd` is a file of procfs or sysfs.
fn served_by_the_kernel(fd: &OwnedFd) -> bool {
    const PROC_SUPER_MAGIC: u64 = 0x9fa0;
    const SYSFS_MAGIC: u64 = 0x6265_6572;
    rustix::fs::fstatfs(fd)
        .is_ok_and(|fs| matches!(fs.f_type as u64, PROC_SUPER_MAGIC | SYSFS_MAGIC))
}

/// The rule for the opened file itself (see the module docs).
fn check(stat: &Stat, euid: u32) -> Result<(), String> {
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err("it is not a regular file".into());
    }
    let (uid, mode) = (stat.st_uid, stat.st_mode & 0o7777);
    if uid != euid && uid != 0 {
        return Err(format!(
            "refused: the file belongs to uid {uid}, neither this process's uid {euid} nor \
             root; another user could set the root and mode of your topics through it: \
             remove it, or point SHMX_CONFIG at a file of your own (SHMX_CONFIG= for none)"
        ));
    }
    if mode & GROUP_OR_OTHERS_WRITE != 0 {
        let who = if mode & 0o002 != 0 {
            "other users"
        } else {
            "its group"
        };
        return Err(format!(
            "refused: the file has mode {mode:04o}: {who} may write it, and so set the root \
             and mode of your topics; `chmod go-w` it"
        ));
    }
    Ok(())
}

/// What a component of the path is.
enum Entry {
    /// A symbolic link: its owner and its target.
    Link { uid: u32, target: PathBuf },
    /// A directory, opened (for searching).
    Dir(OwnedFd),
    /// A regular file.
    File,
    /// Anything else.
    Other,
}

/// Flags that open a directory to search it: `O_PATH` where there is one (search permission
/// is enough, and nothing is read).
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

fn open_dir(path: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(rustix::fs::CWD, path, DIR_FLAGS, Mode::empty())
}

/// Looks at `name` in `dir` without following it: a descriptor of the entry itself
/// (`O_PATH | O_NOFOLLOW`), so that its type, its owner and a link's target all come from
/// the one object.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn probe(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<Entry> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let stat = rustix::fs::fstat(&fd)?;
    Ok(match FileType::from_raw_mode(stat.st_mode) {
        FileType::Symlink => {
            // An empty path reads the link the descriptor itself stands for.
            let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
            Entry::Link {
                uid: stat.st_uid,
                target: PathBuf::from(OsStr::from_bytes(target.as_bytes())),
            }
        }
        FileType::Directory => Entry::Dir(fd),
        FileType::RegularFile => Entry::File,
        _ => Entry::Other,
    })
}

/// Looks at `name` in `dir` without following it (systems without `O_PATH`: a link's owner
/// and target are read by name, so another user who may write `dir` could swap the link in
/// between; the file itself is still checked through its descriptor).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn probe(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<Entry> {
    let stat = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(match FileType::from_raw_mode(stat.st_mode) {
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
            Entry::Link {
                uid: stat.st_uid,
                target: PathBuf::from(OsStr::from_bytes(target.as_bytes())),
            }
        }
        FileType::Directory => {
            let flags = DIR_FLAGS | OFlags::NOFOLLOW;
            Entry::Dir(rustix::fs::openat(dir, name, flags, Mode::empty())?)
        }
        FileType::RegularFile => Entry::File,
        _ => Entry::Other,
    })
}

/// Pushes the components of `path` onto `pending` so that the first is popped first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let names = path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    });
    let names: Vec<OsString> = names.collect();
    pending.extend(names.into_iter().rev());
}

fn cannot(path: &Path, e: Errno) -> String {
    format!(
        "cannot open {}: {}",
        path.display(),
        std::io::Error::from(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};

    const NOBODY: u32 = 65534;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn write(path: &Path, mode: u32) {
        std::fs::write(path, "# shmx\n").unwrap();
        std::fs::set_permissions(path, PermissionsExt::from_mode(mode)).unwrap();
    }

    fn read(path: &Path) -> Result<Option<String>, String> {
        match open(path)? {
            Found::File(mut f) => {
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                Ok(Some(s))
            }
            Found::Missing => Ok(None),
            Found::Hidden(reason) => Err(format!("hidden: {reason}")),
        }
    }

    #[test]
    fn a_private_file_of_this_user_is_read_through_links_of_this_user() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shmx.toml");
        write(&file, 0o644);
        assert_eq!(read(&file).unwrap().as_deref(), Some("# shmx\n"));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        symlink("../shmx.toml", dir.path().join("sub/rel")).unwrap();
        symlink(&file, dir.path().join("abs")).unwrap();
        symlink(dir.path().join("sub"), dir.path().join("dirlink")).unwrap();
        for p in [
            "sub/rel",
            "abs",
            "dirlink/rel",
            "sub/../shmx.toml",
            "./sub/./rel",
        ] {
            assert!(read(&dir.path().join(p)).unwrap().is_some(), "{p}");
        }
    }

    #[test]
    fn what_does_not_exist_is_none_and_what_is_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("missing")), Ok(None));
        assert_eq!(read(&dir.path().join("missing/shmx.toml")), Ok(None));
        write(&dir.path().join("file"), 0o600);
        assert_eq!(read(&dir.path().join("file/shmx.toml")), Ok(None));
        symlink("nowhere", dir.path().join("dangling")).unwrap();
        assert_eq!(read(&dir.path().join("dangling")), Ok(None));
        let e = read(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read(&dir.path().join("fifo")).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        symlink("loop", dir.path().join("loop")).unwrap();
        let e = read(&dir.path().join("loop")).unwrap_err();
        assert!(e.contains("symbolic links"), "{e}");
    }

    #[test]
    fn a_file_its_group_or_others_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shmx.toml");
        for (mode, who) in [(0o664, "its group"), (0o646, "other users")] {
            write(&file, mode);
            let e = read(&file).unwrap_err();
            assert!(
                e.contains(&format!("{mode:04o}")) && e.contains(who) && e.contains("chmod"),
                "{e}"
            );
        }
        // Readable by all is fine: nobody else can change it.
        write(&file, 0o444);
        assert!(read(&file).unwrap().is_some());
    }

    #[test]
    fn a_file_or_a_link_of_another_user_is_refused() {
        if !is_root() {
            eprintln!("skipped: needs root to make files of another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shmx.toml");
        write(&file, 0o644);
        std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
        let e = read(&file).unwrap_err();
        assert!(e.contains("uid 65534") && e.contains("belongs"), "{e}");

        let mine = dir.path().join("mine.toml");
        write(&mine, 0o644);
        let link = dir.path().join("link.toml");
        symlink(&mine, &link).unwrap();
        assert!(read(&link).unwrap().is_some());
        std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
        let e = read(&link).unwrap_err();
        assert!(
            e.contains("symbolic link") && e.contains("link.toml") && e.contains("uid 65534"),
            "{e}"
        );
        // A link of another user in a directory's name is refused too.
        std::fs::create_dir(dir.path().join("real")).unwrap();
        write(&dir.path().join("real/shmx.toml"), 0o644);
        let dirlink = dir.path().join("dirlink");
        symlink(dir.path().join("real"), &dirlink).unwrap();
        std::os::unix::fs::lchown(&dirlink, Some(NOBODY), Some(NOBODY)).unwrap();
        let e = read(&dirlink.join("shmx.toml")).unwrap_err();
        assert!(e.contains("dirlink") && e.contains("uid 65534"), "{e}");
    }
}
