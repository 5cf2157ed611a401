//! Bash-shell processes (`cnb-lifecycle.md` §9.4, `lc:launch/bash.go`). Pure: the script and
//! the argv for `/bin/bash`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub const BASH: &str = "/bin/bash";

/// Sources each profile, `cd`s to the working dir, then runs the command: as a script when
/// there are no args (`bash -c "$@"`), otherwise as tokens, each one shell-expanded.
pub fn script(profiles: &[String], working_dir: &str, n_args: usize) -> String {
    let mut s = String::new();
    for p in profiles {
        s.push_str(&format!("source \"{p}\"\n"));
    }
    s.push_str(&format!("cd \"{working_dir}\"\n"));
    if n_args == 0 {
        s.push_str("exec bash -c \"$@\"");
    } else {
        let tokens: Vec<String> = (0..=n_args)
            .map(|i| format!("\"$(eval echo \\\"${i}\\\")\""))
            .collect();
        s.push_str(&format!("exec bash -c '{}' \"${{@:1}}\"", tokens.join(" ")));
    }
    s
}

/// `bash -c SCRIPT <caller> <command words joined by " "> args…`: the caller (the launcher's
/// argv[0]) is `$0` for the profiles.
pub fn argv(
    script: String,
    caller: &OsStr,
    command: &[OsString],
    args: &[OsString],
) -> Vec<OsString> {
    let joined = command
        .iter()
        .map(|c| c.as_bytes())
        .collect::<Vec<_>>()
        .join(&b' ');
    let mut v = vec![
        OsString::from("bash"),
        OsString::from("-c"),
        OsString::from(script),
        caller.to_os_string(),
        OsString::from_vec(joined),
    ];
    v.extend(args.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_without_args_runs_the_command_as_a_script() {
        let got = script(
            &["/layers/bp/l/profile.d/a.sh".into(), ".profile".into()],
            "/workspace",
            0,
        );
        assert_eq!(
            got,
            "source \"/layers/bp/l/profile.d/a.sh\"\nsource \".profile\"\ncd \"/workspace\"\nexec bash -c \"$@\""
        );
    }

    #[test]
    fn script_with_args_expands_each_token() {
        assert_eq!(
            script(&[], "sub", 2),
            r#"cd "sub"
exec bash -c '"$(eval echo \"$0\")" "$(eval echo \"$1\")" "$(eval echo \"$2\")"' "${@:1}""#
        );
    }

    #[test]
    fn argv_joins_command_words() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let got = argv(
            "S".into(),
            OsStr::new("/cnb/process/web"),
            &os(&["bundle", "exec"]),
            &os(&["a b"]),
        );
        assert_eq!(
            got,
            os(&["bash", "-c", "S", "/cnb/process/web", "bundle exec", "a b"])
        );
    }
}
