//! `completion`: read the exporter's report, fetch the exported image's labels, and write kpack's
//! termination message (base64(gzip(JSON)), at most 4096 bytes) for the controller.
//!
//! Like kpack (Go's `log.Fatal`), failures go to stderr with a date-time prefix and exit 1;
//! success prints `Build successful` on stdout.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::flags::{self, flag, Kind};
use super::metadata::{self, BuildMetadata};
use super::paths::Paths;
use super::{cosign, mounts, report};
use crate::creds::docker;
use crate::oci::manifest::{descriptor_digest, select_platform};
use crate::oci::{BlobStore as _, ImageConfig, Manifest, PlatformSpec};
use crate::registry::{parse_reference, Client, ClientOptions, Keychain, Repo};
use crate::source::registry::fully_qualified_repo;

pub const SPECS: &[flags::Spec] = &[
    flag("cache-tag", Kind::Str, Some("CACHE_TAG")),
    flag(
        "termination-message-path",
        Kind::Str,
        Some("TERMINATION_MESSAGE_PATH"),
    ),
    flag("notary-v1-url", Kind::Str, None),
    flag("basic-docker", Kind::Multi, None),
    flag("dockercfg", Kind::Multi, None),
    flag("dockerconfig", Kind::Multi, None),
    // Passed to completion by the pod spec and ignored, as in kpack.
    flag("basic-git", Kind::Multi, None),
    flag("ssh-git", Kind::Multi, None),
    flag("blob", Kind::Multi, None),
    flag("cosign-annotations", Kind::Multi, None),
    flag("cosign-repositories", Kind::Multi, None),
    flag("cosign-docker-media-types", Kind::Multi, None),
];

/// Go's `log` prefix: `2006/01/02 15:04:05 ` (UTC here: containers run in UTC).
pub fn go_log_prefix() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let t = crate::oci::config::rfc3339(now);
    format!("{} {} ", t[..10].replace('-', "/"), &t[11..19])
}

/// Print like Go's `log.Fatal` (the caller exits 1).
pub fn fatal(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{}{msg}", go_log_prefix());
    let _ = e.flush();
}

pub fn main(argv: &[String]) -> i32 {
    let p = flags::parse_or_exit("completion", SPECS, argv);
    let paths = Paths::from_env();
    let opts = Options {
        cache_tag: p.str("cache-tag"),
        termination_path: match p.str("termination-message-path") {
            s if s.is_empty() => PathBuf::from("/tmp/termination-log"),
            s => PathBuf::from(s),
        },
        notary_url: p.str("notary-v1-url"),
        basic_docker: p.multi("basic-docker"),
        dockercfg: p.multi("dockercfg"),
        dockerconfig: p.multi("dockerconfig"),
        cosign: cosign::CosignArgs {
            annotations: p.multi("cosign-annotations"),
            repositories: p.multi("cosign-repositories"),
            docker_media_types: p.multi("cosign-docker-media-types"),
        },
    };
    match run(&opts, &paths) {
        Ok(()) => {
            println!("Build successful");
            0
        }
        Err(m) => {
            fatal(&m);
            1
        }
    }
}

pub struct Options {
    pub cache_tag: String,
    pub termination_path: PathBuf,
    pub notary_url: String,
    pub basic_docker: Vec<String>,
    pub dockercfg: Vec<String>,
    pub dockerconfig: Vec<String>,
    pub cosign: cosign::CosignArgs,
}

