//! Restoring buildpack layers (`cnb-lifecycle.md` §4.3, §8.2): `store.toml` and `<layer>.toml`
//! from the previous image's and the cache's metadata, which cached layers get their data back
//! and which are stale, CNB layer tars applied inside the layers dir, and SBOM files copied back.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::analyzed::{json_to_toml, render_layer_toml};
use super::api::ApiVersion;
use super::buildpack_toml::escape_id;
use super::launch::StoreToml;
use super::log::Log;
use super::order::GroupEntry;
use super::output::write_file;
use super::user::RunAs;
use crate::cache::CacheMetadata;
use crate::export::labels::{BuildpackLayers, LayerMetadata, LayersMetadata};
use crate::fsutil::PathError;
use crate::layer::extract::{
    apply_tar_filtered, AbsolutePaths, ExtractError, ExtractOptions, ExtractStats, Filter,
};

/// Where a layer's restored metadata comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    App,
    Cache,
}

/// What happens to one layer's metadata (§8.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    Write(Origin, &'a LayerMetadata),
    /// Not restored, and why (a debug message).
    Skip(&'static str),
}

/// §8.2 for one buildpack: the app image's layers first, then the cache's. A later write of the
/// same layer (from the cache) replaces an earlier one.
pub fn metadata_decisions<'a>(
    app: Option<&'a BuildpackLayers>,
    cache: Option<&'a BuildpackLayers>,
    platform_api: ApiVersion,
) -> Vec<(&'a str, Decision<'a>)> {
    let cached = |name: &str| {
        cache
            .and_then(|c| c.layers.get(name))
            .is_some_and(|l| l.cache)
    };
    let in_app = |name: &str| app.is_some_and(|a| a.layers.contains_key(name));
    let mut out = Vec::new();
    for (name, l) in app.iter().flat_map(|a| a.layers.iter()) {
        let d = if !l.launch {
            Decision::Skip("marked as launch=false")
        } else if l.build && !l.cache {
            Decision::Skip("marked as build=true, cache=false")
        } else if l.cache && !cached(name) {
            Decision::Skip("marked as cache=true, but not found in cache")
        } else {
            Decision::Write(Origin::App, l)
        };
        out.push((name.as_str(), d));
    }
    for (name, l) in cache.iter().flat_map(|c| c.layers.iter()) {
        let d = if !l.cache {
            Decision::Skip("marked as cache=false in the cache")
        } else if l.launch && (in_app(name) || !platform_api.at_least(0, 14)) {
            Decision::Skip("marked as launch=true in the cache")
        } else {
            Decision::Write(Origin::Cache, l)
        };
        out.push((name.as_str(), d));
    }
    out
}

/// SHAs recorded while writing metadata, by (buildpack id, layer).
pub type Shas = HashMap<(String, String), String>;

fn bp_dir(layers: &Path, id: &str) -> PathBuf {
    layers.join(escape_id(id))
}

fn bp_meta<'a>(m: &'a [BuildpackLayers], id: &str) -> Option<&'a BuildpackLayers> {
    m.iter().find(|b| b.key == id)
}

/// store.toml (always, even with skip-layers) and, unless `skip_layers`, `<layer>.toml` files.
pub fn restore_metadata(
    layers: &Path,
    group: &[GroupEntry],
    app: &LayersMetadata,
    cache: &CacheMetadata,
    skip_layers: bool,
    platform_api: ApiVersion,
    log: &Log,
) -> Result<Shas, PathError> {
    for bp in group {
        if let Some(store) = bp_meta(&app.buildpacks, &bp.id).and_then(|b| b.store.as_ref()) {
            let text = match json_to_toml(&store.metadata) {
                Some(toml::Value::Table(metadata)) => StoreToml { metadata }.render(),
                _ => String::new(),
            };
            write_file(
                &bp_dir(layers, &bp.id).join("store.toml"),
                text.as_bytes(),
                &RunAs::Current,
            )?;
        }
    }
    let mut shas = Shas::new();
    if skip_layers {
        log.info("Skipping buildpack layer analysis");
        return Ok(shas);
    }
    for bp in group {
        let app_bp = bp_meta(&app.buildpacks, &bp.id);
        let cache_bp = bp_meta(&cache.buildpacks, &bp.id);
        for (name, d) in metadata_decisions(app_bp, cache_bp, platform_api) {
            let id = format!("{}:{name}", bp.id);
            match d {
                Decision::Skip(why) => {
                    log.debug(&format!("Not restoring metadata for {id:?}, {why}"))
                }
                Decision::Write(origin, l) => {
                    let from = match origin {
                        Origin::App => "app image",
                        Origin::Cache => "cache",
                    };
                    log.info(&format!("Restoring metadata for {id:?} from {from}"));
                    let path = bp_dir(layers, &bp.id).join(format!("{name}.toml"));
                    write_file(
                        &path,
                        render_layer_toml(&l.data).as_bytes(),
                        &RunAs::Current,
                    )?;
                    shas.insert((bp.id.clone(), name.to_string()), l.sha.clone());
                }
            }
        }
    }
    Ok(shas)
}

