//! Creating a builder image from kpack resources, end to end: pick the builder, read the images
//! its resources name (as kpack's reconcilers would), resolve its order, check it as kpack does,
//! write the image and report the status kpack would.
//!
//! ```ignore
//! let inputs = Inputs::from_yaml(&yaml)?;
//! let created = create(&client, &inputs, &CreateOptions {
//!     tag: Some("oci:out:builder".into()), ..Default::default() })?;
//! println!("{} {}", created.written.latest_image, created.status.order.len());
//! ```

use std::sync::Arc;

use super::image::{write_builder, Target, Written};
use super::reconcile::{reconcile, Inputs, Reconciled};
use super::resources::{Builder, BuilderKind};
use super::status::{status, validate, BuilderStatus};
use super::{Error, Resolver};
use crate::registry::Client;

#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Which builder: `NAME`, `NAMESPACE/NAME`, `Builder/NAMESPACE/NAME` or
    /// `ClusterBuilder/NAME`; `None` when the resources define exactly one.
    pub builder: Option<String>,
    /// Where to write it (`REF` or `oci:DIR[:TAG]`); `None`: the builder's `spec.tag`.
    pub tag: Option<String>,
    /// The builder's OS; the build image must be for it.
    pub os: String,
    /// Replaces kpack's description in `io.buildpacks.builder.metadata` (builder.toml).
    pub description: Option<String>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            builder: None,
            tag: None,
            os: "linux".into(),
            description: None,
        }
    }
}

/// A written builder and what kpack would report on it.
#[derive(Clone, Debug)]
pub struct Created {
    /// `registry/repo:tag` or `oci:dir:tag`.
    pub reference: String,
    pub written: Written,
    pub status: BuilderStatus,
}

/// Create the builder `opts` selects out of `inputs`.
pub fn create(
    client: &Arc<Client>,
    inputs: &Inputs,
    opts: &CreateOptions,
) -> Result<Created, Error> {
    let builder = select(&inputs.resources.builders, opts.builder.as_deref())?;
    let dest = opts.tag.clone().unwrap_or_else(|| builder.tag.clone());
    if dest.is_empty() {
        return Err(Error::Builder {
            builder: builder.describe(),
            reason: "missing field(s): spec.tag (or give a tag to write to)".into(),
        });
    }
    // Refuse a malformed tag before reading anything; open it (a layout is created) only once
    // the builder has been checked.
    crate::oci::location::Location::parse(&dest)?;
    let rec = reconcile(client, inputs, builder, &opts.os)?;
    create_reconciled(client, &rec, builder, &dest, opts.description.as_deref())
}

/// Resolve, check and write a builder whose resources are already read, to `dest` (`REF` or
/// `oci:DIR[:TAG]`).
pub fn create_reconciled(
    client: &Arc<Client>,
    rec: &Reconciled,
    builder: &Builder,
    dest: &str,
    description: Option<&str>,
) -> Result<Created, Error> {
    let builder_err = |reason: String| Error::Builder {
        builder: builder.describe(),
        reason,
    };
    let b = rec
        .resources
        .builder(
            builder.kind,
            builder.namespace.as_deref().unwrap_or_default(),
            &builder.name,
        )
        .ok_or_else(|| builder_err("not in the resources".into()))?;
    let resolution = Resolver::new(&rec.resources, b)?.resolve_order()?;
    let lc = &rec.lifecycle.resolved.status;
    validate(&resolution, &rec.stack, &lc.apis).map_err(builder_err)?;
    let target = Target::open(client, dest, b)?;
    let written = write_builder(&target, rec, b, &resolution, description)?;
    let os = rec.build.view.config.os();
    let status = status(
        b,
        &resolution,
        &rec.stack,
        lc,
        &super::status::Written {
            latest_image: &written.latest_image,
            relocated_run_image: &written.run_image,
            os: &os,
        },
    )?;
    Ok(Created {
        reference: target.reference.clone(),
        written,
        status,
    })
}

/// The builder `which` names (see [`CreateOptions::builder`]).
pub fn select<'a>(builders: &'a [Builder], which: Option<&str>) -> Result<&'a Builder, Error> {
    let names = || {
        let v: Vec<String> = builders.iter().map(Builder::describe).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let Some(which) = which else {
        return match builders {
            [one] => Ok(one),
            _ => Err(Error::Usage(format!(
                "name the builder to create (have: {})",
                names()
            ))),
        };
    };
    let (kind, rest) = match which.split_once('/') {
        Some(("Builder", r)) => (Some(BuilderKind::Builder), r),
        Some(("ClusterBuilder", r)) => (Some(BuilderKind::ClusterBuilder), r),
        _ => (None, which),
    };
    let (ns, name) = match rest.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, rest),
    };
    let found: Vec<&Builder> = builders
        .iter()
        .filter(|b| b.name == name)
        .filter(|b| kind.is_none_or(|k| b.kind == k))
        .filter(|b| ns.is_none() || b.namespace.as_deref() == ns)
        .collect();
    match found[..] {
        [one] => Ok(one),
        [] => Err(Error::Usage(format!(
            "no builder {which:?} (have: {})",
            names()
        ))),
        _ => Err(Error::Usage(format!(
            "builder {which:?} is ambiguous: write Builder/NAMESPACE/NAME or ClusterBuilder/NAME (have: {})",
            names()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
apiVersion: kpack.io/v1alpha2
kind: Builder
metadata: {name: app, namespace: a}
spec: {tag: r/x, stack: {name: s}}
---
apiVersion: kpack.io/v1alpha2
kind: Builder
metadata: {name: app, namespace: b}
spec: {tag: r/x, stack: {name: s}}
---
apiVersion: kpack.io/v1alpha2
kind: ClusterBuilder
metadata: {name: app}
spec: {tag: r/x, stack: {name: s}}
---
apiVersion: kpack.io/v1alpha2
kind: ClusterBuilder
metadata: {name: other}
spec: {tag: r/x, stack: {name: s}}
"#;

    #[test]
    fn selects_builders_by_name_namespace_and_kind() {
        let res = crate::builder::parse(YAML).unwrap();
        let pick = |w: Option<&str>| select(&res.builders, w).map(|b| b.describe());
        assert_eq!(pick(Some("other")).unwrap(), "ClusterBuilder other");
        assert_eq!(pick(Some("b/app")).unwrap(), "Builder b/app");
        assert_eq!(pick(Some("Builder/a/app")).unwrap(), "Builder a/app");
        assert_eq!(
            pick(Some("ClusterBuilder/app")).unwrap(),
            "ClusterBuilder app"
        );
        let e = pick(Some("app")).unwrap_err().to_string();
        assert!(e.starts_with("builder \"app\" is ambiguous"), "{e}");
        let e = pick(None).unwrap_err().to_string();
        assert_eq!(
            e,
            "name the builder to create (have: Builder a/app, Builder b/app, ClusterBuilder app, ClusterBuilder other)"
        );
        assert!(pick(Some("c/app"))
            .unwrap_err()
            .to_string()
            .starts_with("no builder \"c/app\""));
        let one = crate::builder::parse(&YAML[..YAML.find("---").unwrap()]).unwrap();
        assert_eq!(select(&one.builders, None).unwrap().name, "app");
    }
}
