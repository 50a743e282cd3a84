//! Real services for integration tests, each on a free loopback port: Debian's `docker-registry`
//! (CNCF distribution) in plain HTTP, TLS with a generated CA, or htpasswd basic auth; fixture
//! images written as OCI layouts and pushed with `skopeo copy`; and the built binary, run with a
//! clean environment as a GitLab job would run it. A missing tool fails with its install step.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

pub mod fixtures;
pub mod glci;
pub mod hostile;
pub mod http;
pub mod moto;
pub mod names;
pub mod proxy;
pub mod stub;
pub mod template;
pub mod token;

/// Fails the test with the install step when a tool is missing (never a silent skip).
pub fn require(tool: &str, install: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{tool} is not on PATH: run ci/test.sh, which installs it ({install})")
    })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// How a test registry is set up.
#[derive(Default, Clone)]
pub struct Options {
    /// htpasswd basic auth with this user and password.
    pub user: Option<(String, String)>,
    /// Serve TLS with a certificate from a CA generated for this registry.
    pub tls: bool,
    /// Bearer-token auth through this token service (realm, signing certificate).
    pub token: Option<(String, PathBuf)>,
    /// Listen here (`127.77.0.1:443`) instead of a free port of 127.0.0.1, and put `name` in the
    /// TLS certificate: a registry that answers under a real host name (an ECR one) when the
    /// test maps that name to the address.
    pub listen: Option<(String, String)>,
}

