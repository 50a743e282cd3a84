//! The program a container of an image starts, as its config says it: the first word of
//! `Entrypoint`, else of `Cmd`; the `PATH` of its `Env` (the runtime's default when it has none);
//! its `WorkingDir`. Windows paths (`C:\app\app.exe`) are turned into the layer's form. Pure.
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/config.md>.

use serde::Deserialize;

/// The `PATH` containerd, Docker and Podman give a Linux container whose image sets none.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The same for Windows containers.
const WINDOWS_PATH: &str = r"C:\Windows\system32;C:\Windows";
/// `PATH` directories a name is looked for in, at most: each costs a lookup whenever the check
/// asks again, and real images list a dozen. A name past them is "not found" (a warning).
pub(crate) const MAX_PATH_DIRS: usize = 256;

/// What a container of the image runs first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Program {
    /// `entrypoint` or `cmd`: where `name` comes from.
    pub(crate) from: &'static str,
    /// The first word, as written.
    pub(crate) name: String,
    /// Absolute directories of `PATH`, in order, in the layers' form (`usr/local/bin`); the
    /// first `MAX_PATH_DIRS` of them.
    pub(crate) path: Vec<String>,
    /// Absolute directories of `PATH` past `MAX_PATH_DIRS`, not looked in.
    pub(crate) path_dropped: usize,
    /// The working directory in the layers' form (`` for the root).
    pub(crate) workdir: String,
    /// A Windows image: paths are case-insensitive, under `Files/` in layers, `.exe` implied.
    pub(crate) windows: bool,
}

#[derive(Deserialize)]
struct Shape {
    config: Option<Run>,
}

#[derive(Deserialize)]
struct Run {
    #[serde(rename = "Entrypoint")]
    entrypoint: Option<Words>,
    #[serde(rename = "Cmd")]
    cmd: Option<Words>,
    #[serde(rename = "Env")]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir")]
    working_dir: Option<String>,
}

impl Program {
    /// `entrypoint "app"`: where the program comes from, for messages.
    pub(crate) fn describe(&self) -> String {
        format!("{} {:?}", self.from, self.name)
    }
}

/// `["a", "b"]`, or (some old builders) one string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Words {
    List(Vec<String>),
    One(String),
}

impl Words {
    fn first(self) -> Option<String> {
        let first = match self {
            Words::List(l) => l.into_iter().next(),
            Words::One(s) => Some(s),
        };
        first.filter(|w| !w.trim().is_empty())
    }
}

/// The program of an image config; `None` when it has neither entrypoint nor cmd (`[""]`
/// counts as none, as Docker reads it).
pub(crate) fn from_config(bytes: &[u8], windows: bool) -> Option<Program> {
    let shape: Shape = serde_json::from_slice(bytes).ok()?;
    let run = shape.config?;
    let (from, name) = match run.entrypoint.and_then(Words::first) {
        Some(n) => ("entrypoint", n),
        None => ("cmd", run.cmd.and_then(Words::first)?),
    };
    let path_var = run
        .env
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH=").map(str::to_string))
        .unwrap_or_else(|| if windows { WINDOWS_PATH } else { DEFAULT_PATH }.to_string());
    let separator = if windows { ';' } else { ':' };
    let workdir = run
        .working_dir
        .filter(|w| !w.trim().is_empty())
        .map(|w| layer_path(&w, windows))
        .unwrap_or_default();
    let mut path: Vec<String> = path_var
        .split(separator)
        // Relative entries (`.`, empty) are refused by Go's exec.LookPath, which runc uses.
        .filter(|d| is_absolute(d, windows))
        .map(|d| layer_path(d, windows))
        .collect();
    let path_dropped = path.len().saturating_sub(MAX_PATH_DIRS);
    path.truncate(MAX_PATH_DIRS);
    Some(Program {
        from,
        name,
        path,
        path_dropped,
        workdir,
        windows,
    })
}

