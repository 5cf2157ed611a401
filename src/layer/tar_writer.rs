//! A deterministic tar writer: sorted walk, parents before children, fixed mtimes, owner set by
//! the caller, empty uname/gname, PAX records for long names, hardlinks kept within the layer.
//!
//! Names are written exactly as given (the CNB lifecycle uses absolute names such as
//! `/layers/bp/layer/bin/x`), so the ustar name fields are filled by hand: the `tar` crate's
//! `set_path` refuses absolute names, and 0.4.46 has no PAX writer.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::prefetch::{Piece, Prefetch};

/// 1980-01-01T00:00:01Z, the mtime of every entry in a CNB layer.
pub const NORMALIZED_MTIME: u64 = 315_532_801;

#[derive(Clone, Debug)]
pub struct TarOptions {
    /// Owner of the entries written from a tree (not of on-disk parents).
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Write hard links as links to the first path seen (false: as independent files).
    pub keep_hardlinks: bool,
    /// Entries written from a tree keep their owner on disk instead of `uid`/`gid` (a
    /// distribution's root filesystem, whose setgid tools and group-owned files matter).
    pub owners_from_disk: bool,
}

impl Default for TarOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            mtime: NORMALIZED_MTIME,
            keep_hardlinks: true,
            owners_from_disk: false,
        }
    }
}

/// Streams tar entries into `W`. Call [`TarWriter::finish`] to write the end-of-archive blocks.
pub struct TarWriter<W: Write> {
    out: tar::Builder<W>,
    opts: TarOptions,
    written: HashSet<Vec<u8>>,
    inodes: HashMap<(u64, u64), Vec<u8>>,
    /// File contents are copied through this (tar's own copy uses 8 KiB reads: ~4x the
    /// syscalls and writes into the hasher/compressor for a tree of small files).
    buf: Vec<u8>,
    /// File contents read ahead by [`TarWriter::append_entries`].
    ahead: Option<Prefetch>,
}

/// Depth-first walk below `dir` in byte order of names: (path, name, metadata), parents first.
fn walk(
    dir: &Path,
    name: &[u8],
    out: &mut Vec<(PathBuf, Vec<u8>, fs::Metadata)>,
) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(|e| path_err("read directory", dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| path_err("read directory", dir, e))?;
    children.sort();
    for child in children {
        let src = dir.join(&child);
        let mut child_name = name.to_vec();
        if !child_name.is_empty() && !child_name.ends_with(b"/") {
            child_name.push(b'/');
        }
        child_name.extend_from_slice(child.as_bytes());
        let meta = fs::symlink_metadata(&src).map_err(|e| path_err("stat", &src, e))?;
        let is_dir = meta.is_dir();
        out.push((src.clone(), child_name.clone(), meta));
        if is_dir {
            walk(&src, &child_name, out)?;
        }
    }
    Ok(())
}

