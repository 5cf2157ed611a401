//! What kpack's reconcilers do before a builder can be written, for one builder: read its
//! ClusterStack's build and run images (stack id, CNB user and group ids, mixins), every
//! buildpackage it can reach (the namespace's Buildpacks, the ClusterBuildpacks, its
//! ClusterStore: their buildpacks with layer digests and sizes), and its ClusterLifecycle's image
//! (version, APIs and the lifecycle layer for the build image's platform). The resources come
//! back with their `status` filled from the images, ready for resolution.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::buildpackage;
use super::fetch::{open_all, open_image, Image};
use super::resources::{
    Builder, BuilderKind, BuildpackSource, ClusterStack, Resources, SourceKind, StackImage,
    StackStatus, DEFAULT_LIFECYCLE, KIND_CLUSTER_STACK,
};
use super::Error;
use crate::clusterlifecycle::resource::{platform_matches, resolve, ClusterLifecycle, Resolved};
use crate::clusterlifecycle::select::{select_layer, Selection};
use crate::oci::location::Location;
use crate::oci::{BlobStore, PlatformSpec};
use crate::registry::Client;

pub const LABEL_STACK_ID: &str = "io.buildpacks.stack.id";
pub const LABEL_MIXINS: &str = "io.buildpacks.stack.mixins";

/// Everything builder creation reads: the builder resources and the ClusterLifecycles.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub resources: Resources,
    pub lifecycles: Vec<ClusterLifecycle>,
}

impl Inputs {
    /// Every builder resource and ClusterLifecycle of a multi-document YAML stream.
    pub fn from_yaml(yaml: &str) -> Result<Self, Error> {
        Ok(Self {
            resources: super::resources::parse(yaml)?,
            lifecycles: crate::clusterlifecycle::resource::parse(yaml)?.lifecycles,
        })
    }
}

/// The lifecycle a builder embeds: the ClusterLifecycle's status and the layer chosen for the
/// build image's platform.
#[derive(Clone)]
pub struct LifecycleImage {
    pub resolved: Resolved,
    pub selection: Selection,
    pub store: Arc<dyn BlobStore>,
}

/// One builder's resources with their status read from the images, and the images.
#[derive(Clone)]
pub struct Reconciled {
    pub resources: Resources,
    /// Buildpackage images by the name the resources give them.
    pub images: BTreeMap<String, Arc<Image>>,
    pub build: Arc<Image>,
    pub run: Arc<Image>,
    pub stack: StackStatus,
    pub lifecycle: LifecycleImage,
}

