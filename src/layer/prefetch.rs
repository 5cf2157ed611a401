//! Read files ahead of the tar writer on another thread, so that reading (system time: open,
//! read) overlaps with hashing and compressing the stream. At most `DEPTH` chunks of at most
//! `CHUNK` bytes are in flight, so a layer is never held in memory.

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

const CHUNK: u64 = 1024 * 1024;
/// Batches in flight; a batch holds at most about `CHUNK` bytes.
const DEPTH: usize = 16;
/// Pieces per batch: small files travel together, so the threads rarely wait on each other
/// (one channel hand-off per file costs more than reading a small file).
const BATCH: usize = 64;

/// Part of one file's contents, in order; `last` ends the file.
pub(crate) enum Piece {
    Chunk { data: Vec<u8>, last: bool },
    Fail(io::Error),
}

pub(crate) struct Prefetch {
    rx: Receiver<Vec<Piece>>,
    pending: std::collections::VecDeque<Piece>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Start reading `files` (path, size as stat'ed), in order.
    pub fn start(files: Vec<(PathBuf, u64)>) -> Prefetch {
        let (tx, rx) = sync_channel(DEPTH);
        let thread = std::thread::spawn(move || {
            let mut batch = Batch {
                tx,
                pieces: Vec::new(),
                bytes: 0,
            };
            for (p, size) in files {
                match read_file(&p, size, &mut batch) {
                    Ok(true) => {}
                    // The writer stopped (an error elsewhere): nothing more to do.
                    Ok(false) => return,
                    Err(e) => {
                        batch.pieces.push(Piece::Fail(e));
                        let _ = batch.flush();
                        return;
                    }
                }
            }
            let _ = batch.flush();
        });
        Prefetch {
            rx,
            pending: std::collections::VecDeque::new(),
            thread: Some(thread),
        }
    }

    /// The next piece, in order; `None` when the reader thread is gone.
    pub fn next(&mut self) -> Option<Piece> {
        if self.pending.is_empty() {
            self.pending.extend(self.rx.recv().ok()?);
        }
        self.pending.pop_front()
    }

    /// Stop reading (the receiver goes first, so a blocked sender wakes up) and wait.
    pub fn finish(mut self) {
        let Prefetch { rx, thread, .. } = &mut self;
        drop(std::mem::replace(rx, sync_channel(0).1));
        if let Some(t) = thread.take() {
            let _ = t.join();
        }
    }
}

struct Batch {
    tx: SyncSender<Vec<Piece>>,
    pieces: Vec<Piece>,
    bytes: u64,
}

impl Batch {
    /// Queue a piece, sending the batch when full; false when the receiver is gone.
    fn push(&mut self, piece: Piece, len: u64) -> bool {
        self.pieces.push(piece);
        self.bytes += len;
        if self.pieces.len() >= BATCH || self.bytes >= CHUNK {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        self.bytes = 0;
        let pieces = std::mem::take(&mut self.pieces);
        pieces.is_empty() || self.tx.send(pieces).is_ok()
    }
}

/// Queue `size` bytes of `p`; false when the receiver is gone.
fn read_file(p: &PathBuf, size: u64, batch: &mut Batch) -> io::Result<bool> {
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
        if !batch.push(Piece::Chunk { data, last }, n as u64) {
            return Ok(false);
        }
        if last {
            return Ok(true);
        }
    }
}