/// A running `docker-registry`, stopped (and its storage removed) on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// PEM of the CA that signed the registry's certificate (TLS only).
    pub ca_file: Option<PathBuf>,
    pub user: Option<(String, String)>,
    dir: TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Registry {
        let binary = require("docker-registry", "apt-get install docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let mut last_error = String::new();
        for _ in 0..5 {
            let host = match &options.listen {
                Some((addr, _)) => addr.clone(),
                None => format!("127.0.0.1:{}", free_port()),
            };
            let (config, ca_file) = write_config(dir.path(), &host, &options);
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            if wait_listening(&host, &mut child) {
                return Registry {
                    child,
                    host,
                    ca_file,
                    user: options.user.clone(),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_error =
                std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start: {last_error}");
    }

    /// `127.0.0.1:PORT/<path>`
    pub fn repo(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    /// skopeo flags to reach this registry (TLS trust or plain HTTP, credentials).
    pub fn skopeo_flags(&self, direction: &str) -> Vec<String> {
        let mut flags = Vec::new();
        match &self.ca_file {
            Some(ca) => flags.push(format!(
                "--{direction}cert-dir={}",
                ca.parent().unwrap().join("skopeo-certs").display()
            )),
            None => flags.push(format!("--{direction}tls-verify=false")),
        }
        if let Some((u, p)) = &self.user {
            flags.push(format!("--{direction}creds={u}:{p}"));
        }
        flags
    }

    /// Runs skopeo against this registry; panics with its stderr on failure.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        let out = self.skopeo_unchecked(args);
        assert!(
            out.status.success(),
            "skopeo {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn skopeo_unchecked(&self, args: &[&str]) -> Output {
        require("skopeo", "apt-get install skopeo");
        let (verb, rest) = args.split_first().unwrap();
        let mut cmd = Command::new("skopeo");
        cmd.arg("--insecure-policy").arg(verb);
        let direction = if *verb == "copy" { "dest-" } else { "" };
        cmd.args(self.skopeo_flags(direction));
        if *verb == "copy" {
            // Reading from this registry too: source flags.
            cmd.args(self.skopeo_flags("src-"));
        }
        cmd.args(rest)
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// The exact bytes skopeo sees at `reference` (a path in this registry), or None if absent.
    pub fn raw(&self, path: &str) -> Option<Vec<u8>> {
        let out =
            self.skopeo_unchecked(&["inspect", "--raw", &format!("docker://{}", self.repo(path))]);
        out.status.success().then_some(out.stdout)
    }

    /// skopeo copies every architecture of `path` out of this registry: the whole graph is there.
    pub fn complete(&self, path: &str) {
        let out = tempfile::tempdir().unwrap();
        self.skopeo(&[
            "copy",
            "--all",
            &format!("docker://{}", self.repo(path)),
            &format!("dir:{}", out.path().display()),
        ]);
    }

    /// The `os/architecture` of each entry of the index under `path`, in order.
    pub fn platforms(&self, path: &str) -> Vec<String> {
        let raw = self.raw(path).unwrap_or_else(|| panic!("{path} exists"));
        let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap_or(""),
                    m["platform"]["architecture"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Environment for `multiarch` to reach this registry (plain HTTP or the generated CA).
    pub fn access_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        match &self.ca_file {
            Some(ca) => env.insert("MULTIARCH_CA_FILE".into(), ca.display().to_string()),
            None => env.insert("MULTIARCH_INSECURE_REGISTRIES".into(), self.host.clone()),
        };
        env
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(host: &str, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(host).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn write_config(dir: &Path, host: &str, options: &Options) -> (PathBuf, Option<PathBuf>) {
    let storage = dir.join("storage");
    let mut yaml = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: \"{host}\"\n",
        storage.display()
    );
    let mut ca_file = None;
    if options.tls {
        let name = options.listen.as_ref().map(|(addr, name)| {
            let ip = addr.rsplit_once(':').map_or(addr.as_str(), |(ip, _)| ip);
            (name.clone(), ip.to_string())
        });
        let (ca, cert, key) = tls_files(dir, name);
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ));
        ca_file = Some(ca);
    }
    if let Some((realm, bundle)) = &options.token {
        yaml.push_str(&format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            token::SERVICE,
            token::ISSUER,
            bundle.display()
        ));
    } else if let Some((user, password)) = &options.user {
        let hash = bcrypt::hash_with_result(password, 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml).unwrap();
    (path, ca_file)
}

/// A CA and a certificate for 127.0.0.1/localhost signed by it. skopeo trusts a directory of
/// `*.crt` files, so the CA is also written there.
fn tls_files(dir: &Path, also: Option<(String, String)>) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "multiarch test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    if let Some((name, ip)) = also {
        leaf.subject_alt_names
            .push(SanType::DnsName(name.try_into().unwrap()));
        leaf.subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    let leaf_key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &ca).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    let skopeo_dir = dir.join("skopeo-certs");
    std::fs::create_dir_all(&skopeo_dir).unwrap();
    std::fs::write(skopeo_dir.join("ca.crt"), ca.pem()).unwrap();
    (ca_path, cert_path, key_path)
}

/// The built `multiarch` as a plain process, with a clean environment plus `env` (as a CI job sees
/// only its variables), `HOME` and the working directory set to `cwd`.
pub fn multiarch_process(env: &BTreeMap<String, String>, cwd: &Path) -> Command {
    // Set by cargo for integration tests; the bench example, which shares this module, never
    // calls this.
    let Some(binary) = option_env!("CARGO_BIN_EXE_multiarch") else {
        panic!("only integration tests get the built binary from cargo")
    };
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .current_dir(cwd);
    cmd.envs(env);
    cmd
}

/// The same, for assert_cmd's assertions.
pub fn multiarch(env: &BTreeMap<String, String>, cwd: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(multiarch_process(env, cwd))
}

/// Runs `multiarch args` with `env` in a fresh directory; exit code, stderr and how long it took.
pub fn run(env: &BTreeMap<String, String>, args: &[&str]) -> (Option<i32>, String, Duration) {
    let work = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = multiarch(env, work.path()).args(args).output().unwrap();
    (out.status.code(), stderr_of(&out), start.elapsed())
}

/// Variables of a GitLab job on the default branch whose project registry image is `image`.
pub fn gitlab_env(image: &str) -> BTreeMap<String, String> {
    [
        ("GITLAB_CI", "true"),
        ("CI_REGISTRY_IMAGE", image),
        ("CI_DEFAULT_BRANCH", "main"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_REF_SLUG", "main"),
        ("CI_COMMIT_SHA", "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"),
        ("CI_PROJECT_URL", "https://gitlab.example.com/group/app"),
        ("CI_COMMIT_TIMESTAMP", "2026-11-27T03:38:34+00:00"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A GitLab manifest job publishing `group/app` in `registry` (its access variables, a 5 s wait),
/// then `extra`, whose pairs win.
pub fn job(registry: &Registry, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = gitlab_env(&registry.repo("group/app"));
    env.extend(registry.access_env());
    env.insert("MULTIARCH_TIMEOUT".into(), "5s".into());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// An environment from `(name, value)` pairs.
pub fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A finished command's stderr, as text (for assertion messages).
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Text without ANSI colour sequences (logs are coloured under `GITLAB_CI=true`), so field
/// assertions read `key=value`. GitLab's section markers (`ESC[0K`) go too.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.next() == Some('[') {
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Asserts that a finished command exited with `code`, showing its stderr if not; returns that
/// stderr for the assertions that follow.
#[track_caller]
pub fn exited(out: &Output, code: i32) -> String {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    stderr
}
