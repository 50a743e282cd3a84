//! Push access is checked at the start, on every destination, while sources are still awaited:
//! an upload session is opened (and given back), as a push would open one. The real registry
//! behind the fault-injecting proxy plays a registry that refuses uploads to this credential
//! (403 DENIED: may pull, may not push), one that cannot cancel an upload session, one that
//! does not take uploads that way at all, and one that does not have the destination repository
//! and does not create it on push (404 NAME_UNKNOWN, as Amazon ECR and project-based registries
//! answer).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::fixtures::{push as push_fixture, push_two_arches, Kind};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{run, vars, Registry};

fn env(proxy: &Proxy, timeout: &str) -> BTreeMap<String, String> {
    vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_TIMEOUT", timeout),
        ("MULTIARCH_USERNAME", "reader"),
        ("MULTIARCH_PASSWORD", "may-pull-only"),
    ])
}

/// A proxy answering `fault` to the upload sessions' `method` and passing everything else.
fn proxy(reg: &Registry, method: &'static str, fault: Fault) -> Proxy {
    Proxy::start(&reg.host, Duration::ZERO, move |req, _| {
        if req.method == method && req.path.starts_with("/v2/app/blobs/uploads/") {
            fault.clone()
        } else {
            Fault::Pass
        }
    })
}

#[test]
fn a_credential_that_may_pull_but_not_push_ends_the_run_at_once_while_a_source_is_missing() {
    let reg = Registry::start();
    // arm64 never comes: without the check at the start, the run would wait 5 minutes.
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let denied = Fault::Json {
        code: 403,
        body: r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.into(),
    };
    let proxy = proxy(&reg, "POST", denied);
    let (code, err, took) = run(&env(&proxy, "5m"), &["push"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains(&format!(
            "error: checking push access to {}/app: the registry refused access (HTTP 403 Forbidden, DENIED: requested access to the resource is denied; credentials from MULTIARCH_USERNAME/MULTIARCH_PASSWORD)",
            proxy.host
        )),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(60),
        "ended at once, not after the wait: {took:?}"
    );
    assert!(reg.raw("app:latest").is_none());
    assert!(!err.contains("may-pull-only"));
    // A dry run asks nothing of the kind.
    let before = proxy.log().len();
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let (code, err, _) = run(&env(&proxy, "0"), &["plan"]);
    assert_eq!(code, Some(0), "{err}");
    let log = proxy.log();
    assert!(log.len() > before, "{log:#?}");
    assert!(
        !log[before..].iter().any(|l| l.starts_with("POST")),
        "{log:#?}"
    );
}

#[test]
fn a_registry_that_cannot_cancel_an_upload_or_does_not_take_them_so_still_gets_the_push() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    for (method, fault) in [
        // Amazon ECR and others may not cancel sessions: they expire.
        (
            "DELETE",
            Fault::Json {
                code: 405,
                body: r#"{"errors":[{"code":"UNSUPPORTED","message":"no"}]}"#.into(),
            },
        ),
        // A bare 404 says nothing about access: the push itself will tell.
        (
            "POST",
            Fault::Status {
                code: 404,
                retry_after: None,
            },
        ),
    ] {
        let proxy = proxy(&reg, method, fault);
        let (code, err, _) = run(&env(&proxy, "0"), &["push"]);
        assert_eq!(code, Some(0), "{method}: {err}");
        if method == "POST" {
            assert!(
                err.contains("push access could not be checked by opening an upload session; the push will tell"),
                "{err}"
            );
        }
        let log = proxy.log();
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("POST /v2/app/blobs/uploads/"))
                .count(),
            1,
            "{log:#?}"
        );
    }
    assert!(reg.raw("app:latest").is_some());
}

/// The NAME_UNKNOWN answer of a registry without the repository `dest`, as Amazon ECR words it.
fn unknown_dest() -> Fault {
    Fault::Json {
        code: 404,
        body: r#"{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'dest' does not exist in the registry with id '123456789012'"}]}"#.into(),
    }
}

/// Publishing `dest` in front of `reg` from its `app` sources, the upload POSTs into `dest`
/// after the first `passed` answered NAME_UNKNOWN.
fn without_dest(reg: &Registry, passed: usize) -> Proxy {
    let posts = std::sync::atomic::AtomicUsize::new(0);
    Proxy::start(&reg.host, Duration::ZERO, move |req, _| {
        let upload = req.method == "POST" && req.path.starts_with("/v2/dest/blobs/uploads/");
        if upload && posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= passed {
            unknown_dest()
        } else {
            Fault::Pass
        }
    })
}

fn publishing_dest(proxy: &Proxy, timeout: &str) -> BTreeMap<String, String> {
    let mut env = env(proxy, timeout);
    env.insert("MULTIARCH_IMAGE".into(), format!("{}/dest", proxy.host));
    env.insert(
        "MULTIARCH_SOURCE_TEMPLATE".into(),
        format!("{}/app:latest-{{arch}}{{variant}}", proxy.host),
    );
    env
}

#[test]
fn a_destination_the_registry_does_not_have_ends_the_run_at_once_saying_to_create_it() {
    let reg = Registry::start();
    // arm64 never comes: without the check at the start, the run would wait a minute, then exit 3.
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let proxy = without_dest(&reg, 0);
    let (code, err, _) = run(&publishing_dest(&proxy, "1m"), &["push"]);
    assert_eq!(code, Some(2), "{err}");
    let host = &proxy.host;
    assert!(
        err.contains(&format!(
            "error: checking push access to {host}/dest: the repository dest does not exist (HTTP 404 Not Found, NAME_UNKNOWN: The repository with name 'dest' does not exist in the registry with id '123456789012')\n  hint: {host} does not create it on push: create the repository dest (on GitLab, Harbor and the like, the project or group that holds it), or correct the destination (MULTIARCH_IMAGE, --image, the spec's image, or in GitLab CI_REGISTRY_IMAGE)"
        )),
        "{err}"
    );
    assert!(!err.contains("not ready"), "{err}");

    // A repository gone between the check and the push is said the same way.
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let proxy = without_dest(&reg, 1);
    let (code, err, _) = run(&publishing_dest(&proxy, "0"), &["push"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "error: uploading blob to {}/dest@sha256:",
            proxy.host
        )),
        "{err}"
    );
    assert!(
        err.contains("the repository dest does not exist (")
            && err.contains("create the repository dest"),
        "{err}"
    );
    assert!(reg.raw("dest:latest").is_none());
}
