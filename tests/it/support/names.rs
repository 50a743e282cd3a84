//! A registry under a real host name (an ECR one, `<account>.dkr.ecr.<region>.amazonaws.com`) for
//! the processes of one test: they run in a mount namespace of their own whose /etc/hosts maps the
//! name to the loopback address the registry listens on (`Options::listen`), so multiarch takes
//! the name for what it says (an ECR host, its account and region) while the test's registry
//! answers. Needs root (or user namespaces) and util-linux's `unshare`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{multiarch_process, require};

/// This machine's /etc/hosts plus `address name`, written in `dir`.
pub fn hosts_file(dir: &Path, address: &str, name: &str) -> PathBuf {
    let path = dir.join("hosts");
    let mut table = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    table.push_str(&format!("\n{address} {name}\n"));
    std::fs::write(&path, table).unwrap();
    path
}

/// `cmd` (its program, arguments, directory and the variables it sets over this process's own)
/// run in a mount namespace whose /etc/hosts is `hosts`.
pub fn within(cmd: &Command, hosts: &Path) -> Command {
    require("unshare", "apt-get install util-linux");
    let mut wrapped = Command::new("unshare");
    wrapped
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
        .arg(hosts)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// `multiarch args` as `multiarch_process` runs it (only `env`, `HOME` and `PATH`), with `hosts`
/// as its /etc/hosts.
pub fn multiarch_within(
    env: &BTreeMap<String, String>,
    cwd: &Path,
    hosts: &Path,
    args: &[&str],
) -> Command {
    let mut inner = multiarch_process(env, cwd);
    inner.args(args);
    let mut cmd = within(&inner, hosts);
    cmd.env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    cmd
}