pub fn run(o: &Options, paths: &Paths) -> Result<(), String> {
    if paths.is_kpack() {
        let report_dir = paths.at("/var/report");
        mounts::check(&[(&report_dir, "report-dir")], mounts::in_pod())?;
    }
    let rep = report::read(&paths.report(), Path::new(&paths.shown(&paths.report())))
        .map_err(|e| format!("{e}error decoding report toml file"))?;

    // kpack prints these lines only for -basic-docker; the docker config secrets are quiet here.
    let mut creds = docker::parse_basic_auth(paths, &o.basic_docker, &|l| println!("{l}"))?;
    let mut names = o.dockercfg.clone();
    names.extend(o.dockerconfig.iter().cloned());
    creds.append(docker::parse_docker_config_secrets(paths, &names, None)?);
    // The node's keychain comes first here, the reverse of prepare.
    let mut kc = Keychain::from_environment().unwrap_or_default();
    kc.append(creds.keychain.clone());

    let Some(tag) = rep.tags.first() else {
        return Err("no image found in report".to_string());
    };
    let client = Client::new(ClientOptions {
        keychain: kc.clone(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;

    if !o.notary_url.is_empty() {
        return Err(format!(
            "notary v1 signing (-notary-v1-url={}) is not supported by this completion image; use cosign",
            o.notary_url
        ));
    }
    if paths.cosign_secrets().exists() {
        cosign::sign(&client, paths, tag, &rep.digest, &o.cosign)?;
    }

    let mut md = build_metadata(&client, tag, &rep.digest)?;
    md.latest_cache_image = cache_image(&client, &o.cache_tag);
    let msg = metadata::compress(&md)?;
    let dir = o.termination_path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| crate::creds::go_io_error("mkdir", dir, &e))?;
    // In place, not by rename: kubelet bind-mounts a file at the termination-message path, and
    // a rename onto a mount point fails (EBUSY/EPERM). The message is written once, whole.
    std::fs::write(&o.termination_path, msg.as_bytes())
        .map_err(|e| crate::creds::go_io_error("open", &o.termination_path, &e))
}

/// kpack's `GetBuildMetadata` for `tag@digest`.
fn build_metadata(client: &Arc<Client>, tag: &str, digest: &str) -> Result<BuildMetadata, String> {
    let fail = |e: String| format!("unable to fetch app image: {e}");
    let r = parse_reference(tag).map_err(|e| fail(e.to_string()))?;
    let repo = Repo::for_reference(Arc::clone(client), &r);
    let want = if digest.is_empty() {
        r.digest().or(r.tag()).unwrap_or("latest").to_string()
    } else {
        digest.to_string()
    };
    let mut m = repo.get_manifest(&want).map_err(|e| fail(e.to_string()))?;
    let im = loop {
        match m.parse().map_err(|e| fail(e.to_string()))? {
            Manifest::Image(im) => break im,
            Manifest::Index(idx) => {
                let d = select_platform(&idx, &PlatformSpec::host())
                    .map_err(|e| fail(e.to_string()))?;
                let d = descriptor_digest(d).map_err(|e| fail(e.to_string()))?;
                m = repo
                    .get_manifest(&d.to_string())
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
    };
    let cd = descriptor_digest(im.config()).map_err(|e| fail(e.to_string()))?;
    let cfg = ImageConfig::from_json(
        &repo
            .read_blob(&cd, Some(im.config().size()))
            .map_err(|e| fail(e.to_string()))?,
        "image config",
    )
    .map_err(|e| fail(e.to_string()))?;
    let latest = format!(
        "{}@{}",
        fully_qualified_repo(r.registry(), r.repository()),
        m.digest
    );
    match metadata::from_labels(&cfg.labels(), &latest)? {
        Some(md) => Ok(md),
        None => {
            // kpack reports empty metadata here; say why, since the Build will look odd.
            eprintln!(
                "{}warning: image {latest} has no {} label; reporting empty build metadata as kpack does",
                go_log_prefix(),
                metadata::STACK_ID_LABEL
            );
            Ok(BuildMetadata::default())
        }
    }
}

/// `<repo>@<digest>` of the cache image, or "" when unset or not fetchable (kpack ignores it).
fn cache_image(client: &Arc<Client>, cache_tag: &str) -> String {
    if cache_tag.is_empty() {
        return String::new();
    }
    let Ok(r) = parse_reference(cache_tag) else {
        return String::new();
    };
    let repo = Repo::for_reference(Arc::clone(client), &r);
    let what = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    match repo.head_manifest(&what) {
        Ok(Some((d, _, _))) => {
            format!("{}@{d}", fully_qualified_repo(r.registry(), r.repository()))
        }
        _ => String::new(),
    }
}
