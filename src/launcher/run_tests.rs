//! The launch sequence against real layer dirs and exec.d programs, with the final exec and
//! the chdirs recorded instead of done (the integration tests run it for real).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::execd::{self, ExecDError};
use super::metadata::LaunchMetadata;
use super::run::{launch, Invocation};
use super::sys::Sys;
use crate::lifecycle::api::ApiVersion;
use crate::lifecycle::env::Env;

#[derive(Default)]
struct Recorded {
    chdirs: Vec<PathBuf>,
    exec: Option<(PathBuf, Vec<OsString>, Env)>,
}

impl Sys for Recorded {
    fn chdir(&mut self, dir: &Path) -> std::io::Result<()> {
        self.chdirs.push(dir.to_path_buf());
        Ok(())
    }

    fn run_execd(&mut self, program: &Path, env: &Env, cwd: &Path) -> Result<Vec<u8>, ExecDError> {
        execd::run(program, env, cwd)
    }

    fn exec(&mut self, program: &Path, argv: &[OsString], env: &Env) -> std::io::Result<()> {
        self.exec = Some((program.to_path_buf(), argv.to_vec(), env.clone()));
        Ok(())
    }
}

fn write(path: &Path, body: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    layers: PathBuf,
    app: PathBuf,
    md: LaunchMetadata,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let layers = tmp.path().join("layers");
    let app = tmp.path().join("workspace");
    fs::create_dir_all(&app).unwrap();
    let l = layers.join("acme_bp/l");
    write(&l.join("bin/tool"), "#!/bin/sh\n", 0o755);
    write(&l.join("env/BASE"), "base", 0o644);
    write(&l.join("env.launch/web/ONLY_WEB"), "web", 0o644);
    write(
        &l.join("exec.d/10-env"),
        "#!/bin/sh\necho \"FROM_EXECD = \\\"$BASE-execd\\\"\" >&3\n",
        0o755,
    );
    write(&l.join("profile.d/p.sh"), "", 0o644);
    write(&app.join(".profile"), "", 0o644);
    let config = toml::from_str(
        "[[buildpacks]]\nid = \"acme/bp\"\napi = \"0.8\"\n\
         [[processes]]\ntype = \"web\"\ncommand = [\"echo $ONLY_WEB\"]\nbuildpack-id = \"acme/bp\"\n\
         [[processes]]\ntype = \"worker\"\ncommand = [\"tool\", \"-v\"]\nargs = [\"dflt\"]\ndirect = true\nworking-dir = \"sub\"\nbuildpack-id = \"acme/bp\"\n",
    )
    .unwrap();
    let md = LaunchMetadata::from_config(Path::new("metadata.toml"), config).unwrap();
    Fixture {
        _tmp: tmp,
        layers,
        app,
        md,
    }
}

fn run(f: &Fixture, argv0: &str, args: &[&str]) -> Recorded {
    let inv = Invocation {
        platform_api: ApiVersion::new(0, 12),
        layers_dir: f.layers.clone(),
        app_dir: f.app.clone(),
        argv0: argv0.into(),
        args: args.iter().map(OsString::from).collect(),
        environ: vec![
            ("PATH".into(), "/cnb/process:/usr/bin:/bin".into()),
            ("CNB_PLATFORM_API".into(), "0.12".into()),
        ],
    };
    let mut sys = Recorded::default();
    launch(&inv, &f.md, &mut sys).unwrap();
    sys
}

#[test]
fn shell_process_gets_profiles_env_and_execd() {
    let f = fixture();
    let r = run(&f, "/cnb/process/web", &[]);
    assert_eq!(r.chdirs, std::slice::from_ref(&f.app));
    let (program, argv, env) = r.exec.unwrap();
    assert_eq!(program, Path::new("/bin/bash"));
    let script = format!(
        "source \"{}\"\nsource \".profile\"\ncd \"{}\"\nexec bash -c \"$@\"",
        f.layers.join("acme_bp/l/profile.d/p.sh").display(),
        f.app.display()
    );
    let want: Vec<OsString> = ["bash", "-c", &script, "/cnb/process/web", "echo $ONLY_WEB"]
        .map(OsString::from)
        .to_vec();
    assert_eq!(argv, want);
    assert_eq!(env.get("ONLY_WEB"), "web");
    assert_eq!(env.get("FROM_EXECD"), "base-execd");
    assert_eq!(env.get("CNB_PLATFORM_API"), "");
    let bin = f.layers.join("acme_bp/l/bin");
    assert_eq!(
        env.get("PATH"),
        format!("{}:/usr/bin:/bin", bin.display()).as_str()
    );
}

#[test]
fn direct_process_resolves_on_layer_path_and_changes_dir() {
    let f = fixture();
    let r = run(&f, "worker", &["mine"]);
    assert_eq!(r.chdirs, [f.app.clone(), PathBuf::from("sub")]);
    let (program, argv, env) = r.exec.unwrap();
    assert_eq!(program, f.layers.join("acme_bp/l/bin/tool"));
    assert_eq!(argv, ["tool", "-v", "mine"].map(OsString::from));
    assert_eq!(env.get("ONLY_WEB"), "", "env.launch/web is for web only");
    assert_eq!(env.get("BASE"), "base");
}