/// Read what `builder` needs; `os` is the builder's OS (the build image must be for it).
pub fn reconcile(
    client: &Arc<Client>,
    inputs: &Inputs,
    builder: &Builder,
    os: &str,
) -> Result<Reconciled, Error> {
    let res = &inputs.resources;
    let builder_err = |reason: String| Error::Builder {
        builder: builder.describe(),
        reason,
    };
    let stack = res
        .stack(&builder.stack.name)
        .ok_or_else(|| builder_err(format!("clusterstack '{}' not found", builder.stack.name)))?;
    if let Some(store) = &builder.store {
        if res
            .source(SourceKind::ClusterStore, None, &store.name)
            .is_none()
        {
            return Err(builder_err(format!(
                "clusterstore '{}' not found",
                store.name
            )));
        }
    }
    let cl = lifecycle_resource(inputs, builder)?;
    if os == "windows" {
        return Err(builder_err("not supported: windows base images".into()));
    }
    let stack_res = format!("{KIND_CLUSTER_STACK} {}", stack.name);
    let want = PlatformSpec::new(os, &PlatformSpec::host().arch, None);
    let build = Arc::new(
        open_image(client, &stack.build_image, &want)
            .map_err(|e| Error::image(&stack_res, &stack.build_image, e))?,
    );
    let platform = build.platform();
    if platform.os != os {
        return Err(Error::image(
            &stack_res,
            &stack.build_image,
            format!("the build image is for {platform}, not os {os}"),
        ));
    }

    let sources: Vec<usize> = (0..res.sources.len())
        .filter(|&i| reachable(&res.sources[i], builder))
        .collect();
    let mut names = vec![stack.run_image.clone()];
    for &i in &sources {
        let s = &res.sources[i];
        if s.images.is_empty() && s.kind != SourceKind::ClusterStore {
            return Err(Error::resource(
                s.kind.as_str(),
                &s.name,
                "missing field(s): spec.image",
            ));
        }
        names.extend(s.images.iter().cloned());
    }
    let (opened, lifecycle) = std::thread::scope(|s| {
        let lc = s.spawn(|| read_lifecycle(client, cl, &platform));
        let opened = open_all(client, &names, &platform);
        let lc = lc
            .join()
            .unwrap_or_else(|_| Err(Error::Usage("lifecycle reader panicked".into())));
        (opened, lc)
    });
    let lifecycle = lifecycle?;
    let image = |resource: &str, name: &str| -> Result<Arc<Image>, Error> {
        match opened.get(name) {
            Some(Ok(i)) => Ok(Arc::clone(i)),
            Some(Err(e)) => Err(Error::image(resource, name, e)),
            None => Err(Error::image(resource, name, "not read")),
        }
    };
    let run = image(&stack_res, &stack.run_image)?;
    let stack_status = stack_status(stack, &build, &run)
        .map_err(|reason| Error::resource(KIND_CLUSTER_STACK, &stack.name, reason))?;

    let mut resources = res.clone();
    let mut images = BTreeMap::new();
    for &i in &sources {
        let s = &mut resources.sources[i];
        let what = s.describe();
        let mut buildpacks = Vec::new();
        for name in &s.images {
            let img = image(&what, name)?;
            let pkg = buildpackage::read(&img).map_err(|e| Error::image(&what, name, e))?;
            buildpacks.extend(pkg.buildpacks);
            images.insert(name.clone(), img);
        }
        // kpack's store reader: by id@version, then by store image.
        buildpacks.sort_by(|a, b| {
            a.key()
                .cmp(&b.key())
                .then_with(|| a.store_image.image.cmp(&b.store_image.image))
        });
        s.buildpacks = buildpacks;
    }
    if let Some(st) = resources.stacks.iter_mut().find(|s| s.name == stack.name) {
        st.id = stack_status.id.clone();
        st.status = Some(stack_status.clone());
    }
    Ok(Reconciled {
        resources,
        images,
        build,
        run,
        stack: stack_status,
        lifecycle,
    })
}

/// The sources a builder's resolution may consult.
fn reachable(s: &BuildpackSource, b: &Builder) -> bool {
    match s.kind {
        SourceKind::Buildpack => b.kind == BuilderKind::Builder && s.namespace == b.namespace,
        SourceKind::ClusterBuildpack => true,
        SourceKind::ClusterStore => b.store.as_ref().is_some_and(|r| r.name == s.name),
    }
}

/// The ClusterLifecycle `spec.lifecycle` names; kpack's default (`default-lifecycle`) applies
/// when it names none, and must then exist like any other.
fn lifecycle_resource<'a>(
    inputs: &'a Inputs,
    builder: &Builder,
) -> Result<&'a ClusterLifecycle, Error> {
    let name = &builder.lifecycle.name;
    if let Some(l) = inputs.lifecycles.iter().find(|l| &l.name == name) {
        return Ok(l);
    }
    let mut have: Vec<&str> = inputs.lifecycles.iter().map(|l| l.name.as_str()).collect();
    have.sort_unstable();
    let have = if have.is_empty() {
        "none".to_string()
    } else {
        have.join(", ")
    };
    let hint = if name == DEFAULT_LIFECYCLE {
        " (kpack's default when spec.lifecycle names none: define a ClusterLifecycle with that \
         name or set spec.lifecycle.name)"
    } else {
        ""
    };
    Err(Error::Builder {
        builder: builder.describe(),
        reason: format!("clusterlifecycle '{name}' not found{hint}; have: {have}"),
    })
}

fn read_lifecycle(
    client: &Arc<Client>,
    cl: &ClusterLifecycle,
    platform: &PlatformSpec,
) -> Result<LifecycleImage, Error> {
    let resolved = resolve(client, cl, platform)?;
    if !platform_matches(platform, &resolved.platform) {
        return Err(crate::clusterlifecycle::Error::resource(
            &cl.name,
            format!(
                "validating lifecycle image {}: expected platform to be {platform} but got {}",
                cl.image, resolved.platform
            ),
        )
        .into());
    }
    let location = Location::parse(&cl.image)?;
    let (store, _) = location.open(client)?;
    let store: Arc<dyn BlobStore> = Arc::from(store);
    // The manifest resolve read, by digest: a tag moving in between cannot mix two images.
    let digest = resolved
        .status
        .image
        .latest_image
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let selection = select_layer(&*store, &digest, platform)?;
    Ok(LifecycleImage {
        resolved,
        selection,
        store,
    })
}

