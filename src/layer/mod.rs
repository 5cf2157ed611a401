//! Layers: deterministic tar streams from directories, compression with diffID and digest
//! computed in the same pass, and safe extraction.

pub mod compress;
pub mod extract;
mod prefetch;
pub mod tar_writer;

pub use compress::{write_layer, CompressOptions, LayerInfo};
pub use extract::{apply_layer, ExtractError, ExtractOptions};
pub use tar_writer::{TarOptions, TarWriter, NORMALIZED_MTIME};

/// Layer compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Gzip,
    Zstd,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "tar" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?} (want none, gzip or zstd)"
            )),
        }
    }
}

impl Compression {
    /// The compression a layer media type implies.
    pub fn from_media_type(mt: &str) -> Compression {
        if mt.ends_with("+zstd") || mt.ends_with(".zstd") {
            Compression::Zstd
        } else if mt.ends_with("gzip") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}