/// The error of one path while writing a tar.
fn path_err(op: &str, p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {}: {e}", p.display()))
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W, opts: TarOptions) -> Self {
        Self {
            out: tar::Builder::new(w),
            opts,
            written: HashSet::new(),
            inodes: HashMap::new(),
            buf: Vec::new(),
            ahead: None,
        }
    }

    /// Write the two zero blocks that end an archive and return the writer.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner()
    }

    /// Write the parent directories of `name` (not `/`, not already written). With `on_disk`,
    /// each parent takes the mode and owner of the same path on disk (as the CNB exporter does);
    /// otherwise 0755 and the configured owner.
    pub fn append_parents(&mut self, name: &str, on_disk: bool) -> io::Result<()> {
        let absolute = name.starts_with('/');
        let comps: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
        for i in 1..comps.len() {
            let rel = comps[..i].join("/");
            let full = if absolute { format!("/{rel}") } else { rel };
            if self.written.contains(full.as_bytes()) {
                continue;
            }
            let (mode, uid, gid) = if on_disk {
                let m = fs::metadata(&full).map_err(|e| path_err("stat", Path::new(&full), e))?;
                (m.mode() & 0o7777, u64::from(m.uid()), u64::from(m.gid()))
            } else {
                (0o755, self.opts.uid, self.opts.gid)
            };
            self.dir_entry(full.as_bytes(), mode, uid, gid)?;
        }
        Ok(())
    }

    /// Write `src` (a directory, file or symlink) and everything below it, named `name` in the
    /// archive. Entries are visited depth-first in byte order of their names.
    pub fn append_tree(&mut self, src: &Path, name: &str) -> io::Result<()> {
        let name = name.trim_end_matches('/').as_bytes().to_vec();
        let meta = fs::symlink_metadata(src).map_err(|e| path_err("stat", src, e))?;
        let is_dir = meta.is_dir();
        let mut items = vec![(src.to_path_buf(), name.clone(), meta)];
        if is_dir {
            walk(src, &name, &mut items)?;
        }
        self.write_items(items)
    }

    /// Write one path (not what is below it) as `name`: a directory, file, symlink or node.
    pub fn append_entry(&mut self, src: &Path, name: &[u8]) -> io::Result<()> {
        let meta = fs::symlink_metadata(src).map_err(|e| path_err("stat", src, e))?;
        self.append_path(src, name, &meta)
    }

    /// Write each `(path, name)` as one entry (not recursively), in order, reading file
    /// contents ahead on another thread.
    pub fn append_entries(&mut self, entries: &[(PathBuf, Vec<u8>)]) -> io::Result<()> {
        let mut items = Vec::with_capacity(entries.len());
        for (src, name) in entries {
            let meta = fs::symlink_metadata(src).map_err(|e| path_err("stat", src, e))?;
            items.push((src.clone(), name.clone(), meta));
        }
        self.write_items(items)
    }

    fn write_items(&mut self, items: Vec<(PathBuf, Vec<u8>, fs::Metadata)>) -> io::Result<()> {
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
        if parallel && self.ahead.is_none() {
            // The files whose contents will be written, decided as `append_path` will.
            let mut seen: HashSet<(u64, u64)> = HashSet::new();
            let files = items
                .iter()
                .filter(|(_, _, m)| m.file_type().is_file())
                .filter(|(_, _, m)| {
                    if !(self.opts.keep_hardlinks && m.nlink() > 1) {
                        return true;
                    }
                    let key = (m.dev(), m.ino());
                    !self.inodes.contains_key(&key) && seen.insert(key)
                })
                .map(|(p, _, m)| (p.clone(), m.len()))
                .collect();
            self.ahead = Some(Prefetch::start(files));
        }
        let mut result = Ok(());
        for (src, name, meta) in &items {
            result = self.append_path(src, name, meta);
            if result.is_err() {
                break;
            }
        }
        if let Some(p) = self.ahead.take() {
            p.finish();
        }
        result
    }

    fn append_path(&mut self, src: &Path, name: &[u8], meta: &fs::Metadata) -> io::Result<()> {
        let (uid, gid) = if self.opts.owners_from_disk {
            (u64::from(meta.uid()), u64::from(meta.gid()))
        } else {
            (self.opts.uid, self.opts.gid)
        };
        let mode = meta.mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_dir() {
            return self.dir_entry(name, mode, uid, gid);
        }
        if ft.is_symlink() {
            let target = fs::read_link(src).map_err(|e| path_err("read link", src, e))?;
            return self.link_entry_owned(
                EntryType::Symlink,
                name,
                target.as_os_str().as_bytes(),
                (0o777, uid, gid),
            );
        }
        if ft.is_socket() {
            tracing::debug!(path = %src.display(), "skipping socket");
            return Ok(());
        }
        if ft.is_file() {
            if self.opts.keep_hardlinks && meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.inodes.get(&key).cloned() {
                    return self.link_entry_owned(EntryType::Link, name, &first, (mode, uid, gid));
                }
                self.inodes.insert(key, name.to_vec());
            }
            let size = meta.len();
            let mut h = self.header(EntryType::Regular, name, mode, uid, gid, size)?;
            h.set_cksum();
            if self.ahead.is_some() {
                self.append_prefetched(&h, size, src)?;
            } else {
                let f = fs::File::open(src).map_err(|e| path_err("open", src, e))?;
                self.append_file_data(&h, f, size, src)?;
            }
            self.written.insert(name.to_vec());
            return Ok(());
        }
        // FIFOs and device nodes.
        let kind = if ft.is_fifo() {
            EntryType::Fifo
        } else if ft.is_char_device() {
            EntryType::Char
        } else {
            EntryType::Block
        };
        let mut h = self.header(kind, name, mode, uid, gid, 0)?;
        if kind != EntryType::Fifo {
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
        }
        h.set_cksum();
        self.out.append(&h, io::empty())?;
        self.written.insert(name.to_vec());
        Ok(())
    }

    /// Write a directory entry.
    pub fn dir_entry(&mut self, name: &[u8], mode: u32, uid: u64, gid: u64) -> io::Result<()> {
        let mut h = self.header(EntryType::Directory, name, mode, uid, gid, 0)?;
        h.set_cksum();
        self.out.append(&h, io::empty())?;
        self.written.insert(name.to_vec());
        Ok(())
    }

    /// Write a regular file from bytes (config files, generated content).
    pub fn file_entry(&mut self, name: &[u8], mode: u32, data: &[u8]) -> io::Result<()> {
        let (uid, gid) = (self.opts.uid, self.opts.gid);
        let mut h = self.header(EntryType::Regular, name, mode, uid, gid, data.len() as u64)?;
        h.set_cksum();
        self.out.append(&h, data)?;
        self.written.insert(name.to_vec());
        Ok(())
    }

    /// Write a regular file entry from a reader of exactly the file's size.
    pub fn file_from(&mut self, name: &[u8], mode: u32, f: std::fs::File) -> io::Result<()> {
        let size = f.metadata()?.len();
        let (uid, gid) = (self.opts.uid, self.opts.gid);
        let mut h = self.header(EntryType::Regular, name, mode, uid, gid, size)?;
        h.set_cksum();
        let shown = String::from_utf8_lossy(name).into_owned();
        self.append_file_data(&h, f, size, Path::new(&shown))?;
        self.written.insert(name.to_vec());
        Ok(())
    }

    /// Write `h` and exactly `size` bytes of `f`, padded to a block, straight into the output.
    fn append_file_data(
        &mut self,
        h: &Header,
        f: fs::File,
        size: u64,
        path: &Path,
    ) -> io::Result<()> {
        const BUF: usize = 256 * 1024;
        if self.buf.is_empty() {
            self.buf = vec![0; BUF];
        }
        let mut reader = ExactReader {
            inner: f.take(size),
            left: size,
            path,
        };
        let out = self.out.get_mut();
        out.write_all(h.as_bytes())?;
        let mut left = size;
        while left > 0 {
            let want = (left.min(BUF as u64)) as usize;
            let n = reader.read(&mut self.buf[..want])?;
            out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        let pad = (512 - (size % 512) as usize) % 512;
        out.write_all(&[0u8; 512][..pad])
    }

    /// Write `h` and the file's contents as read ahead, padded to a block.
    fn append_prefetched(&mut self, h: &Header, size: u64, path: &Path) -> io::Result<()> {
        let Some(ahead) = &mut self.ahead else {
            return Err(io::Error::other("no read-ahead running"));
        };
        let out = self.out.get_mut();
        out.write_all(h.as_bytes())?;
        let mut got = 0u64;
        loop {
            match ahead.next() {
                Some(Piece::Chunk { data, last }) => {
                    out.write_all(&data)?;
                    got += data.len() as u64;
                    if last {
                        break;
                    }
                }
                Some(Piece::Fail(e)) => return Err(e),
                None => {
                    return Err(io::Error::other(format!(
                        "read-ahead stopped before {}",
                        path.display()
                    )))
                }
            }
        }
        if got != size {
            return Err(io::Error::other(format!(
                "read-ahead out of step at {}: {got} of {size} bytes",
                path.display()
            )));
        }
        let pad = (512 - (size % 512) as usize) % 512;
        out.write_all(&[0u8; 512][..pad])
    }

    /// Write a symlink or hardlink entry.
    pub fn link_entry(
        &mut self,
        kind: EntryType,
        name: &[u8],
        target: &[u8],
        mode: u32,
    ) -> io::Result<()> {
        let (uid, gid) = (self.opts.uid, self.opts.gid);
        self.link_entry_owned(kind, name, target, (mode, uid, gid))
    }

    /// [`TarWriter::link_entry`] with the entry's (mode, uid, gid).
    fn link_entry_owned(
        &mut self,
        kind: EntryType,
        name: &[u8],
        target: &[u8],
        (mode, uid, gid): (u32, u64, u64),
    ) -> io::Result<()> {
        let mut pax = Vec::new();
        let mut h = self.header_with(kind, name, mode, uid, gid, 0, &mut pax)?;
        if target.len() <= 100 {
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
        } else {
            pax_record(&mut pax, "linkpath", target);
            h.as_old_mut().linkname[..100].copy_from_slice(&target[..100]);
        }
        self.write_pax(name, &pax)?;
        h.set_cksum();
        self.out.append(&h, io::empty())?;
        self.written.insert(name.to_vec());
        Ok(())
    }

    fn header(
        &mut self,
        kind: EntryType,
        name: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        size: u64,
    ) -> io::Result<Header> {
        let mut pax = Vec::new();
        let h = self.header_with(kind, name, mode, uid, gid, size, &mut pax)?;
        self.write_pax(name, &pax)?;
        Ok(h)
    }

    #[allow(clippy::too_many_arguments)]
    fn header_with(
        &self,
        kind: EntryType,
        name: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        size: u64,
        pax: &mut Vec<u8>,
    ) -> io::Result<Header> {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(self.opts.mtime);
        // ustar numeric fields hold 7 (ids) and 11 (size) octal digits; larger values go to PAX.
        for (key, v, max) in [("uid", uid, 0o7_777_777), ("gid", gid, 0o7_777_777)] {
            if v > max {
                pax_record(pax, key, v.to_string().as_bytes());
            }
        }
        h.set_uid(uid.min(0o7_777_777));
        h.set_gid(gid.min(0o7_777_777));
        if size > 0o77_777_777_777 {
            pax_record(pax, "size", size.to_string().as_bytes());
        }
        h.set_size(size);
        set_name(&mut h, name, pax);
        Ok(h)
    }

    fn write_pax(&mut self, name: &[u8], records: &[u8]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_mtime(self.opts.mtime);
        h.set_size(records.len() as u64);
        // Name like Go's archive/tar: "PaxHeaders.0/<base name>", truncated to fit.
        let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
        let mut pname = b"PaxHeaders.0/".to_vec();
        pname.extend_from_slice(&base[..base.len().min(100 - pname.len())]);
        h.as_old_mut().name[..pname.len()].copy_from_slice(&pname);
        h.set_cksum();
        self.out.append(&h, records)
    }
}

