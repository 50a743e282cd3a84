//! Failing fast, failing exactly, never lying: misconfigurations end at once with exit 2 and a
//! hint; hung or failing registries are bounded by the wait; a refused tag leaves an exact report;
//! what a malicious registry or token service sends cannot abort the run, exhaust memory, flood
//! the registry with requests or forge a dotenv line. Real registry, the fault proxy, the token
//! service and a hostile server; time bounds here are generous sanity limits (speed belongs to
//! ci/bench.sh).

use crate::support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::fixtures::{
    index_of, push as push_fixture, push_built, push_two_arches, put_manifest, Kind,
};
use crate::support::hostile::{Behaviour, Hostile};
use crate::support::proxy::{Fault, Proxy};
use crate::support::token::TokenService;
use crate::support::{
    exited, free_port, gitlab_env, multiarch, multiarch_process, run, stderr_of, vars, Options,
    Registry,
};

#[test]
fn misconfiguration_exits_2_at_once_with_a_hint() {
    let plain = Registry::start();
    let tls = Registry::start_with(Options {
        tls: true,
        ..Default::default()
    });
    let cases: Vec<(BTreeMap<String, String>, &str, &str)> = vec![
        // A typo'd host, with every default (15 minutes of waiting, 5 retries).
        (
            vars(&[
                ("MULTIARCH_IMAGE", "registry.invalid/app"),
                ("MULTIARCH_TAGS", "1"),
            ]),
            "cannot reach registry.invalid: the name does not resolve",
            "check the registry host",
        ),
        // TLS spoken to a plain-HTTP registry (a forgotten MULTIARCH_INSECURE_REGISTRIES).
        (
            vars(&[
                ("MULTIARCH_IMAGE", &plain.repo("app")),
                ("MULTIARCH_TAGS", "1"),
            ]),
            "answered the TLS handshake in plain HTTP",
            "list it in MULTIARCH_INSECURE_REGISTRIES",
        ),
        // Plain HTTP spoken to a TLS registry.
        (
            vars(&[
                ("MULTIARCH_IMAGE", &tls.repo("app")),
                ("MULTIARCH_TAGS", "1"),
                ("MULTIARCH_INSECURE_REGISTRIES", &tls.host),
            ]),
            "answered plain HTTP with 400 Bad Request",
            "remove it from MULTIARCH_INSECURE_REGISTRIES",
        ),
        // An untrusted certificate.
        (
            vars(&[
                ("MULTIARCH_IMAGE", &tls.repo("app")),
                ("MULTIARCH_TAGS", "1"),
            ]),
            "is not trusted",
            "MULTIARCH_CA_FILE",
        ),
        // An entry that can never match: named, with the forms that do.
        (
            vars(&[
                ("MULTIARCH_IMAGE", &plain.repo("app")),
                ("MULTIARCH_TAGS", "1"),
                ("MULTIARCH_INSECURE_REGISTRIES", &format!("127.0.0.1:*,{}", plain.host)),
            ]),
            "MULTIARCH_INSECURE_REGISTRIES = \"127.0.0.1:*\" is invalid: wildcards are not supported",
            "write host or host:port",
        ),
        (
            vars(&[
                ("MULTIARCH_IMAGE", "localhost:99999/app"),
                ("MULTIARCH_TAGS", "1"),
            ]),
            "port",
            "localhost:5000/app",
        ),
        (
            vars(&[
                ("MULTIARCH_IMAGE", "r.example/app"),
                ("MULTIARCH_TAGS", "1"),
                ("MULTIARCH_TIMEOUT", "18446744073709551615"),
            ]),
            "longer than 24 hours",
            "15m",
        ),
        (
            vars(&[
                ("MULTIARCH_IMAGE", "r.example/app"),
                ("MULTIARCH_TAGS", "1"),
                ("MULTIARCH_LOG", "verbose"),
            ]),
            "MULTIARCH_LOG = \"verbose\" is invalid",
            "debug",
        ),
    ];
    for (env, what, hint) in cases {
        let (code, err, took) = run(&env, &["push"]);
        assert_eq!(code, Some(2), "{env:?}: {err}");
        assert!(err.contains(what), "{env:?}: {err}");
        assert!(err.contains(hint), "{env:?}: {err}");
        assert!(took < Duration::from_secs(10), "{env:?} took {took:?}");
        eprintln!(
            "exit 2 in {:.2} s: {}",
            took.as_secs_f64(),
            err.lines().next().unwrap_or("")
        );
    }
}

