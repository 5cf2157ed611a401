//! Read files ahead of the tar writer on another thread, so that reading (system time: open,
//! read) overlaps with hashing and compressing the stream. At most `DEPTH` chunks of at most
//! `CHUNK` bytes are in flight, so a layer is never held in memory.

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

const CHUNK: u64 = 1024 * 1024;
const DEPTH: usize = 16;

/// Part of one file's contents, in order; `last` ends the file.
pub(crate) enum Piece {
    Chunk { data: Vec<u8>, last: bool },
    Fail(io::Error),
}

pub(crate) struct Prefetch {
    pub rx: Receiver<Piece>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Start reading `files` (path, size as stat'ed), in order.
    pub fn start(files: Vec<(PathBuf, u64)>) -> Prefetch {
        let (tx, rx) = sync_channel(DEPTH);
        let thread = std::thread::spawn(move || {
            for (p, size) in files {
                match read_file(&p, size, &tx) {
                    Ok(true) => {}
                    // The writer stopped (an error elsewhere): nothing more to do.
                    Ok(false) => return,
                    Err(e) => {
                        let _ = tx.send(Piece::Fail(e));
                        return;
                    }
                }
            }
        });
        Prefetch {
            rx,
            thread: Some(thread),
        }
    }

    /// Stop reading (the receiver goes first, so a blocked sender wakes up) and wait.
    pub fn finish(mut self) {
        let Prefetch { rx, thread } = &mut self;
        drop(std::mem::replace(rx, sync_channel(0).1));
        if let Some(t) = thread.take() {
            let _ = t.join();
        }
    }
}

/// Send `size` bytes of `p`; false when the receiver is gone.
fn read_file(p: &PathBuf, size: u64, tx: &SyncSender<Piece>) -> io::Result<bool> {
    let f = fs::File::open(p)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", p.display())))?;
    let mut r = f.take(size);
    let mut left = size;
    loop {
        let n = left.min(CHUNK) as usize;
        let mut data = vec![0u8; n];
        r.read_exact(&mut data).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} changed while being read: it shrank below {size} bytes",
                        p.display()
                    ),
                )
            } else {
                io::Error::new(e.kind(), format!("read {}: {e}", p.display()))
            }
        })?;
        left -= n as u64;
        let last = left == 0;
        if tx.send(Piece::Chunk { data, last }).is_err() {
            return Ok(false);
        }
        if last {
            return Ok(true);
        }
    }
}