/// Put `name` in the ustar name (and prefix) fields, or in a PAX `path` record if it cannot fit.
fn set_name(h: &mut Header, name: &[u8], pax: &mut Vec<u8>) {
    if name.len() <= 100 {
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        return;
    }
    // ustar: prefix (≤155) + '/' + name (≤100), split at a slash.
    if name.len() <= 256 {
        let split = (0..name.len())
            .rev()
            .filter(|&i| name[i] == b'/')
            .find(|&i| i <= 155 && name.len() - i - 1 <= 100 && i > 0 && i + 1 < name.len());
        if let Some(i) = split {
            if let Some(u) = h.as_ustar_mut() {
                u.prefix[..i].copy_from_slice(&name[..i]);
                u.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
                return;
            }
        }
    }
    pax_record(pax, "path", name);
    h.as_old_mut().name[..100].copy_from_slice(&name[..100]);
}

/// Append one PAX record, `"<len> <key>=<value>\n"`, where len counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Reads exactly the size recorded in the header, failing if the file shrank meanwhile (a file
/// that grew is cut at the recorded size by `take`). Either way the archive stays well-formed
/// or the write fails; it is never silently wrong.
struct ExactReader<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} changed while being read: {} bytes missing",
                    self.path.display(),
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", &[b'a'; 95]);
        let s = String::from_utf8(out).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), s.len());
        let mut out = Vec::new();
        pax_record(&mut out, "path", b"x");
        assert_eq!(out, b"9 path=x\n");
    }

    #[test]
    fn long_names_and_targets_round_trip_through_tar_reader() {
        let long = format!("/{}/{}", "d".repeat(150), "f".repeat(120));
        let mut w = TarWriter::new(Vec::new(), TarOptions::default());
        w.file_entry(long.as_bytes(), 0o644, b"hi").unwrap();
        w.file_entry(b"/short", 0o755, b"").unwrap();
        let target = "t".repeat(130);
        w.link_entry(EntryType::Symlink, b"/link", target.as_bytes(), 0o777)
            .unwrap();
        let bytes = w.finish().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let got: Vec<(Vec<u8>, Option<Vec<u8>>, u32)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path_bytes().into_owned(),
                    e.link_name_bytes().map(|l| l.into_owned()),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(got[0].0, long.as_bytes());
        assert_eq!(got[1], (b"/short".to_vec(), None, 0o755));
        assert_eq!(got[2].1.as_deref(), Some(target.as_bytes()));
        assert_eq!(bytes.len() % 512, 0);
        assert!(bytes[bytes.len() - 1024..].iter().all(|b| *b == 0));
    }

    #[test]
    fn read_ahead_keeps_contents_links_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
        fs::write(dir.path().join("big"), &big).unwrap();
        fs::write(dir.path().join("empty"), b"").unwrap();
        fs::write(dir.path().join("a"), b"first").unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let mut w = TarWriter::new(Vec::new(), TarOptions::default());
        w.append_tree(dir.path(), "root").unwrap();
        let bytes = w.finish().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            match name.as_str() {
                "root/big" => assert!(data == big, "big file contents differ"),
                "root/a" => assert_eq!(data, b"first"),
                "root/b" => assert_eq!(e.header().entry_type(), EntryType::Link),
                _ => {}
            }
            seen.push(name);
        }
        assert_eq!(seen, ["root", "root/a", "root/b", "root/big", "root/empty"]);
        // Same bytes as writing without read-ahead.
        let mut plain = TarWriter::new(Vec::new(), TarOptions::default());
        plain
            .append_path(
                dir.path(),
                b"root",
                &fs::symlink_metadata(dir.path()).unwrap(),
            )
            .unwrap();
        for n in ["a", "b", "big", "empty"] {
            plain
                .append_entry(&dir.path().join(n), format!("root/{n}").as_bytes())
                .unwrap();
        }
        assert!(plain.finish().unwrap() == bytes);
    }

    #[test]
    fn owners_from_disk_keeps_each_entrys_owner() {
        use std::os::unix::fs::{symlink, MetadataExt};
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"x").unwrap();
        symlink("f", dir.path().join("l")).unwrap();
        // As root, give the file another group; otherwise every entry is the test user's.
        let root = fs::metadata(dir.path()).unwrap().uid() == 0;
        if root {
            std::os::unix::fs::lchown(dir.path().join("f"), Some(0), Some(42)).unwrap();
        }
        let owners = |opts: TarOptions| -> Vec<(String, u64, u64)> {
            let mut w = TarWriter::new(Vec::new(), opts);
            w.append_tree(dir.path(), "r").unwrap();
            let bytes = w.finish().unwrap();
            let mut a = tar::Archive::new(&bytes[..]);
            a.entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let h = e.header();
                    let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
                    (name, h.uid().unwrap(), h.gid().unwrap())
                })
                .collect()
        };
        let fixed = TarOptions {
            uid: 7,
            gid: 8,
            ..Default::default()
        };
        assert!(owners(fixed.clone())
            .iter()
            .all(|(_, u, g)| (*u, *g) == (7, 8)));
        let disk = owners(TarOptions {
            owners_from_disk: true,
            ..fixed
        });
        for (name, uid, gid) in disk {
            let m = fs::symlink_metadata(
                dir.path()
                    .join(name.trim_start_matches("r").trim_start_matches('/')),
            )
            .unwrap();
            assert_eq!(
                (uid, gid),
                (u64::from(m.uid()), u64::from(m.gid())),
                "{name}"
            );
            if root && name == "r/f" {
                assert_eq!(gid, 42);
            }
        }
    }
}