#[test]
fn refused_connections_are_transient_and_end_with_the_wait() {
    let host = format!("127.0.0.1:{}", free_port());
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{host}/app")),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_INSECURE_REGISTRIES", &host),
        ("MULTIARCH_TIMEOUT", "4s"),
    ]);
    let (code, err, took) = run(&env, &["push"]);
    assert_eq!(code, Some(75), "{err}");
    assert!(
        err.contains(&format!("connection refused at {host}")),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    eprintln!("exit 75 in {:.1} s", took.as_secs_f64());
}

#[test]
fn endless_response_headers_are_the_registrys_fault_and_not_retried() {
    let registry = Hostile::start(|_, _| Behaviour::EndlessHeaders);
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", registry.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
        ("MULTIARCH_INSECURE_REGISTRIES", &registry.host),
        ("MULTIARCH_RETRIES", "3"),
        ("MULTIARCH_TIMEOUT", "0"),
    ]);
    let (code, err, _) = run(&env, &["push"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{} answered with response headers over 408 KiB or more than 100 of them, which no registry sends",
            registry.host
        )),
        "{err}"
    );
    assert!(!err.contains("usually temporary"), "{err}");
    assert!(!err.contains("retrying"), "not retried: {err}");
}

#[test]
/// The progress line that comes while requests hang is checked on a paused clock
/// (`wait::tests`); here the real binary against a silent server.
fn a_registry_that_never_answers_is_bounded_by_the_wait() {
    let silent = Hostile::start(|_, _| Behaviour::Silent);
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", silent.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_INSECURE_REGISTRIES", &silent.host),
        ("MULTIARCH_TIMEOUT", "2s"),
        ("MULTIARCH_REQUEST_TIMEOUT", "4s"),
    ]);
    let (code, err, took) = run(&env, &["push"]);
    assert_eq!(code, Some(75), "{err}");
    assert!(err.contains("timed out"), "{err}");
    // The wait's deadline plus one request limit, not retries on top.
    assert!(took < Duration::from_secs(2 + 4 + 5), "{took:?}");
    eprintln!("exit 75 in {:.1} s", took.as_secs_f64());
}

#[test]
fn a_protected_tag_leaves_the_other_tags_moved_and_reported() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        if req.method == "PUT" && req.path == "/v2/app/manifests/1.4" {
            Fault::Json {
                code: 403,
                body: r#"{"errors":[{"code":"DENIED","message":"protected tag"}]}"#.into(),
            }
        } else {
            Fault::Pass
        }
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest,1.4,1"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_DOTENV", "multiarch.env"),
    ]);
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 5);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let digest = support::sha256(&reg.raw("app:latest").unwrap());
    let repo = format!("{}/app", proxy.host);
    assert_eq!(
        stdout,
        format!("{repo}:latest@{digest}\n{repo}:1@{digest}\n")
    );
    assert!(reg.raw("app:1").is_some());
    assert!(reg.raw("app:1.4").is_none());
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert!(
        dotenv.contains(&format!("MULTIARCH_TAGGED={repo}:latest,{repo}:1\n")),
        "{dotenv}"
    );
    assert!(
        dotenv.contains(&format!("MULTIARCH_REF={repo}@{digest}\n")),
        "{dotenv}"
    );
    assert!(
        err.contains(&format!(
            "1 of 3 target tag(s) did not move; the index {digest} is in the registry and these hold it: {repo}:latest, {repo}:1"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("  - pushing to {repo}:1.4: the registry refused access (HTTP 403 Forbidden, DENIED: protected tag")), "{err}");
    eprintln!(
        "{}",
        err.lines()
            .filter(|l| !l.contains(" INFO "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_refused_push_scope_fails_at_once_even_while_a_source_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenService::start(dir.path(), "gitlab-ci-token", "pull-only");
    let reg = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "pull-only".into())),
        token: Some((tokens.realm.clone(), tokens.bundle.clone())),
        ..Default::default()
    });
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    tokens
        .grants_push
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let token_host = tokens
        .realm
        .trim_start_matches("http://")
        .trim_end_matches("/token");
    let env = vars(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "latest"),
        (
            "MULTIARCH_INSECURE_REGISTRIES",
            &format!("{},{token_host}", reg.host),
        ),
        ("MULTIARCH_USERNAME", "gitlab-ci-token"),
        ("MULTIARCH_PASSWORD", "pull-only"),
        ("MULTIARCH_TIMEOUT", "5m"),
    ]);
    let (code, err, took) = run(&env, &["push"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        err.contains("refused repository:app:pull,push (it granted no push on app"),
        "{err}"
    );
    assert!(!err.contains("pull-only"), "no secret in messages: {err}");
}

