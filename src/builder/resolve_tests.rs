//! Table tests of buildpack resolution over YAML fixtures (`tests/fixtures/builder/`): kpack's
//! `buildpack_resolver_test.go` cases, then the rules of issue 7.

use super::resources::{BuilderBuildpackRef, BuilderKind, BuildpackRef, OrderEntry, Resources};
use super::{parse, Error, Resolver};

const KPACK_STORE: &str = include_str!("../../tests/fixtures/builder/kpack-store.yaml");
const KPACK_BUILDPACKS: &str = include_str!("../../tests/fixtures/builder/kpack-buildpacks.yaml");
const KPACK_CLUSTER_BUILDPACKS: &str =
    include_str!("../../tests/fixtures/builder/kpack-cluster-buildpacks.yaml");
const KPACK_MIXED: &str = include_str!("../../tests/fixtures/builder/kpack-mixed.yaml");
const RULES: &str = include_str!("../../tests/fixtures/builder/rules.yaml");

/// A reference written as YAML flow, e.g. `{id: x, version: 1.0.0}`.
fn r(flow: &str) -> BuilderBuildpackRef {
    serde_norway::from_str(flow).unwrap()
}

/// `Ok("id@version from Kind name")` or `Err(kpack message)`.
fn resolve(
    res: &Resources,
    kind: BuilderKind,
    ns: &str,
    name: &str,
    flow: &str,
) -> Result<String, String> {
    let b = res.builder(kind, ns, name).unwrap();
    let resolver = Resolver::new(res, b).unwrap();
    resolver
        .resolve(&r(flow))
        .map(|s| format!("{} from {}", s.buildpack.key(), s.source.describe()))
}

type Case = (
    &'static str,
    &'static str,
    Result<&'static str, &'static str>,
);

fn run(yaml: &str, kind: BuilderKind, ns: &str, name: &str, cases: &[Case]) {
    let res = parse(yaml).unwrap();
    for (what, flow, want) in cases {
        let got = resolve(&res, kind, ns, name, flow);
        let want = want.map(str::to_string).map_err(str::to_string);
        assert_eq!(got, want, "{what}: {flow}");
    }
}

fn kpack(yaml: &str, cases: &[Case]) {
    run(
        yaml,
        BuilderKind::Builder,
        "some-namespace",
        "some-builder",
        cases,
    );
}

const NOT_FOUND: &str = "could not find buildpack with id 'fake-buildpack'";
const NO_VERSION: &str =
    "could not find buildpack with id 'io.buildpack.multi' and version '8.0.1'";

#[test]
fn kpack_using_the_cluster_store() {
    kpack(
        KPACK_STORE,
        &[
            (
                "finds it using id",
                "{id: io.buildpack.engine}",
                Ok("io.buildpack.engine@1.0.0 from ClusterStore some-store"),
            ),
            (
                "finds it using id and version",
                "{id: io.buildpack.multi, version: 8.0.0}",
                Ok("io.buildpack.multi@8.0.0 from ClusterStore some-store"),
            ),
            (
                "fails on invalid id",
                "{id: fake-buildpack}",
                Err(NOT_FOUND),
            ),
            (
                "fails on unknown version",
                "{id: io.buildpack.multi, version: 8.0.1}",
                Err(NO_VERSION),
            ),
            (
                "highest semver without a version",
                "{id: io.buildpack.multi}",
                Ok("io.buildpack.multi@9.0.0 from ClusterStore some-store"),
            ),
        ],
    );
}

