//! `rebase`: kpack's rebase step. Flags, tags check, credential loading, log lines and exit codes
//! follow kpack (lifecycle's `cmd.Exit`: `ERROR: ` on stdout, 3 for invalid arguments, else 1);
//! the layer swap is our rebaser library (`export::rebase`), which reads manifests and configs
//! only: app layer blobs are never downloaded or uploaded.

use std::sync::Arc;

use super::buildchange;
use super::flags::{self, flag, Kind};
use super::paths::Paths;
use crate::creds::docker;
use crate::export::rebase::{rebase, Loaded, RebaseError, RebaseOptions};
use crate::export::report::Report;
use crate::oci::copy::{copy_image, CopyOptions};
use crate::oci::manifest::{descriptor_digest, select_platform};
use crate::oci::view::ImageView;
use crate::oci::{BlobStore as _, ImageConfig, Manifest, PlatformSpec};
use crate::registry::{parse_reference, Client, ClientOptions, Keychain, RegistryError, Repo};
use crate::source::registry::fully_qualified_repo;

pub const SPECS: &[flags::Spec] = &[
    flag("run-image", Kind::Str, Some("RUN_IMAGE")),
    flag("last-built-image", Kind::Str, Some("LAST_BUILT_IMAGE")),
    flag("build-changes", Kind::Str, Some("BUILD_CHANGES")),
    flag("report", Kind::Str, Some("REPORT_FILE_PATH")),
    flag("basic-docker", Kind::Multi, None),
    flag("dockercfg", Kind::Multi, None),
    flag("dockerconfig", Kind::Multi, None),
    flag("imagepull", Kind::Multi, None),
];

/// Lifecycle's exit code for invalid arguments.
pub const CODE_INVALID_ARGS: i32 = 3;

fn say(l: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{l}");
    let _ = out.flush();
}

pub fn main(argv: &[String]) -> i32 {
    let p = flags::parse_or_exit("rebase", SPECS, argv);
    let paths = Paths::from_env();
    for l in buildchange::lines(&p.str("build-changes")) {
        say(&l);
    }
    if p.args.is_empty() {
        say("ERROR: failed to must provide one or more image tags");
        return CODE_INVALID_ARGS;
    }
    say("Loading cluster credential helpers");
    let node = Keychain::from_environment().unwrap_or_default();
    let mut creds = match docker::parse_basic_auth(&paths, &p.multi("basic-docker"), &say) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("ERROR: failed to : {e}"));
            return CODE_INVALID_ARGS;
        }
    };
    let mut names = p.multi("dockercfg");
    names.extend(p.multi("dockerconfig"));
    names.extend(p.multi("imagepull"));
    match docker::parse_docker_config_secrets(&paths, &names, Some(&say)) {
        Ok(c) => creds.append(c),
        Err(e) => {
            say(&format!("ERROR: {e}"));
            return 1;
        }
    }
    // kpack's MultiKeychain(creds, k8sNode): secrets first.
    let mut kc = creds.keychain.clone();
    kc.append(node);
    let req = Request {
        tags: p.args.clone(),
        run_image: p.str("run-image"),
        last_built_image: p.str("last-built-image"),
        // The pod passes kpack's absolute path; it moves with the other fixed paths.
        report: match p.str("report") {
            r if r.is_empty() => None,
            r if r.starts_with('/') => Some(paths.at(&r)),
            r => Some(r.into()),
        },
    };
    let run = Client::new(ClientOptions {
        keychain: kc,
        ..Default::default()
    })
    .map_err(|e| e.to_string())
    .and_then(|client| run(&client, &req, &say));
    match run {
        Ok(()) => 0,
        Err(m) => {
            say(&format!("ERROR: {m}"));
            1
        }
    }
}

pub struct Request {
    /// Output names: the first is the image written, the rest are extra tags.
    pub tags: Vec<String>,
    pub run_image: String,
    pub last_built_image: String,
    pub report: Option<std::path::PathBuf>,
}

/// An image as imgutil's `remote.NewImage(..., FromBaseImage(name))` sees it: its repository and
/// the digest of the one platform manifest used.
struct Found {
    repo: Repo,
    fq_repo: String,
    view: ImageView,
}

/// imgutil treats 404 and 401 as "no such image"; anything else is a connection error.
fn is_missing(e: &crate::oci::Error) -> bool {
    match e {
        crate::oci::Error::Registry(r) => {
            r.is_not_found() || matches!(**r, RegistryError::Unauthorized { .. })
        }
        e => e.is_not_found(),
    }
}

/// Open `name` (resolving an index to `platform`); `Ok(None)` when it does not exist.
fn open(
    client: &Arc<Client>,
    name: &str,
    platform: &PlatformSpec,
) -> Result<Option<Found>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    let connect = |e: String| format!("connect to repo store {name:?}: {e}");
    let r = parse_reference(name).map_err(|e| e.to_string())?;
    let repo = Repo::for_reference(Arc::clone(client), &r);
    let want = r.digest().or(r.tag()).unwrap_or("latest").to_string();
    let mut m = match repo.get_manifest(&want) {
        Ok(m) => m,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(connect(e.to_string())),
    };
    let im = loop {
        match m.parse().map_err(|e| connect(e.to_string()))? {
            Manifest::Image(im) => break im,
            Manifest::Index(idx) => {
                let Ok(d) = select_platform(&idx, platform) else {
                    // imgutil: "no child with platform" is an empty (missing) image.
                    return Ok(None);
                };
                let d = descriptor_digest(d).map_err(|e| connect(e.to_string()))?;
                m = repo
                    .get_manifest(&d.to_string())
                    .map_err(|e| connect(e.to_string()))?;
            }
        }
    };
    let cd = descriptor_digest(im.config()).map_err(|e| connect(e.to_string()))?;
    let config = repo
        .read_blob(&cd, Some(im.config().size()))
        .map_err(|e| e.to_string())
        .and_then(|b| ImageConfig::from_json(&b, "image config").map_err(|e| e.to_string()))
        .map_err(connect)?;
    Ok(Some(Found {
        fq_repo: fully_qualified_repo(r.registry(), r.repository()),
        repo,
        view: ImageView {
            manifest: m,
            image: im,
            config,
        },
    }))
}

