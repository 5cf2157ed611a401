//! Image config (`application/vnd.oci.image.config.v1+json` and Docker's equivalent).

use std::collections::HashMap;

use oci_spec::image::{Config, History, ImageConfiguration};

use super::{canonical_json, Error};
use crate::digest::Digest;

/// An image config with convenient accessors over oci-spec's type.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageConfig {
    inner: ImageConfiguration,
}

impl ImageConfig {
    /// An empty linux/amd64 config.
    pub fn new(os: &str, arch: &str) -> Self {
        let mut inner = ImageConfiguration::default();
        inner.set_os(os.into());
        inner.set_architecture(arch.into());
        Self { inner }
    }

    pub fn from_json(bytes: &[u8], what: &str) -> Result<Self, Error> {
        let inner = serde_json::from_slice(bytes).map_err(|e| Error::json(what, e))?;
        Ok(Self { inner })
    }

    /// Canonical bytes and their digest.
    pub fn to_json(&self) -> Result<(Vec<u8>, Digest), Error> {
        let bytes = canonical_json(&self.inner).map_err(|e| Error::json("image config", e))?;
        let d = Digest::of(&bytes);
        Ok((bytes, d))
    }

    pub fn inner(&self) -> &ImageConfiguration {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut ImageConfiguration {
        &mut self.inner
    }

    pub fn os(&self) -> String {
        self.inner.os().to_string()
    }

    pub fn architecture(&self) -> String {
        self.inner.architecture().to_string()
    }

    pub fn variant(&self) -> Option<&str> {
        self.inner.variant().as_deref()
    }

    fn with_config(&mut self, f: impl FnOnce(&mut Config)) {
        let mut c = self.inner.config().clone().unwrap_or_default();
        f(&mut c);
        self.inner.set_config(Some(c));
    }

    pub fn labels(&self) -> HashMap<String, String> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap_or_default()
    }

    pub fn label(&self, key: &str) -> Option<String> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.labels().as_ref())
            .and_then(|l| l.get(key).cloned())
    }

    pub fn set_label(&mut self, key: &str, value: &str) {
        self.with_config(|c| {
            let mut l = c.labels().clone().unwrap_or_default();
            l.insert(key.to_string(), value.to_string());
            c.set_labels(Some(l));
        });
    }

    pub fn remove_label(&mut self, key: &str) {
        self.with_config(|c| {
            let mut l = c.labels().clone().unwrap_or_default();
            l.remove(key);
            c.set_labels(if l.is_empty() { None } else { Some(l) });
        });
    }

    /// `KEY=VALUE` strings, in order.
    pub fn env(&self) -> Vec<String> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.env().clone())
            .unwrap_or_default()
    }

    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env().iter().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    /// Set `key` in place (keeping its position) or append it.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.with_config(|c| {
            let mut env = c.env().clone().unwrap_or_default();
            let entry = format!("{key}={value}");
            match env
                .iter_mut()
                .find(|kv| kv.split_once('=').map(|(k, _)| k) == Some(key))
            {
                Some(slot) => *slot = entry,
                None => env.push(entry),
            }
            c.set_env(Some(env));
        });
    }

    pub fn entrypoint(&self) -> Option<Vec<String>> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.entrypoint().clone())
    }

    pub fn set_entrypoint(&mut self, ep: Option<Vec<String>>) {
        self.with_config(|c| {
            c.set_entrypoint(ep);
        });
    }

    pub fn cmd(&self) -> Option<Vec<String>> {
        self.inner.config().as_ref().and_then(|c| c.cmd().clone())
    }

    pub fn set_cmd(&mut self, cmd: Option<Vec<String>>) {
        self.with_config(|c| {
            c.set_cmd(cmd);
        });
    }

    pub fn user(&self) -> Option<String> {
        self.inner.config().as_ref().and_then(|c| c.user().clone())
    }

    pub fn set_user(&mut self, user: Option<&str>) {
        self.with_config(|c| {
            c.set_user(user.map(str::to_string));
        });
    }

    pub fn working_dir(&self) -> Option<String> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.working_dir().clone())
    }

    pub fn set_working_dir(&mut self, dir: Option<&str>) {
        self.with_config(|c| {
            c.set_working_dir(dir.map(str::to_string));
        });
    }

    pub fn created(&self) -> Option<&str> {
        self.inner.created().as_deref()
    }

    /// Set `created` (RFC 3339).
    pub fn set_created(&mut self, rfc3339: Option<&str>) {
        self.inner.set_created(rfc3339.map(str::to_string));
    }

    pub fn diff_ids(&self) -> Result<Vec<Digest>, Error> {
        self.inner
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse().map_err(Error::Digest))
            .collect()
    }

    /// Append a layer's diffID, with a history entry so `docker history` lines up with layers.
    pub fn push_layer(&mut self, diff_id: &Digest, created_by: Option<&str>) {
        self.inner
            .rootfs_mut()
            .diff_ids_mut()
            .push(diff_id.to_string());
        let mut h = History::default();
        h.set_created(self.inner.created().clone());
        h.set_created_by(created_by.map(str::to_string));
        self.inner
            .history_mut()
            .get_or_insert_with(Vec::new)
            .push(h);
    }

    /// Drop all layers (and history), e.g. before re-basing.
    pub fn clear_layers(&mut self) {
        self.inner.rootfs_mut().diff_ids_mut().clear();
        self.inner.set_history(None);
    }
}

/// Format seconds since the epoch as RFC 3339 UTC (`1980-01-01T00:00:01Z`).
/// Hand-written: a calendar conversion is all we need, not a date-time dependency.
pub fn rfc3339(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(315_532_801), "1980-01-01T00:00:01Z");
        assert_eq!(rfc3339(1_795_219_200), "2026-11-21T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn labels_env_and_digest_are_stable() {
        let mut c = ImageConfig::new("linux", "amd64");
        for i in 0..20 {
            c.set_label(&format!("l{i}"), "v");
        }
        c.set_env("PATH", "/bin");
        c.set_env("A", "1");
        c.set_env("PATH", "/usr/bin:/bin");
        assert_eq!(c.env(), vec!["PATH=/usr/bin:/bin", "A=1"]);
        assert_eq!(c.env_var("A").as_deref(), Some("1"));
        c.set_entrypoint(Some(vec!["/cnb/lifecycle/launcher".into()]));
        c.set_user(Some("1000:1000"));
        c.set_created(Some("1980-01-01T00:00:01Z"));
        c.push_layer(&Digest::of(b"x"), None);
        let (b1, d1) = c.to_json().unwrap();
        let back = ImageConfig::from_json(&b1, "cfg").unwrap();
        assert_eq!(back.to_json().unwrap().1, d1);
        assert_eq!(back.label("l7").as_deref(), Some("v"));
        assert_eq!(back.diff_ids().unwrap(), vec![Digest::of(b"x")]);
        c.remove_label("l7");
        assert!(c.label("l7").is_none());
    }
}
