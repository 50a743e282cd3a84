//! Waiting for late architectures and riding through a flaky registry: the real registry behind
//! the fault-injecting proxy, the real binary, skopeo to check what landed (directly, not through
//! the proxy). Time bounds here are generous sanity limits; speed belongs to ci/bench.sh.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::fixtures::{push as push_fixture, push_two_arches, Kind};
use crate::support::proxy::{on_put, Fault, Proxy};
use crate::support::{exited, multiarch, multiarch_process, stderr_of, Registry};
use serde_json::Value;

/// Variables for `multiarch` to publish `app` through `host` (plain HTTP).
fn vars(host: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("MULTIARCH_IMAGE", format!("{host}/app")),
        ("MULTIARCH_TAGS", "latest".to_string()),
        ("MULTIARCH_INSECURE_REGISTRIES", host.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

#[test]
fn push_succeeds_through_429s_503s_cut_connections_and_stalls() {
    let reg = Registry::start();
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Docker);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, n| match n {
        1 => Fault::Status {
            code: 429,
            retry_after: Some("1".into()),
        },
        2 | 3 => Fault::Status {
            code: 503,
            retry_after: None,
        },
        5 => Fault::Cut,
        7 => Fault::Stall(Duration::from_secs(5)),
        9 => Fault::Status {
            code: 502,
            retry_after: None,
        },
        11 => Fault::Status {
            code: 429,
            retry_after: Some(httpdate::fmt_http_date(
                std::time::SystemTime::now() + Duration::from_secs(1),
            )),
        },
        _ => Fault::Pass,
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&proxy.host, &[("MULTIARCH_REQUEST_TIMEOUT", "2s")]);
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{:#?}",
        stderr_of(&out),
        proxy.log()
    );
    assert!(stderr_of(&out).contains("retrying"), "{}", stderr_of(&out));
    // What landed is a complete index of both (checked without the proxy).
    let index: Value = serde_json::from_slice(&reg.raw("app:latest").expect("pushed")).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert!(proxy.requests() > 12, "{:#?}", proxy.log());
}

#[test]
fn a_registry_that_only_fails_ends_with_75_in_bounded_time_and_nothing_pushed() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Status {
        code: 503,
        retry_after: None,
    });
    let work = tempfile::tempdir().unwrap();
    for timeout in ["0", "3s"] {
        let env = vars(
            &proxy.host,
            &[("MULTIARCH_TIMEOUT", timeout), ("MULTIARCH_RETRIES", "2")],
        );
        let start = Instant::now();
        let out = multiarch(&env, work.path()).arg("push").output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(75),
            "timeout {timeout}: {}",
            stderr_of(&out)
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "took {:?}",
            start.elapsed()
        );
        assert!(
            stderr_of(&out).contains("retry the job"),
            "{}",
            stderr_of(&out)
        );
        assert!(out.stdout.is_empty());
    }
    assert!(reg.raw("app:latest").is_none());
}

#[test]
fn a_source_pushed_after_push_started_is_waited_for_and_included() {
    let reg = Registry::start();
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let env = vars(&reg.host, &[("MULTIARCH_TIMEOUT", "2m")]);
    let mut child = multiarch_process(&env, work.path())
        .arg("push")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        child.try_wait().unwrap().is_none(),
        "push must still be waiting"
    );
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let landed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let lag = landed.elapsed();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting for sources"), "{err}");
    assert!(
        err.contains(&format!("missing={}/app:latest-arm64", reg.host)),
        "{err}"
    );
    assert!(err.contains("source appeared"), "{err}");
    let index: Value = serde_json::from_slice(&reg.raw("app:latest").unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    eprintln!("lag from the last source landing to the index pushed: {lag:?}");
    assert!(lag < Duration::from_secs(30), "lag {lag:?}");
}