#[test]
fn a_newline_in_a_child_digest_never_reaches_the_dotenv() {
    let reg = Registry::start();
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let evil = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}\nMULTIARCH_REF=evil","size":2,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        "a".repeat(64)
    );
    let proxy = Proxy::start(&reg.host, Duration::ZERO, move |req, _| {
        if req.path.ends_with("/manifests/latest-arm64") {
            Fault::Json {
                code: 200,
                body: evil.clone(),
            }
        } else {
            Fault::Pass
        }
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_DOTENV", "multiarch.env"),
    ]);
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 4);
    assert!(err.contains("a sha256 digest has 64 hex digits"), "{err}");
    assert!(!err.contains("MULTIARCH_REF=evil"), "{err}");
    assert!(!work.path().join("multiarch.env").exists());
    assert!(reg.raw("app:latest").is_none());
}

#[test]
fn a_hostile_token_service_is_bounded_and_named() {
    let realm_host = |h: &Hostile| format!("http://{}/token", h.host);
    for (token, code, what) in [
        (
            Behaviour::Endless,
            1,
            "answered with more than 262144 bytes, far more than any token",
        ),
        (Behaviour::Drip, 75, "timed out at the token service"),
        (
            Behaviour::json(200, "{\"token\":\"a\\u0001b\"}"),
            1,
            "sent a token with characters no HTTP header may carry",
        ),
        (Behaviour::json(503, "{}"), 75, "HTTP 503"),
        (
            Behaviour::json(401, "{\"details\":\"job token expired\"}"),
            5,
            "(HTTP 401 Unauthorized: job token expired; credentials from anonymous)",
        ),
    ] {
        let service = Hostile::start(move |_, _| token.clone());
        let realm = realm_host(&service);
        let registry = Hostile::start(move |_, _| Behaviour::challenge(&realm));
        let env = vars(&[
            ("MULTIARCH_IMAGE", &format!("{}/app", registry.host)),
            ("MULTIARCH_TAGS", "1"),
            (
                "MULTIARCH_INSECURE_REGISTRIES",
                &format!("{},{}", registry.host, service.host),
            ),
            ("MULTIARCH_REQUEST_TIMEOUT", "2s"),
            ("MULTIARCH_RETRIES", "1"),
            ("MULTIARCH_TIMEOUT", "0"),
        ]);
        let (got, err, took) = run(&env, &["push"]);
        assert_eq!(got, Some(code), "{what}: {err}");
        assert!(err.contains(what), "{what}: {err}");
        assert!(took < Duration::from_secs(20), "{what}: {took:?}");
        if what.contains("262144") {
            // Said once, of the token service, not as content of the image (for the target tag,
            // a source or the push-access check, whichever asked first).
            assert!(
                err.contains(&format!("getting a token for {}/app", registry.host))
                    && err.contains(&format!(
                        ": the token service {} of {} answered with more",
                        service.host, registry.host
                    )),
                "{err}"
            );
            assert!(!err.contains("usable"), "{err}");
        }
        if code != 1 || what.contains("262144") {
            assert!(
                err.contains(&service.host),
                "the token service is named: {err}"
            );
        }
    }
    // A realm whose host does not exist is named as what it is, not as the registry.
    let registry = Hostile::start(|_, _| Behaviour::challenge("https://auth.invalid/token"));
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", registry.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_INSECURE_REGISTRIES", &registry.host),
    ]);
    let (code, err, _) = run(&env, &["push"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot reach auth.invalid"), "{err}");
    assert!(err.contains("the registry's challenge names"), "{err}");
}

/// Servers that echo the credentials they were sent (in a token service's `details`, in a
/// registry's error message, base64 or plain): the password and the Authorization value never
/// reach stderr or stdout, whatever the output format.
#[test]
fn credentials_a_server_echoes_back_are_blanked_out() {
    const PASSWORD: &str = "hunter2-s3cret";
    const BASIC: &str = "dTpodW50ZXIyLXMzY3JldA=="; // base64("u:hunter2-s3cret")
    let echo = format!("bad credentials u:{PASSWORD} (Authorization: Basic {BASIC})");
    let details = format!("{{\"details\":\"{echo}\"}}");
    let service = Hostile::start(move |_, _| Behaviour::json(401, &details));
    let realm = format!("http://{}/token", service.host);
    let token_registry = Hostile::start(move |_, _| Behaviour::challenge(&realm));
    let envelope = format!("{{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"{echo}\"}}]}}");
    let denying = Hostile::start(move |_, _| Behaviour::json(403, &envelope));
    for (registry, args) in [
        (&token_registry, &["push"][..]),
        // `plan` reads the sources with GET, whose refusal carries the envelope.
        (&denying, &["plan", "--output", "json"][..]),
    ] {
        let env = vars(&[
            ("MULTIARCH_IMAGE", &format!("{}/app", registry.host)),
            ("MULTIARCH_TAGS", "1"),
            (
                "MULTIARCH_INSECURE_REGISTRIES",
                &format!("{},{}", registry.host, service.host),
            ),
            ("MULTIARCH_USERNAME", "u"),
            ("MULTIARCH_PASSWORD", PASSWORD),
            ("MULTIARCH_TIMEOUT", "0"),
            ("MULTIARCH_RETRIES", "0"),
        ]);
        let work = tempfile::tempdir().unwrap();
        let out = multiarch(&env, work.path())
            .args(args)
            .args(["--log", "trace"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains("bad credentials u:<redacted>"), "{err}");
        for secret in [PASSWORD, BASIC] {
            assert!(!err.contains(secret), "{secret} on stderr: {err}");
            assert!(!stdout.contains(secret), "{secret} on stdout: {stdout}");
        }
    }
}

/// A revision label with a newline, ESC and a GitLab section marker (registry-controlled text)
/// is shown escaped: it cannot forge log lines, close a section or colour the job log.
#[test]
fn registry_text_cannot_forge_log_lines() {
    let reg = Registry::start();
    let forged = "deadbeef\n\x1b[0Ksection_end:1:multiarch_sources\r\x1b[0K INFO pushed forged";
    for arch in ["amd64", "arm64"] {
        push_built(
            &reg,
            &format!("app:1-{arch}"),
            &format!("linux/{arch}"),
            Kind::Oci,
            Some(forged),
        );
    }
    let base = [
        ("MULTIARCH_IMAGE", reg.repo("app")),
        ("MULTIARCH_TAGS", "1".to_string()),
        ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
        ("MULTIARCH_TIMEOUT", "0".to_string()),
    ];
    for (revision, command, code) in [("0123abcd", "push", 3), ("none", "plan", 0)] {
        let mut env: BTreeMap<String, String> = base
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        env.insert("MULTIARCH_REVISION".into(), revision.into());
        let work = tempfile::tempdir().unwrap();
        let out = multiarch(&env, work.path()).arg(command).output().unwrap();
        let err = stderr_of(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{err}");
        for text in [&err[..], &stdout[..]] {
            assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
            assert!(
                !text.lines().any(|l| l.starts_with(" INFO pushed forged")),
                "{text}"
            );
        }
        let shown = if code == 3 { &err[..] } else { &stdout[..] };
        assert!(shown.contains("deadbeef\\n\\u{1b}[0K"), "{shown}");
    }
}

#[test]
fn pins_of_every_algorithm_are_verified_and_big_push_answers_do_not_fail_a_push() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let body = String::from_utf8(reg.raw(&format!("app@{amd}")).unwrap()).unwrap();
    let pin = format!("sha512:{}", "ab".repeat(64));
    let pinned = format!("/v2/app/manifests/{pin}");
    let proxy = Proxy::start(&reg.host, Duration::ZERO, move |req, _| {
        if req.path == pinned {
            Fault::Json {
                code: 200,
                body: body.clone(),
            }
        } else if req.method == "PUT" {
            // A registry that answers a successful push with 100 KiB of text.
            Fault::Json {
                code: 201,
                body: "x".repeat(100 * 1024),
            }
        } else {
            Fault::Pass
        }
    });
    let env = vars(&[("MULTIARCH_INSECURE_REGISTRIES", &proxy.host)]);
    let (code, err, _) = run(&env, &["inspect", &format!("{}/app@{pin}", proxy.host)]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains(&format!("does not match {pin}")), "{err}");

    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
    ]);
    let (code, err, _) = run(&env, &["push"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_dotenv_is_checked_before_any_request_and_written_before_stdout() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Pass);
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("a-directory")).unwrap();
    let base = [
        ("MULTIARCH_IMAGE", format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest".to_string()),
        ("MULTIARCH_INSECURE_REGISTRIES", proxy.host.clone()),
    ];
    let made = std::process::Command::new("mkfifo")
        .arg(work.path().join("a-pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    // `/dev/null` is the obvious way to switch the report off: refused, never replaced.
    for path in [
        "/proc/multiarch.env",
        "/dev/null",
        "/dev/stderr",
        "a-pipe",
        "a-directory",
        "no/such/dir/x.env",
    ] {
        let mut env: BTreeMap<String, String> = base
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        env.insert("MULTIARCH_DOTENV".into(), path.into());
        let out = multiarch(&env, work.path()).arg("push").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("MULTIARCH_DOTENV"),
            "{}",
            stderr_of(&out)
        );
    }
    // 64 long tags (the cap) on a long path: a report GitLab would refuse after the tags moved.
    let tags: Vec<String> = (0..64)
        .map(|i| format!("release-candidate-build-{i:02}"))
        .collect();
    let mut env: BTreeMap<String, String> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    env.insert(
        "MULTIARCH_IMAGE".into(),
        format!("{}/group/subgroup/some-long-application-name", proxy.host),
    );
    env.insert("MULTIARCH_TAGS".into(), tags.join(","));
    env.insert("MULTIARCH_DOTENV".into(), "multiarch.env".into());
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for part in [
        "the report for 64 target tag(s) could be ",
        "over GitLab's dotenv limit of 5120 bytes",
        "fewer or shorter tags",
        "MULTIARCH_DOTENV=none",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!work.path().join("multiarch.env").exists());
    assert_eq!(proxy.requests(), 0, "nothing was asked of the registry");

    // A closed stdout: the push happened, so the dotenv says so.
    let mut env: BTreeMap<String, String> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    env.insert("MULTIARCH_DOTENV".into(), "multiarch.env".into());
    let mut child = multiarch_process(&env, work.path())
        .arg("push")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    exited(&out, 1);
    assert!(stderr_of(&out).contains("<stdout>"), "{}", stderr_of(&out));
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert!(dotenv.starts_with("MULTIARCH_DIGEST=sha256:"), "{dotenv}");
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &null.file_type()
    ));
}