fn kpack_resources(yaml: &str, kind: &str, not_found: &'static str) {
    let ns = if kind == "Buildpack" {
        "some-namespace/"
    } else {
        ""
    };
    let from = |name: &str| format!("from {kind} {ns}{name}");
    let meta = format!("io.buildpack.meta@1.0.0 {}", from("io.buildpack.meta"));
    let engine = format!("io.buildpack.engine@1.0.0 {}", from("io.buildpack.meta"));
    let v8 = format!(
        "io.buildpack.multi@8.0.0 {}",
        from("io.buildpack.multi-8.0.0")
    );
    let obj = |name: &str, id: &str, version: &str| {
        format!("{{kind: {kind}, name: {name}, id: '{id}', version: '{version}'}}")
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let cases: Vec<Case> = vec![
        // using id
        (
            "finds it using id",
            "{id: io.buildpack.meta}",
            Ok(leak(meta.clone())),
        ),
        (
            "finds nested ids",
            "{id: io.buildpack.engine}",
            Ok(leak(engine.clone())),
        ),
        (
            "finds it using id and version",
            "{id: io.buildpack.multi, version: 8.0.0}",
            Ok(leak(v8.clone())),
        ),
        (
            "fails on unknown version",
            "{id: io.buildpack.multi, version: 8.0.1}",
            Err(NO_VERSION),
        ),
        (
            "fails on invalid id",
            "{id: fake-buildpack}",
            Err(NOT_FOUND),
        ),
        // using object ref
        (
            "finds the resource",
            leak(obj("io.buildpack.meta", "", "")),
            Ok(leak(meta.clone())),
        ),
        (
            "fails on invalid kind",
            leak(format!("{{kind: Fake{kind}, name: io.buildpack.meta}}")),
            Err("kind must be either Buildpack or ClusterBuildpack"),
        ),
        (
            "fails on object not found",
            leak(obj("fake-buildpack", "", "")),
            Err(not_found),
        ),
        (
            "several roots",
            leak(obj("io.buildpack.multi", "", "")),
            Err("unexpected number of root buildpacks: 2"),
        ),
        // using id and object ref together
        (
            "finds id in resource",
            leak(obj("io.buildpack.meta", "io.buildpack.meta", "")),
            Ok(leak(meta)),
        ),
        (
            "finds nested id in resource",
            leak(obj("io.buildpack.meta", "io.buildpack.engine", "")),
            Ok(leak(engine)),
        ),
        (
            "finds the correct version in resource",
            leak(obj("io.buildpack.multi", "io.buildpack.multi", "8.0.0")),
            Ok(leak(format!(
                "io.buildpack.multi@8.0.0 {}",
                from("io.buildpack.multi")
            ))),
        ),
        (
            "fails on id not found in resource",
            leak(obj("io.buildpack.meta", "fake-buildpack", "")),
            Err(NOT_FOUND),
        ),
        (
            "fails on version not found in resource",
            leak(obj("io.buildpack.multi", "io.buildpack.multi", "8.0.1")),
            Err(NO_VERSION),
        ),
    ];
    kpack(yaml, &cases);
}

#[test]
fn kpack_using_the_buildpack_resources() {
    kpack_resources(
        KPACK_BUILDPACKS,
        "Buildpack",
        "no buildpack with name 'fake-buildpack'",
    );
}

#[test]
fn kpack_using_the_cluster_buildpack_resources() {
    kpack_resources(
        KPACK_CLUSTER_BUILDPACKS,
        "ClusterBuildpack",
        "no cluster buildpack with name 'fake-buildpack'",
    );
}

#[test]
fn kpack_using_multiple_resource_kinds() {
    kpack(
        KPACK_MIXED,
        &[
            ("records which objects were used: meta", "{id: io.buildpack.meta}", Ok("io.buildpack.meta@1.0.0 from ClusterStore some-store")),
            ("resolves buildpacks before anything else", "{id: io.buildpack.multi, version: 8.0.0}", Ok("io.buildpack.multi@8.0.0 from Buildpack some-namespace/io.buildpack.multi-8.0.0")),
            ("resolves cluster buildpacks before cluster store", "{id: io.buildpack.multi, version: 9.0.0}", Ok("io.buildpack.multi@9.0.0 from ClusterBuildpack io.buildpack.multi-9.0.0")),
            // Unlike kpack (highest across all sources), the namespaced tier shadows the others.
            ("an id alone is shadowed by the namespace's Buildpacks", "{id: io.buildpack.multi}", Ok("io.buildpack.multi@8.0.0 from Buildpack some-namespace/io.buildpack.multi-8.0.0")),
        ],
    );
}

fn app(cases: &[Case]) {
    run(RULES, BuilderKind::Builder, "team-a", "app", cases);
}

#[test]
fn ids_resolve_by_tier_and_highest_semver() {
    app(&[
        ("namespaced Buildpack shadows a ClusterBuildpack", "{id: python}", Ok("python@2.0.0 from Buildpack team-a/python")),
        ("an explicit version falls through to the tier that has it", "{id: python, version: 3.0.0}", Ok("python@3.0.0 from ClusterBuildpack python")),
        ("highest semver, not the last or lexically highest", "{id: nodejs}", Ok("nodejs@1.10.0 from ClusterBuildpack nodejs")),
        ("explicit version", "{id: nodejs, version: 1.2.0}", Ok("nodejs@1.2.0 from ClusterBuildpack nodejs")),
        ("the ClusterStore comes last", "{id: static}", Ok("static@0.2.0 from ClusterStore store")),
        ("sub-buildpacks are found by id", "{id: meta-all}", Ok("meta-all@1.0.0 from ClusterBuildpack meta")),
        ("identical copies are one buildpack: the first resource", "{id: go}", Ok("go@1.0.0 from ClusterBuildpack go")),
        ("two resources, different layers", "{id: procfile}", Err("buildpack procfile@1.0.0 is provided by both ClusterBuildpack procfile-a (sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff) and ClusterBuildpack procfile-b (sha256:0000000000000000000000000000000000000000000000000000000000000000) with different layers")),
        ("invalid semver", "{id: odd}", Err("cannot find buildpack 'odd' with latest version due to invalid semver 'latest'")),
        ("an exact version needs no semver", "{id: odd, version: latest}", Ok("odd@latest from ClusterBuildpack odd")),
        ("unknown id", "{id: ruby}", Err("could not find buildpack with id 'ruby'")),
        ("unknown version", "{id: nodejs, version: 9.9.9}", Err("could not find buildpack with id 'nodejs' and version '9.9.9'")),
    ]);
}

#[test]
fn object_references() {
    app(&[
        (
            "the single root",
            "{kind: ClusterBuildpack, name: meta}",
            Ok("meta-all@1.0.0 from ClusterBuildpack meta"),
        ),
        (
            "root with its version",
            "{kind: ClusterBuildpack, name: meta, version: 1.0.0}",
            Ok("meta-all@1.0.0 from ClusterBuildpack meta"),
        ),
        (
            "root with another version",
            "{kind: ClusterBuildpack, name: meta, version: 2.0.0}",
            Err("could not find buildpack with id 'meta-all' and version '2.0.0'"),
        ),
        (
            "two versions are two roots",
            "{kind: ClusterBuildpack, name: nodejs}",
            Err("unexpected number of root buildpacks: 2"),
        ),
        (
            "a cycle has no root",
            "{kind: ClusterBuildpack, name: loop}",
            Err("unexpected number of root buildpacks: 0"),
        ),
        (
            "id within the named resource only",
            "{kind: ClusterBuildpack, name: python, id: python}",
            Ok("python@3.0.0 from ClusterBuildpack python"),
        ),
        (
            "namespaced Buildpack by name",
            "{kind: Buildpack, name: python}",
            Ok("python@2.0.0 from Buildpack team-a/python"),
        ),
        (
            "id not in the named resource",
            "{kind: ClusterBuildpack, name: go, id: python}",
            Err("could not find buildpack with id 'python'"),
        ),
        (
            "named resource missing, with id",
            "{kind: ClusterBuildpack, name: ruby, id: ruby}",
            Err("cluster buildpack not found: ruby"),
        ),
        (
            "named Buildpack missing, with id",
            "{kind: Buildpack, name: ruby, id: ruby}",
            Err("buildpack not found: ruby"),
        ),
        (
            "ClusterStore is not a buildpack kind",
            "{kind: ClusterStore, name: store}",
            Err("kind must be either Buildpack or ClusterBuildpack"),
        ),
        (
            "name without kind",
            "{name: meta}",
            Err("kind must be either Buildpack or ClusterBuildpack"),
        ),
        (
            "kind without name",
            "{kind: ClusterBuildpack}",
            Err("missing field(s): name"),
        ),
        (
            "image",
            "{image: registry.local/bp}",
            Err("image reference currently not supported"),
        ),
        (
            "nothing",
            "{optional: true}",
            Err("expected exactly one, got neither: image, id, name + kind"),
        ),
    ]);
}

#[test]
fn cluster_builders_reach_cluster_buildpacks_only() {
    run(
        RULES,
        BuilderKind::ClusterBuilder,
        "",
        "cluster",
        &[
            ("namespaced Buildpacks are not consulted", "{id: python}", Ok("python@3.0.0 from ClusterBuildpack python")),
            ("a Buildpack reference is refused", "{kind: Buildpack, name: python}", Err("not supported: a ClusterBuilder may only reference ClusterBuildpacks, not Buildpack 'python'")),
            ("ClusterBuildpacks are", "{kind: ClusterBuildpack, name: go}", Ok("go@1.0.0 from ClusterBuildpack go")),
        ],
    );
}

fn bp(id: &str, version: &str, optional: bool) -> BuildpackRef {
    BuildpackRef {
        id: id.into(),
        version: version.into(),
        optional,
    }
}

#[test]
fn whole_order_is_pinned_and_lists_meta_children() {
    let res = parse(RULES).unwrap();
    let b = res.builder(BuilderKind::Builder, "team-a", "app").unwrap();
    let got = Resolver::new(&res, b).unwrap().resolve_order().unwrap();
    assert_eq!(
        got.order,
        [
            OrderEntry {
                group: vec![bp("python", "2.0.0", false), bp("nodejs", "1.10.0", false)]
            },
            OrderEntry {
                group: vec![bp("meta-all", "1.0.0", false)]
            },
            OrderEntry {
                group: vec![bp("static", "0.2.0", false), bp("go", "1.0.0", true)]
            },
        ]
    );
    let listed: Vec<String> = got
        .buildpacks
        .iter()
        .map(|s| format!("{} {}", s.buildpack.key(), s.source.describe()))
        .collect();
    assert_eq!(
        listed,
        [
            "python@2.0.0 Buildpack team-a/python",
            "nodejs@1.10.0 ClusterBuildpack nodejs",
            "meta-all@1.0.0 ClusterBuildpack meta",
            "go@1.0.0 ClusterBuildpack meta",
            "static@0.2.0 ClusterStore store",
        ]
    );
}

/// Resolve the order of one more builder, added to the rules fixture.
fn order_error(builder: &str) -> Error {
    let res = parse(&format!("{RULES}---\n{builder}")).unwrap();
    let b = res.builders.last().unwrap();
    Resolver::new(&res, b).unwrap().resolve_order().unwrap_err()
}

fn builder(kind: &str, order: &str) -> String {
    format!(
        "apiVersion: kpack.io/v1alpha2\nkind: {kind}\nmetadata:\n  name: extra\n  namespace: team-a\n\
         spec:\n  tag: registry.local/extra\n  stack:\n    name: tiny\n  store:\n    name: store\n  order:\n{order}"
    )
}

#[test]
fn order_errors_name_the_entry() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "same id twice in one group (after resolution)",
            "  - group:\n    - id: go\n    - id: python\n    - kind: ClusterBuildpack\n      name: go-copy\n",
            "Builder team-a/extra: spec.order[0].group[2] {kind: ClusterBuildpack, name: go-copy}: buildpack id 'go' is already in this group at group[0]",
        ),
        (
            "unknown id in the second group",
            "  - group:\n    - id: go\n  - group:\n    - id: go\n    - id: ruby\n      version: 1.0.0\n",
            "Builder team-a/extra: spec.order[1].group[1] {id: ruby, version: 1.0.0}: could not find buildpack with id 'ruby'",
        ),
        (
            "two resources, different layers",
            "  - group:\n    - id: procfile\n",
            "Builder team-a/extra: spec.order[0].group[0] {id: procfile}: buildpack procfile@1.0.0 is provided by both ClusterBuildpack procfile-a (sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff) and ClusterBuildpack procfile-b (sha256:0000000000000000000000000000000000000000000000000000000000000000) with different layers",
        ),
        (
            "meta-buildpack cycle",
            "  - group:\n    - id: loop-a\n",
            "Builder team-a/extra: spec.order[0].group[0] {id: loop-a}: meta-buildpack cycle: loop-a@1.0.0 -> loop-b@1.0.0 -> loop-a@1.0.0",
        ),
        (
            "missing meta-buildpack child",
            "  - group:\n    - id: orphan-meta\n",
            "Builder team-a/extra: spec.order[0].group[0] {id: orphan-meta}: meta-buildpack orphan-meta@1.0.0: child missing-child: could not find buildpack with id 'missing-child'",
        ),
    ];
    for (what, order, want) in cases {
        let got = order_error(&builder("Builder", order)).to_string();
        assert_eq!(got, *want, "{what}");
    }
    let got = order_error(&builder(
        "ClusterBuilder",
        "  - group:\n    - id: go\n    - kind: Buildpack\n      name: python\n",
    ));
    assert_eq!(
        got.to_string(),
        "ClusterBuilder extra: spec.order[0].group[1] {kind: Buildpack, name: python}: not supported: a ClusterBuilder may only reference ClusterBuildpacks, not Buildpack 'python'"
    );
    assert_eq!(
        got.reason(),
        "not supported: a ClusterBuilder may only reference ClusterBuildpacks, not Buildpack 'python'"
    );
}

