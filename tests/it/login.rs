//! `multiarch login HOST`: the credential `push` would use, checked against the registry, for
//! build tools that need one (buildah in the build component). Real registries, moto for ECR.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::moto::{ecr_password, Moto};
use crate::support::proxy::{Fault, Proxy};
use crate::support::token::TokenService;
use crate::support::{exited, multiarch, multiarch_process, stderr_of, vars, Options, Registry};

/// Runs `multiarch login ARGS` with `env` in `dir`.
fn login(
    env: &std::collections::BTreeMap<String, String>,
    dir: &Path,
    args: &[&str],
) -> std::process::Output {
    multiarch(env, dir)
        .arg("login")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn writes_the_job_credential_into_an_auth_file_that_skopeo_can_use() {
    let reg = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "job-token-5a1e".into())),
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let auth = work.path().join("containers/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    std::fs::write(
        &auth,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"credHelpers":{"x.example":"y"}}"#,
    )
    .unwrap();
    let env = vars(&[
        ("CI_REGISTRY", &reg.host),
        ("CI_REGISTRY_USER", "gitlab-ci-token"),
        ("CI_REGISTRY_PASSWORD", "job-token-5a1e"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
        ("REGISTRY_AUTH_FILE", auth.to_str().unwrap()),
    ]);
    let out = login(&env, work.path(), &[&reg.host]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert!(!stderr_of(&out).contains("job-token-5a1e"));
    assert!(
        stderr_of(&out).contains("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
        "{}",
        stderr_of(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&auth).unwrap()).unwrap();
    assert_eq!(
        doc["auths"]["other.example"]["auth"], "eDp5",
        "other entries kept"
    );
    assert_eq!(doc["credHelpers"]["x.example"], "y");
    assert!(doc["auths"][reg.host.as_str()]["auth"].is_string());
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // skopeo, another client, gets in with it.
    let inspect = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "login", "--get-login", "--authfile"])
        .arg(&auth)
        .arg(&reg.host)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "gitlab-ci-token"
    );

    // --password-stdout: the password alone, for `… login --password-stdin`.
    let out = login(&env, work.path(), &["--password-stdout", &reg.host]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "job-token-5a1e\n");

    // A refused credential, and none at all: exit 5, the file untouched.
    let before = std::fs::read_to_string(&auth).unwrap();
    let mut wrong = env.clone();
    wrong.insert("CI_REGISTRY_PASSWORD".into(), "expired".into());
    let out = login(&wrong, work.path(), &[&reg.host]);
    exited(&out, 5);
    assert!(
        stderr_of(&out).contains("the registry refused the credentials"),
        "{}",
        stderr_of(&out)
    );
    let out = login(
        &vars(&[("REGISTRY_AUTH_FILE", auth.to_str().unwrap())]),
        work.path(),
        &["quay.example"],
    );
    exited(&out, 5);
    assert!(
        stderr_of(&out).contains("no credentials for quay.example"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read_to_string(&auth).unwrap(), before);
}

/// A login names no repository: a refusal, by the registry or by its token service, is said to
/// be of the credentials, with nothing about pulling a repository.
#[test]
fn a_refused_login_is_about_the_credentials_not_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenService::start(dir.path(), "gitlab-ci-token", "job-token-3c9d");
    let token_host = tokens
        .realm
        .trim_start_matches("http://")
        .trim_end_matches("/token")
        .to_string();
    let basic = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "job-token-3c9d".into())),
        ..Default::default()
    });
    let bearer = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "job-token-3c9d".into())),
        token: Some((tokens.realm.clone(), tokens.bundle.clone())),
        ..Default::default()
    });
    let hint = "  hint: check the credential from MULTIARCH_USERNAME/MULTIARCH_PASSWORD for {host}: a login asks for no repository, so the credential itself is not taken (wrong, expired or revoked)\n";
    for (reg, refused_by) in [
        (&basic, "the registry".to_string()),
        (&bearer, format!("its token service {token_host}")),
    ] {
        let env = vars(&[
            ("MULTIARCH_USERNAME", "gitlab-ci-token"),
            ("MULTIARCH_PASSWORD", "stale-pw-9f3e"),
            ("MULTIARCH_TIMEOUT", "5s"),
            (
                "MULTIARCH_INSECURE_REGISTRIES",
                &format!("{},{token_host}", reg.host),
            ),
        ]);
        let work = tempfile::tempdir().unwrap();
        let out = login(&env, work.path(), &["--password-stdout", &reg.host]);
        let err = exited(&out, 5);
        assert!(out.stdout.is_empty());
        assert!(
            err.contains(&format!(
                "error: logging in to {}: {refused_by} refused the credentials (HTTP 401 Unauthorized",
                reg.host
            )),
            "{err}"
        );
        assert!(err.contains(&hint.replace("{host}", &reg.host)), "{err}");
        assert!(!err.contains("this repository"), "{err}");
        assert!(!err.contains("stale-pw-9f3e"), "{err}");
    }
}

