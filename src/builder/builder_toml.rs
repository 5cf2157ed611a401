//! A pack-style `builder.toml`, mapped onto the same resources a kpack user would write: one
//! ClusterStack (`[stack]`, or `[build] image` and `[[run.images]]`), one ClusterBuildpack per
//! `[[buildpacks]]` image, the ClusterLifecycle `default-lifecycle` (`[lifecycle] uri`) and a
//! ClusterBuilder `builder` with the `[[order]]`. Buildpacks and the lifecycle must be images
//! (`docker://REF`, `REF` or `oci:DIR[:TAG]`); local directories and archives are refused with
//! the command that turns them into one.

use serde::Deserialize;

use super::reconcile::Inputs;
use super::resources::{
    Builder, BuilderBuildpackRef, BuilderKind, BuilderOrderEntry, BuildpackRef, BuildpackSource,
    ClusterStack, ObjectRef, Resources, SourceKind, DEFAULT_LIFECYCLE, KIND_CLUSTER_LIFECYCLE,
    KIND_CLUSTER_STACK,
};
use super::Error;
use crate::clusterlifecycle::resource::ClusterLifecycle;
use crate::oci::location::Location;

/// The ClusterBuilder a builder.toml becomes.
pub const BUILDER_NAME: &str = "builder";
pub const STACK_NAME: &str = "stack";

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    description: String,
    #[serde(default)]
    buildpacks: Vec<ModuleEntry>,
    #[serde(default)]
    order: Vec<OrderEntry>,
    #[serde(default)]
    extensions: Vec<toml::Value>,
    #[serde(default)]
    order_extensions: Vec<toml::Value>,
    #[serde(default)]
    stack: Option<StackConfig>,
    #[serde(default)]
    build: Option<BuildConfig>,
    #[serde(default)]
    run: Option<RunConfig>,
    #[serde(default)]
    lifecycle: Option<LifecycleConfig>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    image: String,
}