/// A dotenv file bind-mounted into the job (a container volume, a Kubernetes subPath) cannot be
/// replaced by a rename (EBUSY): it is rewritten in place, and stdout says what moved.
#[test]
fn a_bind_mounted_dotenv_is_rewritten_in_place() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("host.env");
    std::fs::write(&outside, "OLD=1\n").unwrap();
    let job = work.path().join("job");
    std::fs::create_dir(&job).unwrap();
    std::fs::write(job.join("multiarch.env"), "").unwrap();
    let env = vars(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "latest,1.0"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
        ("MULTIARCH_DOTENV", "multiarch.env"),
    ]);
    let plain = multiarch_process(&env, &job);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" multiarch.env && exec "$@""#)
        .arg(&outside)
        .arg(plain.get_program())
        .arg("push")
        .env_clear()
        .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(&job);
    let out = cmd.output().unwrap();
    exited(&out, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let dotenv = std::fs::read_to_string(&outside).unwrap();
    assert!(dotenv.starts_with("MULTIARCH_DIGEST=sha256:"), "{dotenv}");
    assert!(dotenv.contains("MULTIARCH_TAGGED="), "{dotenv}");
}

#[test]
fn a_hanging_credential_helper_is_stopped_and_the_run_goes_on() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-stuck");
    std::fs::write(&helper, "#!/bin/sh\nsleep 600\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(work.path().join(".docker")).unwrap();
    std::fs::write(
        work.path().join(".docker/config.json"),
        format!(r#"{{"credHelpers":{{"{}":"stuck"}}}}"#, reg.host),
    )
    .unwrap();
    let mut env = vars(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
        ("MULTIARCH_REQUEST_TIMEOUT", "2s"),
    ]);
    env.insert(
        "PATH".into(),
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let start = Instant::now();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(start.elapsed() < Duration::from_secs(15));
    assert!(
        err.contains("did not answer in time and was stopped"),
        "{err}"
    );
}

#[test]
fn unknown_variables_are_named_and_oversized_specs_refused() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let env = vars(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
        ("MULTIARCH_PLATFORM", "linux/amd64"),
    ]);
    let (code, err, _) = run(&env, &["plan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("variable=MULTIARCH_PLATFORM")
            && err.contains("did you mean MULTIARCH_PLATFORMS?"),
        "{err}"
    );

    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("big.yml");
    std::fs::write(
        &spec,
        format!("# {}\nimage: r.example/app\n", "x".repeat(2 << 20)),
    )
    .unwrap();
    let out = multiarch(&BTreeMap::new(), work.path())
        .args(["push", "--spec", spec.to_str().unwrap()])
        .output()
        .unwrap();
    exited(&out, 2);
    assert!(
        stderr_of(&out).contains("more than the 1048576 accepted"),
        "{}",
        stderr_of(&out)
    );
}

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[test]
fn a_source_index_repeating_its_child_is_read_once_and_one_that_cannot_be_used_is_named() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "app:build-amd64", "linux/amd64", Kind::Oci);
    let other = push_built(&reg, "app:old-amd64", "linux/amd64", Kind::Oci, Some("old"));
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let size = |d: &str| reg.raw(&format!("app@{d}")).unwrap().len();
    let (amd_size, other_size) = (size(&amd), size(&other));
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Pass);
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_TIMEOUT", "5s"),
    ]);

    // The most entries accepted, all one child: read once, published once.
    let index = index_of(&[(&amd, amd_size, "linux/amd64")], 1000);
    put_manifest(&reg, "app:latest-amd64", OCI_INDEX, &index);
    let (code, err, took) = run(&env, &["push"]);
    assert_eq!(code, Some(0), "{err}");
    let log = proxy.log();
    let child_gets = log
        .iter()
        .filter(|l| l.starts_with(&format!("GET /v2/app/manifests/{amd} ")))
        .count();
    assert_eq!(child_gets, 1, "{log:#?}");
    assert!(proxy.requests() < 20, "{log:#?}");
    let published: serde_json::Value =
        serde_json::from_slice(&reg.raw("app:latest").unwrap()).unwrap();
    let digests: Vec<&str> = published["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 2, "{published}");
    assert_eq!(digests[0], amd);
    eprintln!(
        "1000 repeats: exit 0 in {:.2} s, {} requests",
        took.as_secs_f64(),
        proxy.requests()
    );

    // Indexes that cannot be used: exit 4 at once, naming the index, no child read.
    let repo = format!("{}/app", proxy.host);
    for (index, want) in [
        (
            index_of(
                &[
                    (&amd, amd_size, "linux/amd64"),
                    (&other, other_size, "linux/amd64"),
                ],
                400,
            ),
            format!("the source index {repo}:latest-amd64 lists two different images for linux/amd64: {amd} and {other}"),
        ),
        (
            index_of(&[(&amd, amd_size, "linux/amd64")], 1001),
            format!("{repo}:latest-amd64 is not a usable source index: it has 1001 entries, more than the 1000 accepted"),
        ),
    ] {
        put_manifest(&reg, "app:latest-amd64", OCI_INDEX, &index);
        let before = proxy.log().len();
        let (code, err, took) = run(&env, &["push"]);
        assert_eq!(code, Some(4), "{err}");
        assert!(err.contains(&want), "{err}");
        assert!(!err.contains("MULTIARCH_PLATFORMS"), "{err}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let children_read: Vec<String> = proxy.log()[before..]
            .iter()
            .filter(|l| l.contains(&amd) || l.contains(&other))
            .cloned()
            .collect();
        assert!(children_read.is_empty(), "{children_read:#?}");
    }
}

#[test]
fn requests_in_flight_are_bounded_however_many_children_an_index_has() {
    let reg = Registry::start();
    // An index of 200 Windows builds of one image, none of them in the registry (which would
    // refuse such an index, so the proxy serves it): each is asked for.
    let digests: Vec<String> = (0..200)
        .map(|n| support::sha256(format!("build {n}").as_bytes()))
        .collect();
    let versions: Vec<String> = (0..200)
        .map(|n| format!("windows/amd64@10.0.{n}"))
        .collect();
    let entries: Vec<(&str, usize, &str)> = digests
        .iter()
        .zip(&versions)
        .map(|(d, p)| (d.as_str(), 500, p.as_str()))
        .collect();
    let index = String::from_utf8(index_of(&entries, 1)).unwrap();
    let proxy = Proxy::start(&reg.host, Duration::from_millis(50), move |req, _| {
        if req.path == "/v2/app/manifests/latest-amd64" {
            Fault::Json {
                code: 200,
                body: index.clone(),
            }
        } else {
            Fault::Pass
        }
    });
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_PLATFORMS", "windows/amd64"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_TIMEOUT", "5s"),
    ]);
    let (code, err, _) = run(&env, &["push"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("the registry does not have the manifest it points to"),
        "{err}"
    );
    let peak = proxy.peak_in_flight();
    assert!(
        (8..=32).contains(&peak),
        "{peak} requests in flight at once"
    );
    eprintln!("{peak} requests in flight at most");
}

