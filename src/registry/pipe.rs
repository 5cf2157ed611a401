//! An in-process pipe that turns a writer-driven producer (tar → compress) into the reader an
//! HTTP request body needs. Bounded: at most `depth` chunks are in flight.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 256 * 1024;

enum Msg {
    Data(Vec<u8>),
    Done,
    Abort(String),
}

pub(crate) struct PipeWriter {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
    finished: bool,
}

pub(crate) struct PipeReader {
    rx: Receiver<Msg>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

pub(crate) fn pipe(depth: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(depth);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            finished: false,
        },
        PipeReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        },
    )
}

impl PipeWriter {
    fn send(&mut self, m: Msg) -> io::Result<()> {
        self.tx
            .send(m)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped reading"))
    }

    /// Send what is buffered and mark the end of the stream.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        let b = std::mem::take(&mut self.buf);
        if !b.is_empty() {
            self.send(Msg::Data(b))?;
        }
        self.finished = true;
        self.send(Msg::Done)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            let b = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(Msg::Data(b))?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        if !self.finished {
            // The producer failed: make the reader fail too rather than end a truncated body.
            let _ = self
                .tx
                .try_send(Msg::Abort("blob producer stopped early".into()));
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Msg::Done) => self.done = true,
                Ok(Msg::Abort(why)) => return Err(io::Error::other(why)),
                Err(_) => return Err(io::Error::other("blob producer stopped early")),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