#[derive(Deserialize)]
struct OrderEntry {
    #[serde(default)]
    group: Vec<BuildpackRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct StackConfig {
    #[serde(default)]
    id: String,
    #[serde(default)]
    build_image: String,
    #[serde(default)]
    run_image: String,
}

#[derive(Deserialize)]
struct BuildConfig {
    #[serde(default)]
    image: String,
    #[serde(default)]
    env: Vec<toml::Value>,
}

#[derive(Deserialize)]
struct RunConfig {
    #[serde(default)]
    images: Vec<RunImage>,
}

#[derive(Deserialize)]
struct RunImage {
    #[serde(default)]
    image: String,
}

#[derive(Deserialize)]
struct LifecycleConfig {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    version: String,
}

/// The resources `text` (read from `path`) describes, and its description.
pub fn parse(text: &str, path: &str) -> Result<(Inputs, Option<String>), Error> {
    let err = |reason: String| Error::Config {
        path: path.to_string(),
        reason,
    };
    let c: Config = toml::from_str(text).map_err(|e| err(format!("invalid toml: {e}")))?;
    if !c.extensions.is_empty() || !c.order_extensions.is_empty() {
        return Err(err("not supported: image extensions".into()));
    }
    let (id, build_image, run_image) = match (&c.stack, &c.build, &c.run) {
        (_, Some(b), Some(r)) if !b.image.is_empty() => {
            let run = r
                .images
                .first()
                .map(|i| i.image.clone())
                .unwrap_or_default();
            let id = c.stack.as_ref().map(|s| s.id.clone()).unwrap_or_default();
            (id, b.image.clone(), run)
        }
        (Some(s), _, _) => (s.id.clone(), s.build_image.clone(), s.run_image.clone()),
        _ => {
            return Err(err(
                "missing [build] image and [[run.images]] (or [stack])".into()
            ))
        }
    };
    if build_image.is_empty() || run_image.is_empty() {
        return Err(err(
            "missing field(s): the build image or the run image ([build] image, [[run.images]] image)"
                .into(),
        ));
    }
    if c.build.as_ref().is_some_and(|b| !b.env.is_empty()) {
        return Err(err("not supported: [[build.env]]".into()));
    }
    let lifecycle = match &c.lifecycle {
        Some(l) if !l.uri.is_empty() => image_uri(&l.uri).map_err(|e| err(format!("[lifecycle] {e}")))?,
        Some(l) if !l.version.is_empty() => {
            return Err(err(format!(
                "not supported: [lifecycle] version {:?} (downloads a release); give uri = \"<lifecycle image>\"",
                l.version
            )))
        }
        _ => {
            return Err(err(
                "missing [lifecycle] uri: the lifecycle image to embed (there is no default here)"
                    .into(),
            ))
        }
    };
    if c.buildpacks.is_empty() {
        return Err(err("no [[buildpacks]]".into()));
    }
    let mut sources = Vec::new();
    for (i, b) in c.buildpacks.iter().enumerate() {
        let uri = if b.image.is_empty() { &b.uri } else { &b.image };
        let image = image_uri(uri).map_err(|e| err(format!("buildpacks[{i}]: {e}")))?;
        sources.push(BuildpackSource {
            kind: SourceKind::ClusterBuildpack,
            name: format!("buildpack-{}", i + 1),
            namespace: None,
            images: vec![image],
            service_account: None,
            buildpacks: Vec::new(),
        });
    }
    if c.order.is_empty() {
        return Err(err("no [[order]]".into()));
    }
    let order = c
        .order
        .into_iter()
        .map(|o| BuilderOrderEntry {
            group: o
                .group
                .into_iter()
                .map(|r| BuilderBuildpackRef {
                    id: r.id,
                    version: r.version,
                    optional: r.optional,
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let resources = Resources {
        stacks: vec![ClusterStack {
            name: STACK_NAME.into(),
            id,
            build_image: image_uri(&build_image).map_err(|e| err(format!("build image: {e}")))?,
            run_image: image_uri(&run_image).map_err(|e| err(format!("run image: {e}")))?,
            service_account: None,
            status: None,
        }],
        sources,
        builders: vec![Builder {
            kind: BuilderKind::ClusterBuilder,
            name: BUILDER_NAME.into(),
            namespace: None,
            tag: String::new(),
            stack: ObjectRef {
                kind: KIND_CLUSTER_STACK.into(),
                name: STACK_NAME.into(),
            },
            store: None,
            lifecycle: ObjectRef {
                kind: KIND_CLUSTER_LIFECYCLE.into(),
                name: DEFAULT_LIFECYCLE.into(),
            },
            order,
            service_account: String::new(),
            additional_labels: Default::default(),
        }],
    };
    let inputs = Inputs {
        resources,
        lifecycles: vec![ClusterLifecycle {
            name: DEFAULT_LIFECYCLE.into(),
            image: lifecycle,
            service_account_ref: None,
        }],
    };
    let description = (!c.description.is_empty()).then_some(c.description);
    Ok((inputs, description))
}

/// An image reference out of a pack URI (`docker://REF`, `REF`, `oci:DIR[:TAG]`).
fn image_uri(uri: &str) -> Result<String, String> {
    let refuse = || {
        format!(
            "not supported: {uri:?} is not an image; package a buildpack directory with \
             `buildpod buildpackage package DIR --tag REF` and name REF"
        )
    };
    if uri.is_empty() {
        return Err("missing uri".into());
    }
    if uri.starts_with("file://")
        || uri.starts_with("http://")
        || uri.starts_with("https://")
        || uri.starts_with("urn:")
        || uri.starts_with('.')
        || uri.starts_with('/')
        || [".cnb", ".tgz", ".tar", ".tar.gz"]
            .iter()
            .any(|s| uri.ends_with(s))
    {
        return Err(refuse());
    }
    let r = uri.strip_prefix("docker://").unwrap_or(uri);
    Location::parse(r).map_err(|e| format!("{uri:?}: {e}"))?;
    Ok(r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
description = "tiny builder"
[[buildpacks]]
  uri = "docker://127.0.0.1:5000/bp/a:1"
[[buildpacks]]
  image = "oci:/tmp/bp:b"
[[order]]
  [[order.group]]
    id = "a"
    version = "1.0.0"
  [[order.group]]
    id = "b"
    optional = true
[build]
  image = "127.0.0.1:5000/stack/build"
[[run.images]]
  image = "127.0.0.1:5000/stack/run"
[lifecycle]
  uri = "docker://127.0.0.1:5000/lifecycle:1"
"#;

    #[test]
    fn maps_onto_resources() {
        let (inputs, desc) = parse(FULL, "builder.toml").unwrap();
        assert_eq!(desc.as_deref(), Some("tiny builder"));
        let r = &inputs.resources;
        assert_eq!(r.stacks[0].build_image, "127.0.0.1:5000/stack/build");
        assert_eq!(r.stacks[0].id, "");
        assert_eq!(r.sources[0].images, ["127.0.0.1:5000/bp/a:1"]);
        assert_eq!(r.sources[1].images, ["oci:/tmp/bp:b"]);
        let b = &r.builders[0];
        assert_eq!(b.kind, BuilderKind::ClusterBuilder);
        assert_eq!(b.order[0].group[1].id, "b");
        assert!(b.order[0].group[1].optional);
        assert_eq!(inputs.lifecycles[0].image, "127.0.0.1:5000/lifecycle:1");
        assert_eq!(inputs.lifecycles[0].name, DEFAULT_LIFECYCLE);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let e = |t: &str| parse(t, "b.toml").unwrap_err().to_string();
        assert!(
            e(&FULL.replace("docker://127.0.0.1:5000/bp/a:1", "./bp")).contains(
                "builder config b.toml: buildpacks[0]: not supported: \"./bp\" is not an image"
            )
        );
        assert_eq!(
            e(&FULL.replace("uri = \"docker://127.0.0.1:5000/lifecycle:1\"", "version = \"0.20.0\"")),
            "builder config b.toml: not supported: [lifecycle] version \"0.20.0\" (downloads a release); give uri = \"<lifecycle image>\""
        );
        assert!(e(&FULL.replace(
            "[lifecycle]\n  uri = \"docker://127.0.0.1:5000/lifecycle:1\"\n",
            ""
        ))
        .contains("missing [lifecycle] uri"));
        assert!(e("[[extensions]]\nuri = \"x\"\n").contains("not supported: image extensions"));
    }
}
