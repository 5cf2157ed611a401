//! project.toml.