#[test]
fn deadline_exits_3_allow_missing_publishes_what_exists_and_wait_exits_0() {
    let reg = Registry::start();
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let env = vars(&reg.host, &[("MULTIARCH_TIMEOUT", "2s")]);

    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    exited(&out, 3);
    assert!(stderr_of(&out).contains(&format!("  - {}/app:latest-arm64", reg.host)));
    assert!(reg.raw("app:latest").is_none());

    let out = multiarch(&env, work.path()).arg("wait").output().unwrap();
    assert_eq!(out.status.code(), Some(3));

    let out = multiarch(&env, work.path())
        .args(["push", "--allow-missing"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("sources that are missing or stale"),
        "{}",
        stderr_of(&out)
    );
    let index: Value = serde_json::from_slice(&reg.raw("app:latest").unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);

    let arm = push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let out = multiarch(&env, work.path()).arg("wait").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(&format!("{}/app:latest-arm64@{arm}\n", reg.host)));
    assert!(reg.raw("app:latest").is_some(), "wait pushes nothing new");
}

#[test]
fn a_registry_refusing_to_move_a_tag_exits_4_with_the_immutability_explanation() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    // What ECR answers a PUT onto an immutable tag when DescribeRepositories was not allowed.
    let proxy = Proxy::start(
        &reg.host,
        Duration::ZERO,
        on_put({
            let body = r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag 'latest' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."}]}"#;
            Fault::Json {
                code: 400,
                body: body.into(),
            }
        }),
    );
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&vars(&proxy.host, &[]), work.path())
        .arg("push")
        .output()
        .unwrap();
    let err = exited(&out, 4);
    assert!(err.contains("TAG_INVALID"), "{err}");
    assert!(err.contains("immutable tags"), "{err}");
    // The refused tag is named once in the list of tags that did not move.
    let tag = format!("{}/app:latest", proxy.host);
    assert!(
        err.contains(&format!(
            "\n  - {tag}: the registry refused to move this tag (HTTP 400 Bad Request, TAG_INVALID"
        )),
        "{err}"
    );
    let said = &err[err.find("error: ").expect("the error")..];
    assert_eq!(said.matches(&format!("{tag}:")).count(), 1, "{said}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_push_costs_three_requests_per_source_two_per_tag_and_two_per_destination() {
    let reg = Registry::start();
    for (tag, platform) in [
        ("1-amd64", "linux/amd64"),
        ("1-arm64", "linux/arm64"),
        ("1-armv7", "linux/arm/v7"),
    ] {
        push_fixture(&reg, &format!("app:{tag}"), platform, Kind::Oci);
    }
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Pass);
    let work = tempfile::tempdir().unwrap();
    let env = vars(
        &proxy.host,
        &[
            ("MULTIARCH_TAGS", "1,latest"),
            (
                "MULTIARCH_PLATFORMS",
                "linux/amd64,linux/arm64,linux/arm/v7",
            ),
        ],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // One GET per manifest, per config and per top layer (opened alongside the config for the
    // content check; these images start no program, so it is dropped unread); per tag a HEAD
    // before and a PUT; per destination the push-access check (an upload session opened and
    // given back); the index once by digest.
    let (n, t, d) = (3, 2, 1);
    assert_eq!(
        proxy.requests(),
        3 * n + 2 * t + 2 * d + 1,
        "{:#?}",
        proxy.log()
    );
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST /v2/app/blobs/uploads/ "))
            && log
                .iter()
                .any(|l| l.starts_with("DELETE /v2/app/blobs/uploads/")),
        "{log:#?}"
    );
    // A re-run only looks: manifests, configs, a HEAD per tag, the push check, no PUT.
    let before = proxy.requests();
    multiarch(&env, work.path()).arg("push").assert().success();
    let log = proxy.log();
    assert!(
        log[before..].iter().all(|l| !l.starts_with("PUT")),
        "{log:#?}"
    );
}