/// True for `/usr/bin`, and on Windows `C:\x`, `\x`.
pub(crate) fn is_absolute(path: &str, windows: bool) -> bool {
    if windows {
        let p = path.replace('\\', "/");
        p.starts_with('/') || (p.len() >= 2 && p.as_bytes()[1] == b':')
    } else {
        path.starts_with('/')
    }
}

/// A path as the layers hold it: without the leading `/`; on Windows without the drive, with
/// `/` for `\` and lower-cased (the layer side is lower-cased too).
pub(crate) fn layer_path(path: &str, windows: bool) -> String {
    if !windows {
        return path.trim_start_matches('/').to_string();
    }
    let p = path.replace('\\', "/").to_lowercase();
    let p = match p.as_bytes() {
        [_, b':', ..] => &p[2..],
        _ => &p[..],
    };
    p.trim_start_matches('/').to_string()
}

/// True when a program name is a path (run as it is, relative to the working directory), not a
/// name to look up in `PATH`.
pub(crate) fn is_path(name: &str, windows: bool) -> bool {
    name.contains('/') || (windows && (name.contains('\\') || name.contains(':')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_the_entrypoint_else_the_cmd() {
        for (config, from, name) in [
            (
                r#"{"config":{"Entrypoint":["/app","-v"],"Cmd":["serve"]}}"#,
                "entrypoint",
                "/app",
            ),
            (
                r#"{"config":{"Entrypoint":null,"Cmd":["nginx","-g","daemon off;"]}}"#,
                "cmd",
                "nginx",
            ),
            (
                r#"{"config":{"Entrypoint":[""],"Cmd":["/bin/sh"]}}"#,
                "cmd",
                "/bin/sh",
            ),
            (
                r#"{"config":{"Entrypoint":["/bin/sh","-c","exec app"]}}"#,
                "entrypoint",
                "/bin/sh",
            ),
            (r#"{"config":{"Cmd":"run.sh"}}"#, "cmd", "run.sh"),
        ] {
            let p = from_config(config.as_bytes(), false).unwrap();
            assert_eq!((p.from, p.name.as_str()), (from, name), "{config}");
        }
        for none in [
            r#"{"config":{}}"#,
            r#"{"config":{"Entrypoint":[],"Cmd":[]}}"#,
            r#"{"architecture":"amd64"}"#,
            "not json",
        ] {
            assert_eq!(from_config(none.as_bytes(), false), None, "{none}");
        }
    }

    #[test]
    fn path_comes_from_env_else_the_runtime_default() {
        let p = from_config(
            br#"{"config":{"Cmd":["app"],"Env":["A=1","PATH=/opt/bin::relative:/usr/bin"],"WorkingDir":"/srv/app"}}"#,
            false,
        )
        .unwrap();
        assert_eq!(p.path, ["opt/bin", "usr/bin"]);
        assert_eq!(p.workdir, "srv/app");
        let p = from_config(br#"{"config":{"Cmd":["app"]}}"#, false).unwrap();
        assert_eq!(p.path.len(), 6);
        assert_eq!(p.path[0], "usr/local/sbin");
        assert_eq!(p.workdir, "");
        let long: Vec<String> = (0..MAX_PATH_DIRS + 3).map(|i| format!("/d{i}")).collect();
        let config = serde_json::json!({"config": {"Cmd": ["app"], "Env": [format!("PATH={}", long.join(":"))]}});
        let p = from_config(config.to_string().as_bytes(), false).unwrap();
        assert_eq!((p.path.len(), p.path_dropped), (MAX_PATH_DIRS, 3));
    }

    #[test]
    fn windows_paths_become_the_layers_form() {
        let p = from_config(
            br#"{"config":{"Entrypoint":["C:\\App\\app.exe"],"WorkingDir":"C:\\App"}}"#,
            true,
        )
        .unwrap();
        assert_eq!(p.workdir, "app");
        assert_eq!(layer_path(&p.name, true), "app/app.exe");
        assert!(is_path(&p.name, true));
        assert_eq!(p.path, ["windows/system32", "windows"]);
        assert!(!is_path("cmd", true));
    }
}