/// The lifecycle (platform API < 0.12 apps) refuses images without a stack id before anything
/// else; the library only compares the two ids.
fn check_stacks(app: &ImageConfig, run: &ImageConfig) -> Result<(), String> {
    let api = app.env_var("CNB_PLATFORM_API").unwrap_or_default();
    let modern = api
        .split_once('.')
        .and_then(|(maj, min)| Some((maj.parse::<u32>().ok()?, min.parse::<u32>().ok()?)))
        .is_some_and(|(maj, min)| maj > 0 || min >= 12);
    if modern {
        return Ok(());
    }
    let stack = |c: &ImageConfig| c.label("io.buildpacks.stack.id").unwrap_or_default();
    if stack(app).is_empty() {
        return Err("stack not defined on app image".into());
    }
    if stack(run).is_empty() {
        return Err("stack not defined on new base image".into());
    }
    Ok(())
}

/// `repo` and tag of an output name.
fn split(name: &str) -> Result<(String, String), String> {
    let r = parse_reference(name).map_err(|e| e.to_string())?;
    Ok((
        fully_qualified_repo(r.registry(), r.repository()),
        r.tag().unwrap_or("latest").to_string(),
    ))
}

/// Rebase `last_built_image` onto `run_image`, save it as every tag, write the report.
pub fn run(client: &Arc<Client>, req: &Request, log: &dyn Fn(&str)) -> Result<(), String> {
    // imgutil's default platform for remote images.
    let default = PlatformSpec::new("linux", "amd64", None);
    let app = open(client, &req.last_built_image, &default)?
        .ok_or_else(|| format!("could not access previous image: {}", req.last_built_image))?;
    let platform = PlatformSpec::new(&app.view.config.os(), &app.view.config.architecture(), None);
    let run = open(client, &req.run_image, &platform)?
        .ok_or_else(|| format!("could not access run image: {}", req.run_image))?;
    check_stacks(&app.view.config, &run.view.config)?;

    let first = split(&req.tags[0])?;
    let target = Repo::for_reference(
        Arc::clone(client),
        &parse_reference(&req.tags[0]).map_err(|e| e.to_string())?,
    );
    let mut tags: Vec<String> = Vec::new();
    // Names in the first name's repository are tags of the one manifest written; the others
    // get a copy afterwards.
    let mut direct = Vec::new();
    for n in &req.tags {
        let (repo, tag) = split(n)?;
        if repo == first.0 {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
            direct.push(n.clone());
        }
    }
    let opts = RebaseOptions {
        run_image_name: req.run_image.clone(),
        run_image_reference: format!("{}@{}", run.fq_repo, run.view.digest()),
        force: false,
        tags,
    };
    let report = rebase(
        &Loaded {
            store: &app.repo,
            name: req.last_built_image.clone(),
            view: app.view,
        },
        &Loaded {
            store: &run.repo,
            name: req.run_image.clone(),
            view: run.view,
        },
        &target,
        &opts,
    )
    .map_err(|e| match e {
        RebaseError::Incompatible(m) => m,
        e => format!("failed to rebase app image: {e}"),
    })?;
    let digest = report.digest.to_string();

    // Like imgutil's SaveAs: a name that cannot be saved is listed with why, and left out of
    // the report.
    log(&format!("*** Images ({digest}):"));
    let mut saved = Vec::new();
    for n in &req.tags {
        let result = if direct.contains(n) {
            Ok(())
        } else {
            copy_to(client, &target, &digest, n)
        };
        match result {
            Ok(()) => {
                log(&format!("      {n}"));
                saved.push(n.clone());
            }
            Err(e) => log(&format!("      {n} - {e}")),
        }
    }

    if let Some(path) = &req.report {
        Report {
            tags: saved,
            digest,
            manifest_size: report.manifest_size,
        }
        .write(path)
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn copy_to(client: &Arc<Client>, src: &Repo, digest: &str, name: &str) -> Result<(), String> {
    let r = parse_reference(name).map_err(|e| e.to_string())?;
    let dst = Repo::for_reference(Arc::clone(client), &r);
    let tag = r.tag().unwrap_or("latest").to_string();
    copy_image(src, digest, &dst, &[tag], &CopyOptions::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_checks_follow_the_lifecycle() {
        let mut app = ImageConfig::new("linux", "amd64");
        let mut run = ImageConfig::new("linux", "amd64");
        assert_eq!(
            check_stacks(&app, &run).unwrap_err(),
            "stack not defined on app image"
        );
        app.set_label("io.buildpacks.stack.id", "s");
        assert_eq!(
            check_stacks(&app, &run).unwrap_err(),
            "stack not defined on new base image"
        );
        run.set_label("io.buildpacks.stack.id", "s");
        assert!(check_stacks(&app, &run).is_ok());
        let mut modern = ImageConfig::new("linux", "amd64");
        modern.set_env("CNB_PLATFORM_API", "0.12");
        assert!(check_stacks(&modern, &ImageConfig::new("linux", "amd64")).is_ok());
    }
}