#[test]
fn user_named_files_that_are_not_regular_files_exit_2_at_once() {
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let docker = work.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    std::os::unix::fs::symlink(&fifo, docker.join("config.json")).unwrap();
    let fifo = fifo.display().to_string();
    let docker = docker.display().to_string();
    let base = [
        ("MULTIARCH_IMAGE", "r.example/app"),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_TIMEOUT", "5s"),
    ];
    for (extra, want) in [
        (
            ("MULTIARCH_CA_FILE", fifo.as_str()),
            format!("MULTIARCH_CA_FILE = {fifo:?} is invalid: it is a FIFO (named pipe), not a regular file"),
        ),
        (
            ("MULTIARCH_CA_FILE", "/dev/zero"),
            "MULTIARCH_CA_FILE = \"/dev/zero\" is invalid: it is a character device, not a regular file".to_string(),
        ),
        (
            ("MULTIARCH_SPEC", fifo.as_str()),
            format!("MULTIARCH_SPEC = {fifo:?} is invalid: it is a FIFO (named pipe), not a regular file"),
        ),
        (
            ("DOCKER_CONFIG", docker.as_str()),
            "config.json\" is invalid: it is a FIFO (named pipe), not a regular file".to_string(),
        ),
    ] {
        let mut env = vars(&base);
        env.insert(extra.0.into(), extra.1.into());
        let start = Instant::now();
        let out = multiarch(&env, work.path())
            .arg("push")
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(&want), "{extra:?}: {err}");
        assert!(start.elapsed() < Duration::from_secs(5), "{extra:?}");
    }
}