#[test]
fn an_ecr_token_from_a_gitlab_oidc_role() {
    let moto = Moto::start();
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.extend(reg.access_env());
    env.extend(vars(&[
        ("MULTIARCH_AUTH", "ecr"),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/gitlab-build",
        ),
        (
            "GITLAB_OIDC_TOKEN",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        ),
    ]));
    let out = login(&env, work.path(), &["--password-stdout", &reg.host]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ecr_password());
    assert!(
        stderr_of(&out).contains("assumed role with the GitLab OIDC token"),
        "{}",
        stderr_of(&out)
    );
}

/// What a login leaves in a file others wrote: eight logins at once into one file (parallel
/// build jobs sharing a home) keep every entry, and every other value keeps its bytes.
#[test]
fn concurrent_logins_keep_every_entry_and_every_other_byte() {
    let reg = Registry::start_with(Options {
        user: Some(("builder".into(), "s3cret-pw".into())),
        ..Default::default()
    });
    // Eight registry hosts: proxies in front of the one registry, each on its own port.
    let hosts: Vec<Proxy> = (0..8)
        .map(|_| Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Pass))
        .collect();
    let names: Vec<&str> = hosts.iter().map(|p| p.host.as_str()).collect();
    let work = tempfile::tempdir().unwrap();
    let auth = work.path().join("auth.json");
    let before = "{\n  \"x\": 12345678901234567890123,\n  \"y\": 1.0e3,\n  \"auths\": {\n    \"other.example\": {\"auth\": \"eDp5\"}\n  }\n}\n";
    std::fs::write(&auth, before).unwrap();
    let env = vars(&[
        ("MULTIARCH_USERNAME", "builder"),
        ("MULTIARCH_PASSWORD", "s3cret-pw"),
        ("MULTIARCH_INSECURE_REGISTRIES", &names.join(",")),
        ("REGISTRY_AUTH_FILE", auth.to_str().unwrap()),
    ]);
    let children: Vec<_> = names
        .iter()
        .map(|host| {
            multiarch_process(&env, work.path())
                .args(["login", host])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let text = std::fs::read_to_string(&auth).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let auths = doc["auths"].as_object().unwrap();
    assert_eq!(auths.len(), 9, "{text}");
    for host in &names {
        assert!(auths[*host]["auth"].is_string(), "{host}: {text}");
    }
    assert_eq!(auths["other.example"]["auth"], "eDp5");
    assert!(
        text.starts_with("{\n  \"x\": 12345678901234567890123,\n  \"y\": 1.0e3,\n  \"auths\": {\n"),
        "{text}"
    );
    assert!(
        text.ends_with("    \"other.example\": {\"auth\": \"eDp5\"}\n  }\n}\n"),
        "{text}"
    );
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // skopeo, another client, reads it.
    let login = std::process::Command::new("skopeo")
        .args(["login", "--get-login", "--authfile"])
        .arg(&auth)
        .arg(names[7])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "builder");
}

/// Runs `multiarch login HOST` in a private mount namespace where `inside` (in `job`) is
/// `outside` bind-mounted, as a container volume or a Kubernetes subPath mounts a file; `prefix`
/// comes before the binary (`setpriv …` to run it as another user).
fn login_through_a_bind_mount(
    env: &std::collections::BTreeMap<String, String>,
    job: &Path,
    outside: &Path,
    host: &str,
    prefix: &[&str],
) -> std::process::Output {
    support::require("unshare", "apt-get install util-linux");
    let plain = multiarch_process(env, job);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" auth.json && exec "$@""#)
        .arg(outside)
        .args(prefix)
        .arg(plain.get_program())
        .args(["login", host])
        .env_clear()
        .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(job);
    cmd.output().unwrap()
}

