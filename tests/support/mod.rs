//! Shared integration-test harness: real `docker-registry` instances, a counting/fault-injecting
//! proxy, validators backed by skopeo/umoci, and directory snapshots.
//!
//! Include with `mod support;` at the top of `tests/<name>.rs`. Each test binary uses only part of
//! the harness, hence the blanket `dead_code` allowance.
//!
//! ```ignore
//! let reg = support::registry::Registry::plain();           // killed on drop
//! let proxy = support::proxy::Proxy::start(reg.addr(), vec![]);
//! // push to format!("{}/repo:tag", proxy.host()), then:
//! assert_eq!(proxy.count("PUT", "/manifests/"), 1);
//! let m = support::tools::skopeo_inspect_raw(&format!("docker://{}/repo:tag", reg.host()),
//!                                            &["--tls-verify=false"]);
//! ```
#![allow(dead_code)]

pub mod proxy;
pub mod registry;
pub mod token;
pub mod tools;
pub mod tree;