#[test]
fn a_variable_that_is_not_utf8_exits_2_naming_it_and_pushes_nothing() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    // On the default branch, without MULTIARCH_TAGS, the tag would be `latest`.
    let mut env = gitlab_env(&reg.repo("app"));
    env.insert("MULTIARCH_INSECURE_REGISTRIES".into(), reg.host.clone());
    env.insert("MULTIARCH_TIMEOUT".into(), "5s".into());
    let out = multiarch_process(&env, work.path())
        .env("MULTIARCH_TAGS", OsStr::from_bytes(b"release-1.0\xff"))
        .env("LC_ALL", OsStr::from_bytes(b"C.\xff")) // not read: ignored as before
        .arg("push")
        .output()
        .unwrap();
    let err = exited(&out, 2);
    assert!(
        err.contains(
            "the environment variable MULTIARCH_TAGS is not valid UTF-8 (at byte 11 of its value)"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(reg.raw("app:latest").is_none());
    assert!(!work.path().join("multiarch.env").exists());
}

#[test]
fn a_push_answer_whose_digest_header_is_not_a_digest_only_warns_and_another_digest_fails() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let other = format!("sha256:{}", "a".repeat(64));
    for (header, tag, code) in [("sha256:nothex", "moved", 0), (other.as_str(), "other", 4)] {
        let proxy = Proxy::start(&reg.host, Duration::ZERO, {
            let header = header.to_string();
            move |req, _| {
                if req.method == "PUT" {
                    Fault::Header("Docker-Content-Digest".into(), header.clone())
                } else {
                    Fault::Pass
                }
            }
        });
        let repo = format!("{}/app", proxy.host);
        let env = vars(&[
            ("MULTIARCH_IMAGE", &repo),
            ("MULTIARCH_TAGS", &format!("latest,{tag}")),
            ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
            ("MULTIARCH_TIMEOUT", "5s"),
        ]);
        let work = tempfile::tempdir().unwrap();
        let out = multiarch(&env, work.path()).arg("push").output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{header}: {err}");
        if code == 0 {
            let digest = support::sha256(&reg.raw("app:moved").expect("the tag moved"));
            assert!(
                err.contains("Docker-Content-Digest header is not a digest; ignored"),
                "{err}"
            );
            assert!(!err.contains("nothex"), "the header is not echoed: {err}");
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("{repo}:latest@{digest}\n{repo}:moved@{digest}\n"),
                "every tag is reported as moved"
            );
        } else {
            assert!(
                err.contains(&format!("content digest {other} does not match sha256:")),
                "{err}"
            );
        }
    }
}

