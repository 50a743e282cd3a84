//! Failing fast, failing exactly, never lying: misconfigurations end at once with exit 2 and a
//! hint; hung or failing registries are bounded by the wait; a refused tag leaves an exact report;
//! what a malicious registry or token service sends cannot abort the run, exhaust memory or forge
//! a dotenv line. Real registry, the fault proxy, the token service and a hostile server; time
//! bounds here are generous sanity limits (speed belongs to ci/bench.sh).

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::fixtures::{push as push_fixture, push_two_arches, Kind};
use support::hostile::{Behaviour, Hostile};
use support::proxy::{Fault, Proxy};
use support::token::TokenService;
use support::{free_port, multiarch, multiarch_process, stderr_of, vars, Options, Registry};

/// Runs `multiarch args` with `env`; returns exit code, stderr and how long it took.
fn run(env: &BTreeMap<String, String>, args: &[&str]) -> (Option<i32>, String, Duration) {
    let work = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = multiarch(env, work.path()).args(args).output().unwrap();
    (out.status.code(), stderr_of(&out), start.elapsed())
}

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
fn a_registry_that_never_answers_is_bounded_by_the_wait_and_progress_still_comes() {
    let silent = Hostile::start(|_, _| Behaviour::Silent);
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", silent.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_INSECURE_REGISTRIES", &silent.host),
        ("MULTIARCH_TIMEOUT", "10s"),
        ("MULTIARCH_REQUEST_TIMEOUT", "35s"),
    ]);
    let (code, err, took) = run(&env, &["push"]);
    assert_eq!(code, Some(75), "{err}");
    assert!(err.contains("timed out"), "{err}");
    // The wait's deadline plus one request limit, not retries on top.
    assert!(took < Duration::from_secs(10 + 35 + 5), "{took:?}");
    // A progress line came while every request hung.
    assert!(err.contains("waiting for sources"), "{err}");
    assert!(err.contains("elapsed=30s"), "{err}");
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
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
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
    assert!(err.contains(&format!("  - {repo}:1.4: pushing to {repo}:1.4: the registry refused access (HTTP 403 Forbidden, DENIED: protected tag")), "{err}");
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
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
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
            4,
            "sent more than the 262144 bytes accepted",
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
        if code != 4 && code != 1 {
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
    for path in ["/proc/multiarch.env", "a-directory", "no/such/dir/x.env"] {
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
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("<stdout>"), "{}", stderr_of(&out));
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert!(dotenv.starts_with("MULTIARCH_DIGEST=sha256:"), "{dotenv}");
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
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("more than the 1048576 accepted"),
        "{}",
        stderr_of(&out)
    );
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
