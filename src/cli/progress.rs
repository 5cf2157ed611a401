//! Pull progress in the local CLI: on a terminal, a live line per layer being fetched and
//! unpacked (indicatif); in every case one plain line when a layer is done, so logs show what
//! a cold run spent its time on.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::digest::Digest;
use crate::local::images::PullProgress;

struct Current {
    label: String,
    started: Instant,
    bytes: u64,
    bar: Option<ProgressBar>,
}

pub struct CliProgress {
    tty: bool,
    current: Mutex<Option<Current>>,
}

impl CliProgress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            current: Mutex::new(None),
        }
    }
}

impl Default for CliProgress {
    fn default() -> Self {
        Self::new()
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl PullProgress for CliProgress {
    fn layer_started(
        &self,
        reference: &str,
        diff_id: &Digest,
        index: usize,
        count: usize,
        size: u64,
    ) {
        let hex = diff_id.hex();
        let label = format!(
            "{reference} layer {index}/{count} {} ({:.1} MiB)",
            &hex[..hex.len().min(12)],
            mib(size)
        );
        let bar = self.tty.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} pulling {msg}: {bytes} unpacked ({bytes_per_sec})",
            ) {
                bar.set_style(style);
            }
            bar.set_message(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if let Ok(mut c) = self.current.lock() {
            *c = Some(Current {
                label,
                started: Instant::now(),
                bytes: 0,
                bar,
            });
        }
    }

    fn layer_bytes(&self, n: u64) {
        if let Ok(mut c) = self.current.lock() {
            if let Some(c) = c.as_mut() {
                c.bytes += n;
                if let Some(bar) = &c.bar {
                    bar.inc(n);
                }
            }
        }
    }

    fn layer_finished(&self) {
        let Some(c) = self.current.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        if let Some(bar) = &c.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "===> pulled {}: {:.1} MiB unpacked in {:.2}s",
            c.label,
            mib(c.bytes),
            c.started.elapsed().as_secs_f64()
        );
    }
}
