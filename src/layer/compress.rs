//! Compress a tar stream while hashing it: diffID (sha256 of the tar), digest and size of the
//! compressed blob, all in one pass and in bounded memory.
//!
//! gzip is produced pigz-style: the tar is cut into fixed-size blocks, each block is deflated on
//! a worker thread with the previous block's last 32 KiB as dictionary and ends with a sync
//! flush, and the blocks are joined in order into one gzip member. Block boundaries depend only
//! on the input, so the output is identical for any number of threads. zstd uses libzstd's own
//! worker threads, whose output is likewise independent of the worker count (≥ 1).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use flate2::{Compress, FlushCompress, Status};

use super::Compression;
use crate::digest::{Digest, HashWriter, Hasher};

/// Uncompressed bytes per gzip block.
const BLOCK: usize = 512 * 1024;
/// Write batching in front of the hashers and encoders.
const IN_BUF: usize = 256 * 1024;
/// Deflate's window: the dictionary carried from one block to the next.
const DICT: usize = 32 * 1024;

#[derive(Clone, Debug)]
pub struct CompressOptions {
    pub compression: Compression,
    /// gzip 1–9 (default 1, as the CNB exporter uses), zstd 1–19 (default 3).
    pub level: Option<u32>,
    /// Worker threads (default: available cores).
    pub threads: usize,
}

impl CompressOptions {
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            level: None,
            threads: thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What a written layer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as written.
    pub digest: Digest,
    /// Size of the blob as written.
    pub size: u64,
    pub uncompressed_size: u64,
    pub compression: Compression,
}

/// Run `fill` to produce a tar stream, compress it into `sink` and return the digests.
/// `fill` runs on the calling thread; gzip workers and the ordered writer run on scoped threads.
pub fn write_layer<F>(
    opts: &CompressOptions,
    sink: &mut (dyn Write + Send),
    fill: F,
) -> io::Result<LayerInfo>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    match opts.compression {
        Compression::None => {
            let mut w = io::BufWriter::with_capacity(IN_BUF, HashWriter::new(sink));
            fill(&mut w)?;
            let (_, d, n) = w.into_inner().map_err(|e| e.into_error())?.finish();
            Ok(LayerInfo {
                diff_id: d.clone(),
                digest: d,
                size: n,
                uncompressed_size: n,
                compression: Compression::None,
            })
        }
        Compression::Zstd => {
            let level = opts.level.unwrap_or(3) as i32;
            let mut out = HashWriter::new(sink);
            let mut enc = zstd::stream::Encoder::new(&mut out, level)?;
            // ≥ 1 worker keeps the output identical whatever the thread count.
            enc.multithread(opts.threads.max(1) as u32)?;
            // tar writes headers and 8 KiB pieces; batch them before hashing and compressing.
            let mut tar = io::BufWriter::with_capacity(IN_BUF, HashWriter::new(enc));
            fill(&mut tar)?;
            let (enc, diff_id, raw) = tar.into_inner().map_err(|e| e.into_error())?.finish();
            enc.finish()?;
            let (_, digest, size) = out.finish();
            Ok(LayerInfo {
                diff_id,
                digest,
                size,
                uncompressed_size: raw,
                compression: Compression::Zstd,
            })
        }
        Compression::Gzip => gzip_parallel(opts, sink, fill),
    }
}

type Job = (u64, Vec<u8>, Vec<u8>, bool);
type Done = (u64, io::Result<Vec<u8>>);

fn gzip_parallel<F>(
    opts: &CompressOptions,
    sink: &mut (dyn Write + Send),
    fill: F,
) -> io::Result<LayerInfo>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let level = flate2::Compression::new(opts.level.unwrap_or(1).clamp(1, 9));
    let workers = opts.threads.max(1);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * 2);
    let (done_tx, done_rx) = mpsc::sync_channel::<Done>(workers * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));

    thread::scope(|s| {
        for _ in 0..workers {
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            s.spawn(move || deflate_worker(&rx, &tx, level));
        }
        drop(done_tx);
        let writer = s.spawn(move || ordered_writer(sink, done_rx));

        let mut chunker = Chunker {
            tx: job_tx,
            buf: Vec::with_capacity(BLOCK),
            pending: None,
            next: 0,
            hash: Hasher::new(),
            crc: crc32fast::Hasher::new(),
        };
        let filled = fill(&mut chunker).and_then(|()| chunker.close());
        let Chunker { tx, hash, crc, .. } = chunker;
        drop(tx); // lets the workers, then the writer, finish
        let (diff_id, crc) = (hash.finish(), crc.finalize());
        let written = writer
            .join()
            .map_err(|_| io::Error::other("gzip writer thread panicked"))?;
        // A writer or worker failure surfaces to `fill` as a closed channel; report the cause.
        let mut out = written?;
        filled?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&(diff_id.1 as u32).to_le_bytes());
        out.write_all(&trailer)?;
        let (_, digest, size) = out.finish();
        Ok(LayerInfo {
            diff_id: diff_id.0,
            digest,
            size,
            uncompressed_size: diff_id.1,
            compression: Compression::Gzip,
        })
    })
}