/// What to do with a `cache = true` layer found in the layers dir (§4.3 step 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataAction {
    /// Extract the cached tar with this diffID.
    Restore(String),
    /// Its metadata does not match the cache: remove `<layer>/`, `<layer>.toml`, `<layer>.sha`.
    Remove { recorded: String, cached: String },
}

/// Layers named by a `<name>.toml` in the buildpack's dir (not launch/build/store.toml).
fn layer_names(dir: &Path) -> Result<Vec<String>, PathError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PathError::new("read directory", dir, e)),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|err| PathError::new("read directory", dir, err))?;
        let f = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = f.strip_suffix(".toml") {
            if !matches!(n, "launch" | "build" | "store") && e.path().is_file() {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// For each buildpack, its layers the cache metadata says are `cache = true`, and whether their
/// recorded SHA matches the cache's.
pub fn data_actions(
    layers: &Path,
    group: &[GroupEntry],
    cache: &CacheMetadata,
    shas: &Shas,
) -> Result<Vec<(GroupEntry, String, DataAction)>, PathError> {
    let mut out = Vec::new();
    for bp in group {
        let Some(cached) = bp_meta(&cache.buildpacks, &bp.id) else {
            continue;
        };
        for name in layer_names(&bp_dir(layers, &bp.id))? {
            let Some(c) = cached.layers.get(&name).filter(|l| l.cache) else {
                continue;
            };
            let recorded = shas
                .get(&(bp.id.clone(), name.clone()))
                .cloned()
                .unwrap_or_default();
            let action = if recorded == c.sha {
                DataAction::Restore(c.sha.clone())
            } else {
                DataAction::Remove {
                    recorded,
                    cached: c.sha.clone(),
                }
            };
            out.push((bp.clone(), name, action));
        }
    }
    Ok(out)
}

/// Removes a layer: its directory, `<layer>.toml` and `<layer>.sha`.
pub fn remove_layer(layers: &Path, bp: &str, name: &str) -> Result<(), PathError> {
    let dir = bp_dir(layers, bp);
    let gone = |r: io::Result<()>, p: &Path| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(PathError::new("remove", p, e)),
        _ => Ok(()),
    };
    let d = dir.join(name);
    gone(fs::remove_dir_all(&d), &d)?;
    for ext in ["toml", "sha"] {
        let f = dir.join(format!("{name}.{ext}"));
        gone(fs::remove_file(&f), &f)?;
    }
    Ok(())
}

/// Applies a CNB layer tar (absolute names such as `/layers/bp/layer/...`, as the Go lifecycle
/// extracts to `/`) inside `layers` only: entries outside it are skipped, nothing escapes it.
/// Reads the stream to its end, so a verifying reader gets to check the digest.
pub fn extract_into_layers(mut r: impl Read, layers: &Path) -> Result<ExtractStats, ExtractError> {
    let prefix = layers.strip_prefix("/").unwrap_or(layers).to_path_buf();
    let map = |p: &Path| p.strip_prefix(&prefix).ok().map(Path::to_path_buf);
    let opts = ExtractOptions {
        absolute: AbsolutePaths::Reroot,
        whiteouts: crate::layer::extract::Whiteouts::Keep,
        // Files belong to the (dropped) user running the phase, as in the Go lifecycle.
        same_owner: false,
        strip_components: 0,
    };
    let stats = apply_tar_filtered(
        &mut r,
        layers,
        &opts,
        &Filter {
            map: &map,
            contained_symlinks: false,
        },
    )?;
    io::copy(&mut r, &mut io::sink()).map_err(ExtractError::Read)?;
    Ok(stats)
}

/// Copies `<layers>/sbom/{cache,launch}/<bp>/<layer>/sbom.<fmt>.json` to
/// `<layers>/<bp>/<layer>.sbom.<fmt>.json` for group buildpacks whose dir exists, then removes
/// `<layers>/sbom` (whatever happened).
pub fn restore_sboms(layers: &Path, group: &[GroupEntry]) -> Result<(), PathError> {
    let sbom = layers.join("sbom");
    let result = (|| {
        for kind in ["cache", "launch"] {
            copy_sboms(&sbom.join(kind), layers, group)?;
        }
        Ok(())
    })();
    match fs::remove_dir_all(&sbom) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            result.and(Err(PathError::new("remove", &sbom, e)))
        }
        _ => result,
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>, PathError> {
    let mut v: Vec<fs::DirEntry> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<io::Result<_>>()
            .map_err(|e| PathError::new("read directory", dir, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PathError::new("read directory", dir, e)),
    };
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn is_dir(e: &fs::DirEntry) -> bool {
    e.file_type().is_ok_and(|t| t.is_dir())
}

fn copy_sboms(root: &Path, layers: &Path, group: &[GroupEntry]) -> Result<(), PathError> {
    for bp in read_dir_sorted(root)?.into_iter().filter(is_dir) {
        let bp_name = bp.file_name().to_string_lossy().into_owned();
        let dest_dir = layers.join(&bp_name);
        if !dest_dir.is_dir() || !group.iter().any(|g| escape_id(&g.id) == bp_name) {
            continue;
        }
        for layer in read_dir_sorted(&bp.path())?.into_iter().filter(is_dir) {
            let lname = layer.file_name().to_string_lossy().into_owned();
            for f in read_dir_sorted(&layer.path())? {
                let fname = f.file_name().to_string_lossy().into_owned();
                let is_sbom = fname.len() > "sbomjson".len()
                    && fname.starts_with("sbom")
                    && fname.ends_with("json");
                let regular = fs::symlink_metadata(f.path()).is_ok_and(|m| m.is_file());
                if is_sbom && regular {
                    let to = dest_dir.join(format!("{lname}.{fname}"));
                    fs::copy(f.path(), &to).map_err(|e| PathError::new("copy to", &to, e))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;
    use std::collections::BTreeMap;

    fn lm(sha: &str, launch: bool, build: bool, cache: bool) -> LayerMetadata {
        LayerMetadata {
            sha: sha.into(),
            data: Json::Null,
            launch,
            build,
            cache,
        }
    }

    fn bp(layers: &[(&str, LayerMetadata)]) -> BuildpackLayers {
        BuildpackLayers {
            key: "bp".into(),
            version: "1".into(),
            layers: layers
                .iter()
                .map(|(n, l)| (n.to_string(), l.clone()))
                .collect::<BTreeMap<_, _>>(),
            store: None,
        }
    }

    fn decide(
        app: &BuildpackLayers,
        cache: &BuildpackLayers,
        api: u32,
    ) -> Vec<(String, Option<Origin>)> {
        metadata_decisions(Some(app), Some(cache), ApiVersion::new(0, api))
            .into_iter()
            .map(|(n, d)| {
                let o = match d {
                    Decision::Write(o, _) => Some(o),
                    Decision::Skip(_) => None,
                };
                (n.to_string(), o)
            })
            .collect()
    }

    #[test]
    fn section_8_2_rule_table() {
        let app = bp(&[
            ("build-only", lm("a1", false, true, false)),
            ("launch-build", lm("a2", true, true, false)),
            ("launch-cache-cached", lm("a3", true, false, true)),
            ("launch-cache-gone", lm("a4", true, false, true)),
            ("launch-only", lm("a5", true, false, false)),
            ("launch-build-cache", lm("a6", true, true, true)),
        ]);
        let cache = bp(&[
            ("cache-only", lm("c1", false, true, true)),
            ("launch-build-cache", lm("c6", true, true, true)),
            ("launch-cache-cached", lm("c3", true, false, true)),
            ("launch-not-in-app", lm("c7", true, false, true)),
            ("not-cache", lm("c8", false, false, false)),
        ]);
        use Origin::*;
        let want = |launch_not_in_app: Option<Origin>| {
            vec![
                ("build-only".to_string(), None),
                ("launch-build".into(), None),
                ("launch-build-cache".into(), Some(App)),
                ("launch-cache-cached".into(), Some(App)),
                ("launch-cache-gone".into(), None),
                ("launch-only".into(), Some(App)),
                ("cache-only".into(), Some(Cache)),
                ("launch-build-cache".into(), None),
                ("launch-cache-cached".into(), None),
                ("launch-not-in-app".into(), launch_not_in_app),
                ("not-cache".into(), None),
            ]
        };
        assert_eq!(decide(&app, &cache, 14), want(Some(Cache)));
        assert_eq!(decide(&app, &cache, 13), want(None));
        // No cache: cached launch layers are not restored, launch-only ones are.
        let none = metadata_decisions(Some(&app), None, ApiVersion::new(0, 14));
        let written: Vec<&str> = none
            .iter()
            .filter(|(_, d)| matches!(d, Decision::Write(..)))
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(written, ["launch-only"]);
    }

    #[test]
    fn sha_mismatch_removes_and_match_restores() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path();
        let group = vec![GroupEntry {
            id: "acme/bp".into(),
            version: "1".into(),
            api: "0.10".into(),
            homepage: String::new(),
        }];
        let dir = layers.join("acme_bp");
        for n in ["fresh", "stale", "unrecorded", "other"] {
            fs::create_dir_all(dir.join(n)).unwrap();
            fs::write(dir.join(format!("{n}.toml")), "").unwrap();
        }
        fs::write(dir.join("stale.sha"), "x").unwrap();
        fs::write(dir.join("store.toml"), "").unwrap();
        let mut cache = CacheMetadata::default();
        let mut c = bp(&[
            ("fresh", lm("sha256:f", false, false, true)),
            ("stale", lm("sha256:new", true, false, true)),
            ("unrecorded", lm("sha256:u", false, false, true)),
            ("other", lm("sha256:o", false, false, false)),
        ]);
        c.key = "acme/bp".into();
        cache.buildpacks.push(c);
        let mut shas = Shas::new();
        shas.insert(("acme/bp".into(), "fresh".into()), "sha256:f".into());
        shas.insert(("acme/bp".into(), "stale".into()), "sha256:old".into());
        let actions: Vec<(String, DataAction)> = data_actions(layers, &group, &cache, &shas)
            .unwrap()
            .into_iter()
            .map(|(_, n, a)| (n, a))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("fresh".into(), DataAction::Restore("sha256:f".into())),
                (
                    "stale".into(),
                    DataAction::Remove {
                        recorded: "sha256:old".into(),
                        cached: "sha256:new".into()
                    }
                ),
                (
                    "unrecorded".into(),
                    DataAction::Remove {
                        recorded: String::new(),
                        cached: "sha256:u".into()
                    }
                ),
            ]
        );
        remove_layer(layers, "acme/bp", "stale").unwrap();
        assert!(!dir.join("stale").exists() && !dir.join("stale.toml").exists());
        assert!(!dir.join("stale.sha").exists() && dir.join("fresh").exists());
    }

    #[test]
    fn sboms_copied_to_group_buildpacks_then_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        let put = |p: &str| {
            let p = l.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "{}").unwrap();
        };
        put("sbom/cache/acme_bp/deps/sbom.cdx.json");
        put("sbom/launch/acme_bp/web/sbom.spdx.json");
        put("sbom/launch/acme_bp/sbom.cdx.json");
        put("sbom/launch/stranger/x/sbom.cdx.json");
        put("sbom/launch/missing_dir/x/sbom.cdx.json");
        fs::create_dir_all(l.join("acme_bp")).unwrap();
        fs::create_dir_all(l.join("stranger")).unwrap();
        let group = vec![GroupEntry {
            id: "acme/bp".into(),
            version: "1".into(),
            api: "0.10".into(),
            homepage: String::new(),
        }];
        restore_sboms(l, &group).unwrap();
        let mut got: Vec<String> = fs::read_dir(l.join("acme_bp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, ["deps.sbom.cdx.json", "web.sbom.spdx.json"]);
        assert!(!l.join("sbom").exists());
        assert_eq!(fs::read_dir(l.join("stranger")).unwrap().count(), 0);
    }
}
