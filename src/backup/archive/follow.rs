//! Reading a new archive back while it is written: the compressed body is read from the file
//! (not from memory) right behind the writer, decoded and taken apart entry by entry on a
//! thread of its own, so the read-back overlaps the compression instead of following it.
//! The writer's file goes through [`Feeding`], which tells the [`Following`] reader how far
//! the file is written; the reader starts the kernel's write-back of what it has read (so the
//! final fsync has little left to do), off the writer's thread, which is the busiest one.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};

use super::{check_entry_path, read_error, EntryKind, Gate, ZSTD_WINDOW_LOG_MAX};

/// How far the file is written, and whether the writer is done (or gone).
#[derive(Default)]
pub struct Tail {
    state: Mutex<(u64, bool)>,
    moved: Condvar,
}

impl Tail {
    fn set(&self, written: Option<u64>, done: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = written {
            s.0 = w;
        }
        s.1 |= done;
        self.moved.notify_all();
    }
}

/// Starts write-back after this much new data.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// The archive file as the compressor writes it (sequentially, from `pos`).
pub struct Feeding {
    file: Option<File>,
    pos: u64,
    tail: Option<Arc<Tail>>,
}

impl Feeding {
    pub fn new(file: File, pos: u64, tail: Option<Arc<Tail>>) -> Self {
        Feeding {
            file: Some(file),
            pos,
            tail,
        }
    }

    /// The file, all of it written: a follower reads to its end.
    pub fn into_file(mut self) -> File {
        if let Some(t) = self.tail.take() {
            t.set(Some(self.pos), true);
        }
        self.file.take().expect("the file is taken only here")
    }
}

impl Drop for Feeding {
    fn drop(&mut self) {
        // A writer that failed: its follower stops at what is there (and reports it truncated).
        if let Some(t) = self.tail.take() {
            t.set(None, true);
        }
    }
}

impl Write for Feeding {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("the archive is finished"));
        };
        let n = file.write(buf)?;
        self.pos += n as u64;
        if let Some(t) = &self.tail {
            t.set(Some(self.pos), false);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Reads the file from `pos` as far as it is written, waiting for more until the writer is
/// done.
pub struct Following {
    file: File,
    pos: u64,
    synced: u64,
    tail: Arc<Tail>,
}

impl Following {
    pub fn new(file: File, pos: u64, tail: Arc<Tail>) -> Self {
        Following {
            file,
            pos,
            synced: pos,
            tail,
        }
    }

    /// Queues what was read back, up to 1 MiB behind it (whole pages the writer is done
    /// with), for write-back, and returns at once.
    fn write_back(&mut self) {
        let end = (self.pos & !((1 << 20) - 1)).saturating_sub(1 << 20);
        if end >= self.synced + WRITEBACK_EVERY {
            // SAFETY: a plain system call on a descriptor this owns, no memory passed.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.synced as libc::off64_t,
                    (end - self.synced) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.synced = end;
        }
    }
}

impl Read for Following {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = {
            let mut s = self.tail.state.lock().unwrap_or_else(|e| e.into_inner());
            while s.0 <= self.pos && !s.1 {
                s = self.tail.moved.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            s.0.saturating_sub(self.pos)
        };
        if avail == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(avail) as usize;
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        self.write_back();
        Ok(n)
    }
}

/// One entry as it was read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub link: Option<String>,
}

/// Decodes the zstd body and lists its entries, reading to the end of the stream, where zstd
/// checks the checksum of everything the compressor was given.
pub fn read_body(from: Following) -> anyhow::Result<Vec<Seen>> {
    let mut d = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(1 << 20, from))?;
    d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    let mut ar = tar::Archive::new(Gate::new(d));
    let mut seen = Vec::new();
    for e in ar.entries().map_err(read_error)? {
        let mut e = e.map_err(read_error)?;
        let raw = e
            .path()
            .map_err(|err| super::problem(format!("an entry has an unreadable path: {err}")))?
            .to_string_lossy()
            .into_owned();
        let path = check_entry_path(&raw)?;
        let kind = match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            other => {
                return Err(super::problem(format!(
                    "entry `{path}` is of a kind backups never hold ({other:?})"
                )))
            }
        };
        let link = match kind {
            EntryKind::Symlink | EntryKind::Hardlink => e
                .link_name()
                .map_err(|err| super::problem(format!("link `{path}` is unreadable: {err}")))?
                .map(|t| t.to_string_lossy().into_owned()),
            _ => None,
        };
        let size = io::copy(&mut e, &mut io::sink()).map_err(read_error)?;
        seen.push(Seen {
            path,
            kind,
            size,
            link,
        });
    }
    io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(read_error)?;
    Ok(seen)
}