/// A bind-mounted auth file cannot be replaced by a rename: it is rewritten in place, made
/// owner-only before the secret goes in — and where it cannot be made so (a file of another
/// user that others may read), the secret is not written at all.
#[test]
fn a_bind_mounted_auth_file_is_made_owner_only_or_left_alone() {
    let reg = Registry::start_with(Options {
        user: Some(("builder".into(), "s3cret-pw".into())),
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("host-auth.json");
    std::fs::write(&outside, "{\"n\": 1.0e3}\n").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
    let job = work.path().join("job");
    std::fs::create_dir(&job).unwrap();
    std::fs::write(job.join("auth.json"), "").unwrap();
    let env = vars(&[
        ("MULTIARCH_USERNAME", "builder"),
        ("MULTIARCH_PASSWORD", "s3cret-pw"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
        ("MULTIARCH_AUTH_FILE", "auth.json"),
    ]);
    let out = login_through_a_bind_mount(&env, &job, &outside, &reg.host, &[]);
    exited(&out, 0);
    let meta = std::fs::metadata(&outside).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&outside).unwrap();
    assert!(text.starts_with("{\"auths\": {\""), "{text}");
    assert!(text.ends_with("\"n\": 1.0e3}\n"), "{text}");

    // Root's file, readable by all, and a job running as another user: fchmod is refused, so
    // the secret stays out (exit 1, saying why), and the file is as it was.
    support::require("setpriv", "apt-get install util-linux");
    std::fs::write(&outside, "{}\n").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let out = login_through_a_bind_mount(&env, &job, &outside, &reg.host, &nobody);
    let err = exited(&out, 1);
    assert!(
        err.contains("its mode 0666 lets others read it and it cannot be made 0600")
            && err.contains("so the secret was not written"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "{}\n");
}

#[test]
fn a_check_answered_by_another_host_is_not_a_login() {
    use crate::support::hostile::{redirect, Behaviour, Hostile};
    // The registry sends GET /v2/ to another host that answers 200 to anything: the credential
    // is (rightly) not sent there, so nothing has checked it.
    let other = Hostile::start(|_, _| Behaviour::json(200, "{}"));
    let target = format!("http://{}/v2/", other.host);
    let registry = Hostile::start(move |_, _| redirect(307, &target));
    let work = tempfile::tempdir().unwrap();
    let auth = work.path().join("auth.json");
    let env = vars(&[
        ("MULTIARCH_USERNAME", "job"),
        ("MULTIARCH_PASSWORD", "job-token-5f3c"),
        (
            "MULTIARCH_INSECURE_REGISTRIES",
            &format!("{},{}", registry.host, other.host),
        ),
    ]);
    let out = login(
        &env,
        work.path(),
        &[&registry.host, "--auth-file", auth.to_str().unwrap()],
    );
    let err = stderr_of(&out);
    exited(&out, 1);
    assert!(
        err.contains(&format!(
            "logging in to {0}: the credential could not be checked: {0} redirected GET /v2/ to {1}, which gets no credentials (it answered HTTP 200); nothing was written",
            registry.host, other.host
        )),
        "{err}"
    );
    assert!(!err.contains("job-token-5f3c"), "{err}");
    assert!(!auth.exists(), "nothing written");
    assert!(out.stdout.is_empty());
    assert!(other.seen().iter().all(|s| s.authorization.is_none()));
}

#[test]
fn an_auth_file_whose_lock_file_cannot_be_made_is_refused_naming_the_lock() {
    use crate::support::hostile::{Behaviour, Hostile};
    let registry = Hostile::start(|_, _| Behaviour::json(200, "{}"));
    let work = tempfile::tempdir().unwrap();
    let auth = work.path().join("config.json");
    std::fs::write(&auth, "{\"auths\": {}}").unwrap();
    // A lock file that cannot be created, even by root (a read-only directory, for anyone
    // else, is the same failure): it leads into a directory that does not exist.
    let lock = work.path().join("config.json.lock");
    std::os::unix::fs::symlink(work.path().join("gone/lock"), &lock).unwrap();
    let env = vars(&[
        ("MULTIARCH_USERNAME", "job"),
        ("MULTIARCH_PASSWORD", "job-token-5f3c"),
        ("MULTIARCH_INSECURE_REGISTRIES", &registry.host),
    ]);
    let out = login(
        &env,
        work.path(),
        &[&registry.host, "--auth-file", auth.to_str().unwrap()],
    );
    let err = stderr_of(&out);
    exited(&out, 2);
    let dir = std::fs::canonicalize(work.path()).unwrap();
    assert!(
        err.contains(&format!(
            "its lock file {}/config.json.lock, which keeps concurrent logins apart, cannot be created in {}",
            dir.display(),
            dir.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "hint: make {} writable for the job",
            dir.display()
        )),
        "{err}"
    );
    assert!(!err.contains("name a JSON auth file"), "{err}");
    assert_eq!(registry.requests(), 0, "refused before any request");
    assert_eq!(std::fs::read_to_string(&auth).unwrap(), "{\"auths\": {}}");
}