/// kpack's `RemoteStackReader`: both images carry the stack id, the build image's env the CNB
/// user and group, and the mixins combine (build-only, run-only, common).
fn stack_status(stack: &ClusterStack, build: &Image, run: &Image) -> Result<StackStatus, String> {
    let label = |i: &Image, k: &str| i.view.config.label(k).unwrap_or_default();
    let (build_id, run_id) = (label(build, LABEL_STACK_ID), label(run, LABEL_STACK_ID));
    // A builder.toml's [build]/[run] images name no stack id: the build image's is taken.
    let id = if stack.id.is_empty() {
        build_id.clone()
    } else {
        stack.id.clone()
    };
    if id.is_empty() || build_id != id || run_id != id {
        return Err(format!(
            "invalid stack images. expected stack: {id}, build image stack: {build_id}, run image stack: {run_id}"
        ));
    }
    let cnb_id = |key: &str| -> Result<i64, String> {
        let v = build
            .view
            .config
            .env_var(key)
            .ok_or_else(|| format!("validating build image: env {key}: not set"))?;
        v.parse::<u32>().map(i64::from).map_err(|_| {
            format!("validating build image: env {key}: {v:?} is not a user or group id")
        })
    };
    let mixins_of = |i: &Image, what: &str| -> Result<Vec<String>, String> {
        match i.view.config.label(LABEL_MIXINS) {
            None => Ok(Vec::new()),
            Some(l) => serde_json::from_str(&l)
                .map_err(|e| format!("{what} image label {LABEL_MIXINS}: {e}")),
        }
    };
    let mixins = mixins(&mixins_of(build, "build")?, &mixins_of(run, "run")?)?;
    Ok(StackStatus {
        id,
        build_image: StackImage {
            latest_image: build.latest_image.clone(),
            image: stack.build_image.clone(),
        },
        run_image: StackImage {
            latest_image: run.latest_image.clone(),
            image: stack.run_image.clone(),
        },
        mixins,
        user_id: cnb_id("CNB_USER_ID")?,
        group_id: cnb_id("CNB_GROUP_ID")?,
    })
}

/// kpack's `mixins`: common mixins of the build image must be on the run image too; the result
/// is the common ones, then `build:` ones, then `run:` ones.
pub fn mixins(build: &[String], run: &[String]) -> Result<Vec<String>, String> {
    let classify = |all: &[String], valid: &str, invalid: &str| {
        let mut v = (Vec::new(), Vec::new(), Vec::new());
        for m in all {
            if m.starts_with(valid) {
                v.0.push(m.clone());
            } else if m.starts_with(invalid) {
                v.1.push(m.clone());
            } else {
                v.2.push(m.clone());
            }
        }
        v
    };
    let (build_stage, bad, build_common) = classify(build, "build:", "run:");
    if !bad.is_empty() {
        return Err(format!(
            "build image contains run-only mixin(s): {}",
            bad.join(", ")
        ));
    }
    let (run_stage, bad, run_common) = classify(run, "run:", "build:");
    if !bad.is_empty() {
        return Err(format!(
            "run image contains build-only mixin(s): {}",
            bad.join(", ")
        ));
    }
    let missing: Vec<&str> = build_common
        .iter()
        .filter(|m| !run_common.contains(m))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "runImage missing required mixin(s): {}",
            missing.join(", ")
        ));
    }
    Ok(build_common
        .into_iter()
        .chain(build_stage)
        .chain(run_stage)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn mixins_like_kpack() {
        assert_eq!(
            mixins(&v(&["a", "build:b"]), &v(&["a", "run:c"])).unwrap(),
            v(&["a", "build:b", "run:c"])
        );
        assert_eq!(
            mixins(&v(&["run:x"]), &[]).unwrap_err(),
            "build image contains run-only mixin(s): run:x"
        );
        assert_eq!(
            mixins(&[], &v(&["build:x"])).unwrap_err(),
            "run image contains build-only mixin(s): build:x"
        );
        assert_eq!(
            mixins(&v(&["a", "b"]), &v(&["a"])).unwrap_err(),
            "runImage missing required mixin(s): b"
        );
    }
}