#[test]
fn content_whose_size_differs_from_its_descriptor_is_refused_before_anything_is_pushed() {
    use support::hostile::Image;
    // An image whose manifest says its 80-byte config is 10 bytes (the digest is right).
    let lying = Image::amd64(Some(10));
    // An index whose entry says the (honest) image manifest is 10 bytes.
    let honest = Image::amd64(None);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        honest.manifest_digest
    );
    let index_digest = support::sha256(index.as_bytes());
    for (case, said_by, actual) in [
        ("config", "image config", lying.config.len()),
        ("entry", "index entry", honest.manifest.len()),
    ] {
        let (lying, honest, index, index_digest) = (
            Image::amd64(Some(10)),
            Image::amd64(None),
            index.clone(),
            index_digest.clone(),
        );
        let puts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = puts.clone();
        let reg = Hostile::start(move |method, path| {
            if method == "PUT" {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            match (case, path) {
                (_, p) if p.ends_with(&honest.manifest_digest) => honest.manifest(),
                (_, p) if p.contains("/blobs/") => lying.config(),
                ("config", p) if p.contains("/manifests/1-amd64") => lying.manifest(),
                ("entry", p) if p.contains("/manifests/1-amd64") => Behaviour::Answer {
                    status: 200,
                    headers: vec![
                        (
                            "Content-Type".into(),
                            "application/vnd.oci.image.index.v1+json".into(),
                        ),
                        ("Docker-Content-Digest".into(), index_digest.clone()),
                    ],
                    body: index.clone().into_bytes(),
                },
                _ => Behaviour::json(
                    404,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}"#,
                ),
            }
        });
        let env = vars(&[
            ("MULTIARCH_IMAGE", &format!("{}/app", reg.host)),
            ("MULTIARCH_TAGS", "1"),
            ("MULTIARCH_PLATFORMS", "linux/amd64"),
            ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
            ("MULTIARCH_TIMEOUT", "5s"),
        ]);
        let (code, err, took) = run(&env, &["push"]);
        assert_eq!(code, Some(4), "{case}: {err}");
        assert!(
            err.contains(&format!("is not a usable {said_by}")),
            "{case}: {err}"
        );
        assert!(
            err.contains(&format!("{}/app", reg.host)),
            "{case}: the image is named: {err}"
        );
        assert!(
            err.contains("says 10 bytes but sha256:")
                && err.contains(&format!("is {actual} bytes")),
            "{case}: {err}"
        );
        assert_eq!(
            puts.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{case}: nothing pushed"
        );
        assert!(took < Duration::from_secs(5), "{case}: {took:?}");
    }
}
