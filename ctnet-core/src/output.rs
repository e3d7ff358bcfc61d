//! Output files (`snapshot -o`, `capture -w`, the dashboard's saves) written safely.
//!
//! A capture holds whatever crossed the wire and a snapshot the host's whole network
//! layout, and root writes them, often into a world-writable directory. So a file is
//! never opened by its name: it is written to a new temporary file beside it
//! (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600) and renamed over the name at the end.
//! A symlink planted at the name is replaced, never followed; an existing file's
//! owner and mode are not inherited; a write that fails (a full disk) leaves the old
//! file as it was and says which path failed. An existing device or FIFO
//! (`-w /dev/null`) is written in place, never replaced.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// An output file being written; [`OutputFile::commit`] puts it in place.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    /// The temporary file to rename over `path` (none for a device or FIFO).
    tmp: Option<PathBuf>,
    file: File,
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot write {}: {why}", crate::text::path(path)))
}

impl OutputFile {
    /// Start writing `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(path, "not a file name"))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let meta = std::fs::symlink_metadata(path);
        let in_place = match &meta {
            Ok(m) => is_stream(m.file_type()) || (m.file_type().is_symlink() && names_open_file(path)),
            Err(_) => names_open_file(path),
        };
        if in_place {
            return Self::in_place(path, meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()));
        }
        match meta {
            Ok(m) if m.is_dir() => return Err(invalid(path, "it is a directory")),
            Ok(m) if !m.is_file() && !m.file_type().is_symlink() => {
                return Err(invalid(path, "it is not a regular file"));
            }
            _ => {}
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(invalid(
                    path,
                    format!("{} is not a directory", crate::text::path(&dir)),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(invalid(
                    path,
                    format!(
                        "directory {} does not exist (create it first)",
                        crate::text::path(&dir)
                    ),
                ));
            }
            Err(e) => return Err(Error::io("reading directory", &dir, e)),
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let mut last = None;
        for _ in 0..16 {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(
                ".ctnet-{}-{}.tmp",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let tmp = dir.join(tmp_name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                        tmp: Some(tmp),
                        file,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(invalid(
                        path,
                        format!("directory {} does not exist", crate::text::path(&dir)),
                    ));
                }
                Err(e) => return Err(Error::io("creating", path, e)),
            }
        }
        Err(Error::io(
            "creating a temporary file for",
            path,
            last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EEXIST)),
        ))
    }

    /// Open a device, FIFO or an already open file (`/dev/stdout`, `/proc/self/fd/N`)
    /// where it is: written as it is, never replaced. What was opened is checked
    /// again on the handle, so a regular file swapped in after the first look is
    /// refused (unless the name is an open file's, where a regular file is expected).
    fn in_place(path: &Path, follow: bool) -> Result<Self> {
        let mut flags = libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| match e.kind() {
                // A name that is not there (`/proc/nope/x`) is a wrong argument, as a
                // directory that does not exist is.
                io::ErrorKind::NotFound => invalid(path, "no such file or directory"),
                _ => Error::io("opening", path, e),
            })?;
        let ft = file
            .metadata()
            .map_err(|e| Error::io("opening", path, e))?
            .file_type();
        if !is_stream(ft) && !names_open_file(path) {
            return Err(invalid(path, "it changed to a regular file while it was opened"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            tmp: None,
            file,
        })
    }

    /// The path this file will have.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cut the file to `len` bytes (a writer dropping a half-written record).
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        use std::io::Seek as _;
        self.file.set_len(len)?;
        self.file.seek(io::SeekFrom::Start(len)).map(|_| ())
    }

    /// Flush to disk and put the file at its path. On an error nothing is renamed
    /// and the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| Error::io("writing", &self.path, e))?;
        if let Some(tmp) = self.tmp.take() {
            // A full disk can be reported only at fsync on some filesystems.
            if let Err(e) = self.file.sync_all() {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io("writing", &self.path, e));
            }
            if let Err(e) = std::fs::rename(&tmp, &self.path) {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io("renaming the finished file to", &self.path, e));
            }
        }
        Ok(())
    }

    /// Write `bytes` whole and commit: a complete file or an error naming the path.
    pub fn write_all_at(path: &Path, bytes: &[u8]) -> Result<()> {
        let mut f = Self::create(path)?;
        f.write_all(bytes).map_err(|e| Error::io("writing", path, e))?;
        f.commit()
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // Not committed: an error happened; the old file (if any) stays as it was.
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A character device, FIFO or socket: written as it is (`-w /dev/null`, a pipe).
fn is_stream(ft: std::fs::FileType) -> bool {
    ft.is_char_device() || ft.is_fifo() || ft.is_socket()
}

/// Whether `path` names a file this process already has open: `/proc/self/fd/N` or a
/// link that leads there (`/dev/stdout`, `/dev/fd/1`). Such a name is written through,
/// never replaced: renaming over `/dev/stdout` would break the system's link.
fn names_open_file(path: &Path) -> bool {
    let mut p = path.to_path_buf();
    for _ in 0..8 {
        if p.starts_with("/proc/") {
            return true;
        }
        match std::fs::read_link(&p) {
            Ok(t) if t.is_absolute() => p = t,
            Ok(t) => p = p.parent().map_or_else(|| t.clone(), |d| d.join(&t)),
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ctnet-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_a_planted_symlink_instead_of_following_it() {
        let d = scratch("symlink");
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let out = d.join("out.pcap");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        OutputFile::write_all_at(&out, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn an_existing_open_file_becomes_0600() {
        let d = scratch("mode");
        let out = d.join("snap.json");
        std::fs::write(&out, "old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        OutputFile::write_all_at(&out, b"{}").unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn an_open_file_named_through_proc_is_written_through_not_replaced() {
        let d = scratch("procfd");
        let target = d.join("stdout.pcap");
        let f = std::fs::File::create(&target).unwrap();
        use std::os::fd::AsRawFd as _;
        let name = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        let link = d.join("stdout");
        std::os::unix::fs::symlink(&name, &link).unwrap();
        // Each open is a new open of the same file (as `tcpdump -w /dev/stdout` has it).
        OutputFile::write_all_at(&name, b"first").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "first");
        OutputFile::write_all_at(&link, b"again").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "again");
        assert!(
            std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
            "the link stays"
        );
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2, "no temporary file");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_missing_directory_is_invalid_input_naming_it() {
        let e = OutputFile::create(Path::new("/nonexistent-ctnet/x.pcap")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("/nonexistent-ctnet"), "{e}");
    }

    #[test]
    fn a_full_device_is_an_error_naming_the_path() {
        let e = OutputFile::write_all_at(Path::new("/dev/full"), b"x").unwrap_err();
        assert!(e.to_string().contains("/dev/full"), "{e}");
        assert!(e.to_string().contains("No space left"), "{e}");
    }

    #[test]
    fn an_abandoned_file_leaves_nothing_and_keeps_the_old_one() {
        let d = scratch("abandon");
        let out = d.join("keep.json");
        std::fs::write(&out, "old").unwrap();
        let mut f = OutputFile::create(&out).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(d);
    }
}
