//! Git sources (see `fetch`).