#[test]
fn a_missing_store_is_a_builder_error() {
    let yaml =
        builder("Builder", "  - group:\n    - id: go\n").replace("name: store", "name: nowhere");
    let res = parse(&format!("{RULES}---\n{yaml}")).unwrap();
    let err = Resolver::new(&res, res.builders.last().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Builder team-a/extra: clusterstore 'nowhere' not found"
    );
}

#[test]
fn parse_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "apiVersion: kpack.io/v1alpha1\nkind: ClusterBuildpack\nmetadata:\n  name: x\n",
            "ClusterBuildpack x: not supported: apiVersion \"kpack.io/v1alpha1\" (want kpack.io/v1alpha2)",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: Builder\nmetadata:\n  name: b\nspec:\n  tag: t\n",
            "Builder b: missing field(s): spec.stack.name",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: Builder\nmetadata:\n  name: b\nspec:\n  stack:\n    name: s\n  store:\n    kind: ClusterBuildpack\n    name: x\n",
            "Builder b: invalid value: ClusterBuildpack: spec.store.kind (must be ClusterStore)",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: ClusterStack\nmetadata:\n  name: s\nspec:\n  id: x\n",
            "ClusterStack s: missing field(s): spec.buildImage.image, spec.runImage.image",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: ClusterBuildpack\nmetadata:\n  name: x\nstatus:\n  buildpacks:\n  - version: 1.0.0\n",
            "ClusterBuildpack x: missing field(s): status.buildpacks[0].id",
        ),
        (
            "apiVersion: kpack.io/v1alpha2\nkind: Buildpack\nmetadata:\n  name: x\n---\napiVersion: kpack.io/v1alpha2\nkind: Buildpack\nmetadata:\n  name: x\n  namespace: default\n",
            "Buildpack default/x: defined more than once",
        ),
        ("kind: [\n", "invalid builder resources yaml: document 1: "),
    ];
    for (yaml, want) in cases {
        let got = parse(yaml).unwrap_err().to_string();
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn parse_defaults_and_skips_other_kinds() {
    let res = parse(RULES).unwrap();
    assert_eq!(res.stacks.len(), 1);
    assert_eq!(res.sources.len(), 11);
    let app = res.builder(BuilderKind::Builder, "team-a", "app").unwrap();
    assert_eq!(app.lifecycle.name, "default-lifecycle");
    assert_eq!(app.lifecycle.kind, "ClusterLifecycle");
    assert_eq!(app.stack.kind, "ClusterStack");
    assert_eq!(app.store.as_ref().unwrap().kind, "ClusterStore");
    assert_eq!(app.service_account, "default");
    let cluster = res
        .builder(BuilderKind::ClusterBuilder, "any", "cluster")
        .unwrap();
    assert_eq!(cluster.lifecycle.name, "ours");
    assert_eq!(cluster.namespace, None);
    let stack = res.stack("tiny").unwrap().status.as_ref().unwrap();
    assert_eq!((stack.user_id, stack.group_id), (1000, 1000));
    let bp = parse("apiVersion: kpack.io/v1alpha2\nkind: Buildpack\nmetadata:\n  name: x\nspec:\n  image: i\n  serviceAccountName: sa\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n").unwrap();
    assert_eq!(bp.sources[0].namespace.as_deref(), Some("default"));
    assert_eq!(bp.sources[0].images, ["i"]);
    assert_eq!(
        bp.sources[0].service_account.as_ref().unwrap().namespace,
        "default"
    );
}

#[test]
fn lenient_semver() {
    use super::resolve::semver_of;
    for (v, want) in [
        ("1", "1.0.0"),
        ("v1.2", "1.2.0"),
        ("1.2.3-rc.1", "1.2.3-rc.1"),
        ("1.2-rc", "1.2.0-rc"),
    ] {
        assert_eq!(semver_of(v).unwrap().to_string(), want, "{v}");
    }
    assert!(semver_of("latest").is_none());
    assert!(semver_of("1.2.3.4").is_none());
}
