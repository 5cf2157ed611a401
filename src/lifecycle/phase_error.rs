//! The error of an image phase (analyzer, restorer, exporter, rebaser): a message and the
//! spec's exit code.

/// A phase failure: what to print and the exit code.
#[derive(Debug)]
pub struct PhaseError {
    pub message: String,
    pub code: i32,
}

impl PhaseError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        PhaseError {
            message: message.into(),
            code,
        }
    }
}

impl std::fmt::Display for PhaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