#[test]
fn a_refused_manifest_exits_4_an_unexpected_answer_1_and_a_bad_dotenv_path_2_before_any_request() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    for (code, body, exit, said) in [
        (
            400,
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#,
            4,
            "the registry refused the manifest (HTTP 400 Bad Request, MANIFEST_INVALID: manifest invalid)",
        ),
        (
            405,
            r#"{"errors":[{"code":"UNSUPPORTED","message":"not here"}]}"#,
            1,
            "the registry answered HTTP 405 Method Not Allowed, UNSUPPORTED: not here",
        ),
        // A bare HTML 400 from a plain-HTTP host that answered everything else: its refusal,
        // not a TLS port (that diagnosis needs a host that never answered otherwise).
        (
            400,
            "<html><head><title>400 Bad Request</title></head><body>400 Bad Request</body></html>",
            4,
            "the registry refused the manifest (HTTP 400 Bad Request)",
        ),
    ] {
        let proxy = Proxy::start(
            &reg.host,
            Duration::ZERO,
            on_put(Fault::Json {
                code,
                body: body.into(),
            }),
        );
        let out = multiarch(&vars(&proxy.host, &[]), work.path())
            .arg("push")
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(exit), "{err}");
        assert!(
            err.contains(&format!("pushing to {}/app:latest: {said}", proxy.host)),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert!(!err.contains("TLS"), "{err}");
    }
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Pass);

    let before = proxy.requests();
    let env = vars(
        &proxy.host,
        &[("MULTIARCH_DOTENV", "no/such/dir/multiarch.env")],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    exited(&out, 2);
    assert!(
        stderr_of(&out).contains("no file can be created in no/such/dir"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        proxy.requests(),
        before,
        "nothing was asked of the registry"
    );
}

#[test]
fn with_no_wait_a_registry_asking_to_come_back_much_later_ends_the_run_at_once() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let far =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30 * 24 * 3600));
    for (code, retry_after) in [(429, "999999999".to_string()), (503, far)] {
        let proxy = Proxy::start(&reg.host, Duration::ZERO, {
            let retry_after = retry_after.clone();
            move |_, _| Fault::Status {
                code,
                retry_after: Some(retry_after.clone()),
            }
        });
        let work = tempfile::tempdir().unwrap();
        for command in ["push", "plan"] {
            let env = vars(&proxy.host, &[("MULTIARCH_TIMEOUT", "0")]);
            let start = Instant::now();
            let out = multiarch(&env, work.path()).arg(command).output().unwrap();
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(75), "{retry_after}: {err}");
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{retry_after}: {command} took {:?}",
                start.elapsed()
            );
            assert!(
                err.contains("(Retry-After), past the time MULTIARCH_TIMEOUT leaves"),
                "{err}"
            );
            assert!(!err.contains("retrying"), "no sleep was started: {err}");
        }
    }

    // With a wait too: the pause asked for is past its deadline, so the polling does not go on
    // (it would only hit the registry again), whatever is left of the wait.
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Status {
        code: 503,
        retry_after: Some("99999".into()),
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&proxy.host, &[("MULTIARCH_TIMEOUT", "60s")]);
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 75);
    assert!(err.contains("99999"), "{err}");
    assert!(!err.contains("polling on"), "{err}");

    // The same for the look at the target tag, which runs during the wait.
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        if req.path == "/v2/app/manifests/latest" {
            Fault::Status {
                code: 429,
                retry_after: Some("999999999".into()),
            }
        } else {
            Fault::Pass
        }
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&proxy.host, &[("MULTIARCH_TIMEOUT", "0")]);
    let start = Instant::now();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    exited(&out, 75);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );

    // The push phase is held to its own allowance: a tag PUT asked to come back in a day is not
    // slept on (not even the capped 30 s, five times over), and the delay asked for is named.
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        if req.method == "PUT" && req.path.contains("/manifests/") {
            Fault::Status {
                code: 429,
                retry_after: Some("99999".into()),
            }
        } else {
            Fault::Pass
        }
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(
        &proxy.host,
        &[("MULTIARCH_TIMEOUT", "0"), ("MULTIARCH_RETRIES", "5")],
    );
    let start = Instant::now();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = stderr_of(&out);
    exited(&out, 75);
    assert!(
        err.contains(
            "after 1 attempt: it asks to be retried in 99999 s (Retry-After), past the 2 minutes the push phase retries for"
        ),
        "{err}"
    );
    assert!(!err.contains("retrying"), "no sleep was started: {err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );

    // A registry that is only briefly flaky is still ridden out without a wait.
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, n| match n {
        0 | 1 => Fault::Status {
            code: 503,
            retry_after: Some("1".into()),
        },
        _ => Fault::Pass,
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&proxy.host, &[("MULTIARCH_TIMEOUT", "0")]);
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("retrying"), "{}", stderr_of(&out));
}
