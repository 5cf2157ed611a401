//! Phase logging. Like the reference lifecycle, every line (warnings and errors too) goes to
//! stdout, so buildpack output and lifecycle messages interleave in order.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// `CNB_LOG_LEVEL` / `-log-level`; unknown values mean info.
    pub fn parse(s: &str) -> Level {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Level::Debug,
            "warn" | "warning" => Level::Warn,
            "error" | "fatal" => Level::Error,
            _ => Level::Info,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub level: Level,
}

impl Log {
    pub fn new(level: Level) -> Self {
        Self { level }
    }

    fn emit(&self, level: Level, prefix: &str, msg: &str) {
        if level < self.level {
            return;
        }
        let mut out = std::io::stdout().lock();
        // A closed stdout must not turn a successful phase into a panic.
        let _ = writeln!(out, "{prefix}{msg}");
        let _ = out.flush();
    }

    pub fn debug(&self, msg: &str) {
        self.emit(Level::Debug, "", msg);
    }

    pub fn info(&self, msg: &str) {
        self.emit(Level::Info, "", msg);
    }

    pub fn warn(&self, msg: &str) {
        self.emit(Level::Warn, "Warning: ", msg);
    }

    pub fn error(&self, msg: &str) {
        self.emit(Level::Error, "ERROR: ", msg);
    }
}
