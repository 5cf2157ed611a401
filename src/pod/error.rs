//! Why a pod cannot be generated. Texts are kpack's where kpack has one (a Build that fails
//! here gets `Succeeded=False` with this message).

use crate::clusterlifecycle::phases::DriverError;
use crate::clusterlifecycle::NegotiateError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    #[error("builder image stack ID label not present")]
    NoStackId,
    #[error("unable to get builder metadata: {0}")]
    BuilderMetadata(String),
    #[error("ENV {0} not found")]
    MissingEnv(&'static str),
    #[error("ENV {name}: strconv.ParseInt: parsing {value:?}: invalid syntax")]
    BadEnv { name: &'static str, value: String },
    #[error("windows builds are not supported")]
    Windows,
    #[error("ServiceAccount has invalid Secret reference")]
    InvalidSecretRef,
    #[error("ServiceAccount has invalid ImagePullSecret reference")]
    InvalidPullSecretRef,
    #[error("build rejected: {what} {name:?} uses forbidden secret {secret:?}")]
    ForbiddenSecret {
        what: &'static str,
        name: String,
        secret: String,
    },
    #[error("unexpected platform version {0}: Invalid Semantic Version")]
    BadPlatformVersion(String),
    #[error("unsupported builder platform API versions: {0}")]
    UnsupportedPlatformApis(String),
    /// `what`: `clusterlifecycle <name>` or `builder <image>`.
    #[error("{what}: {source}")]
    Negotiate {
        what: String,
        source: NegotiateError,
    },
    #[error("parsing creation time {value}: parsing unix timestamp: strconv.ParseInt: parsing {value:?}: invalid syntax")]
    CreationTime { value: String },
    #[error("build {0} has no tags")]
    NoTags(String),
    #[error("build {0} has no source: set spec.source.git, blob or registry")]
    NoSource(String),
    #[error("phase arguments: {0}")]
    Phases(#[from] DriverError),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Fetch(String),
}
