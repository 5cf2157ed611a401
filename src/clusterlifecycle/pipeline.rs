//! Decompress a layer on a thread of its own, ahead of the tar reader, so that inflating and
//! writing files overlap: together they are most of the time `lifecycle select` takes.
//! Memory stays bounded: at most `DEPTH` chunks are in flight.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 256 * 1024;
const DEPTH: usize = 4;

/// Run `consume` on the decompressed stream of `layer` (gzip, zstd or plain tar, sniffed) while
/// another thread decompresses it. The layer is always read to its end, also after `consume`
/// stops early, so a verifying reader checks the whole blob. Returns what `consume` returned
/// and how reading the layer went.
pub fn with_decompressed<R, T>(
    layer: R,
    consume: impl FnOnce(ChunkReader) -> T,
) -> (T, io::Result<()>)
where
    R: Read + Send,
{
    let (tx, rx) = sync_channel(DEPTH);
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(layer, &tx));
        let out = consume(ChunkReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        });
        let read = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("decompression thread panicked")));
        (out, read)
    })
}

type Chunk = io::Result<Vec<u8>>;

fn produce(layer: impl Read, tx: &SyncSender<Chunk>) -> io::Result<()> {
    let mut br = BufReader::with_capacity(CHUNK, layer);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut dec = flate2::bufread::MultiGzDecoder::new(br);
        pump(&mut dec, tx)?;
        drain(dec.into_inner())
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut dec = zstd::stream::read::Decoder::with_buffer(br)?;
        pump(&mut dec, tx)?;
        drain(dec.finish())
    } else {
        pump(&mut br, tx)
    }
}

/// Send `r` in chunks until its end; once the reader has hung up, keep reading and discard.
/// A read error is passed on to the reader too, so it fails rather than seeing a short stream.
fn pump(r: &mut impl Read, tx: &SyncSender<Chunk>) -> io::Result<()> {
    let mut listening = true;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let n = match fill(r, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
        };
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        if listening && tx.send(Ok(chunk)).is_err() {
            listening = false;
        }
    }
}

/// Read until `buf` is full or the stream ends.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whatever follows the compressed stream (read to the end so the blob's digest is checked).
fn drain(mut rest: impl Read) -> io::Result<()> {
    io::copy(&mut rest, &mut io::sink()).map(|_| ())
}

/// The consumer's end: the decompressed stream, chunk by chunk.
pub struct ChunkReader {
    rx: Receiver<Chunk>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The producer is done: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn streams_and_reads_to_the_end_when_the_consumer_stops_early() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        for input in [
            data.clone(),
            gzip(&data),
            zstd::encode_all(&data[..], 3).unwrap(),
        ] {
            let (got, read) = with_decompressed(&input[..], |mut r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v).unwrap();
                v
            });
            read.unwrap();
            assert_eq!(got, data);
        }
        // Stop after one byte: the producer still reads every input byte.
        let input = gzip(&data);
        let mut counted = Counting(&input[..], 0);
        let (first, read) = with_decompressed(&mut counted, |mut r| {
            let mut b = [0u8; 1];
            r.read_exact(&mut b).unwrap();
            b[0]
        });
        read.unwrap();
        assert_eq!(first, 0);
        assert_eq!(counted.1, input.len());
    }

    #[test]
    fn corrupt_input_fails_both_ends() {
        let mut input = gzip(&vec![7u8; 2 * CHUNK]);
        let n = input.len();
        input[n / 2] ^= 0xff;
        let (consumed, read) = with_decompressed(&input[..], |mut r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)
        });
        assert!(read.is_err());
        assert!(consumed.is_err());
    }

    struct Counting<'a>(&'a [u8], usize);

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }
}
