//! Registry image sources.