/// Cuts the tar stream into blocks for the workers, hashing it on the way.
struct Chunker {
    tx: SyncSender<Job>,
    buf: Vec<u8>,
    /// The last full block and its dictionary, held back until we know whether it is final.
    pending: Option<(Vec<u8>, Vec<u8>)>,
    next: u64,
    hash: Hasher,
    crc: crc32fast::Hasher,
}

impl Chunker {
    fn send(&mut self, block: Vec<u8>, dict: Vec<u8>, last: bool) -> io::Result<()> {
        let idx = self.next;
        self.next += 1;
        self.tx
            .send((idx, block, dict, last))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "gzip pipeline stopped"))
    }

    fn push_block(&mut self, block: Vec<u8>) -> io::Result<()> {
        // The new block's dictionary is the tail of the block just before it.
        let dict = match &self.pending {
            Some((prev, _)) => prev[prev.len().saturating_sub(DICT)..].to_vec(),
            None => Vec::new(),
        };
        if let Some((prev, prev_dict)) = self.pending.take() {
            self.send(prev, prev_dict, false)?;
        }
        self.pending = Some((block, dict));
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let b = std::mem::take(&mut self.buf);
            self.push_block(b)?;
        }
        match self.pending.take() {
            Some((b, d)) => self.send(b, d, true),
            None => self.send(Vec::new(), Vec::new(), true),
        }
    }
}

impl Write for Chunker {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hash.update(&data[..n]);
        self.crc.update(&data[..n]);
        if self.buf.len() == BLOCK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
            self.push_block(full)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn deflate_worker(rx: &Mutex<Receiver<Job>>, tx: &SyncSender<Done>, level: flate2::Compression) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok((idx, block, dict, last)) = job else {
            return;
        };
        let out = deflate_block(&block, &dict, last, level);
        if tx.send((idx, out)).is_err() {
            return;
        }
    }
}

/// Raw deflate of one block; ends on a byte boundary (sync flush) unless it is the last.
fn deflate_block(
    block: &[u8],
    dict: &[u8],
    last: bool,
    level: flate2::Compression,
) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(level, false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(block.len() / 2 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut input = block;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let before = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        input = &input[(c.total_in() - before) as usize..];
        match status {
            Status::StreamEnd => break,
            // Done when all input is consumed and the flush left spare output room.
            Status::Ok | Status::BufError
                if !last && input.is_empty() && out.len() < out.capacity() =>
            {
                break
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Writes the gzip header and the deflated blocks in order, hashing them; returns the hashing
/// writer so the caller can append the trailer.
fn ordered_writer(
    sink: &mut (dyn Write + Send),
    rx: Receiver<Done>,
) -> io::Result<HashWriter<&mut (dyn Write + Send)>> {
    let mut out = HashWriter::new(sink);
    // Fixed header: no name, mtime 0, unknown OS — the same bytes every time.
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut waiting: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut next = 0u64;
    for (idx, res) in rx {
        waiting.insert(idx, res?);
        while let Some(b) = waiting.remove(&next) {
            out.write_all(&b)?;
            next += 1;
        }
    }
    if !waiting.is_empty() {
        return Err(io::Error::other("gzip pipeline lost a block"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    fn run(c: Compression, threads: usize, data: &[u8]) -> (LayerInfo, Vec<u8>) {
        let mut out = Vec::new();
        let opts = CompressOptions {
            compression: c,
            level: None,
            threads,
        };
        let info = write_layer(&opts, &mut out, |w| w.write_all(data)).unwrap();
        (info, out)
    }

    #[test]
    fn gzip_is_valid_and_independent_of_threads() {
        for size in [0, 10, BLOCK, BLOCK + 1, 3 * BLOCK + 12345] {
            let data = sample(size);
            let (i1, o1) = run(Compression::Gzip, 1, &data);
            let (i4, o4) = run(Compression::Gzip, 4, &data);
            assert_eq!(o1, o4, "size {size}");
            assert_eq!(i1, i4);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&o1[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "size {size}");
            assert_eq!(i1.diff_id, Digest::of(&data));
            assert_eq!(i1.digest, Digest::of(&o1));
            assert_eq!(i1.size, o1.len() as u64);
        }
    }

    #[test]
    fn zstd_is_valid_and_independent_of_threads() {
        let data = sample(2 * 1024 * 1024 + 7);
        let (i1, o1) = run(Compression::Zstd, 1, &data);
        let (i2, o2) = run(Compression::Zstd, 2, &data);
        assert_eq!(o1, o2);
        assert_eq!(i1.diff_id, Digest::of(&data));
        assert_eq!(zstd::decode_all(&o1[..]).unwrap(), data);
        assert_eq!(i2.digest, Digest::of(&o2));
    }

    #[test]
    fn failing_sink_is_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let opts = CompressOptions::new(Compression::Gzip);
        let data = sample(3 * BLOCK);
        let err = write_layer(&opts, &mut Broken, |w| w.write_all(&data)).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
