//! Redirects as registries send them (ECR serves blobs from S3): a failure after a redirect names
//! the host that failed and the registry that sent us there; a `Location` that cannot be used
//! and a redirect loop are the registry's fault (exit 1, at once), not a setting to fix nor worth
//! a retry; only the redirect statuses are followed. A hand-made registry (the hostile server)
//! redirects the config GET; the real registry over TLS plays a redirect target with a private CA.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::hostile::{redirect, Behaviour, Hostile, Image};
use crate::support::{free_port, vars, Options, Registry};

/// A registry serving a linux/amd64 image under any tag whose config GET (and, with
/// `everything`, every request) is answered by `answer`.
fn registry(answer: Behaviour, everything: bool) -> Hostile {
    let image = Image::amd64(None);
    Hostile::start(move |_, path| {
        if everything {
            answer.clone()
        } else if path.starts_with("/v2/app/manifests/") {
            image.manifest()
        } else if path.starts_with("/v2/app/blobs/") {
            answer.clone()
        } else {
            Behaviour::json(200, "{}")
        }
    })
}

/// Runs `multiarch args` against `host/app` with `insecure` listed; exit code, stderr, time.
fn run(host: &str, insecure: &[&str], args: &[&str]) -> (Option<i32>, String, Duration) {
    let env: BTreeMap<String, String> = vars(&[
        ("MULTIARCH_IMAGE", &format!("{host}/app")),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
        ("MULTIARCH_INSECURE_REGISTRIES", &insecure.join(",")),
        ("MULTIARCH_RETRIES", "1"),
        ("MULTIARCH_TIMEOUT", "20s"),
    ]);
    support::run(&env, args)
}

#[test]
fn failures_after_a_redirect_name_the_host_that_failed() {
    let tls = Registry::start_with(Options {
        tls: true,
        ..Default::default()
    });
    let plain = Registry::start();
    let closed = format!("127.0.0.1:{}", free_port());
    for (location, code, what, not) in [
        // A private CA at the redirect target: the target is named, not the plain registry.
        (
            format!("https://{}/bucket/blob", tls.host),
            2,
            format!(
                "TLS connection to https://{} (where {{reg}} redirected) refused",
                tls.host
            ),
            "TLS connection to {reg}",
        ),
        // A redirect to HTTPS on a plain-HTTP server: not a forgotten insecure listing.
        (
            format!("https://{}/bucket/blob", plain.host),
            2,
            format!(
                "cannot reach https://{}, where {{reg}} redirected: it answered the TLS handshake in plain HTTP",
                plain.host
            ),
            "list it in MULTIARCH_INSECURE_REGISTRIES",
        ),
        // Nobody listens at the target: retried, then 75 naming the target.
        (
            format!("http://{closed}/bucket/blob"),
            75,
            format!("connection refused at {closed}, where {{reg}} redirected"),
            "connection refused at {reg}",
        ),
    ] {
        let reg = registry(redirect(307, &location), false);
        let what = what.replace("{reg}", &reg.host);
        let not = not.replace("{reg}", &reg.host);
        let (got, err, took) = run(
            &reg.host,
            &[&reg.host, &closed],
            &["inspect", &format!("{}/app:1-amd64", reg.host)],
        );
        assert_eq!(got, Some(code), "{location}: {err}");
        assert!(err.contains(&what), "{location}: {err}");
        assert!(!err.contains(&not), "{location}: {err}");
        assert!(took < Duration::from_secs(10), "{location}: {took:?}");
        eprintln!("{location} → exit {code} in {:.2} s", took.as_secs_f64());
    }
}

#[test]
fn an_unusable_location_is_the_registrys_fault_shown_cleaned() {
    for location in [
        "http://[::1:bad".to_string(),
        "http://127.0.0.1:99999/blob".to_string(),
        "ftp://127.0.0.1/blob".to_string(),
        format!("http://[::1:bad\t{}", "x".repeat(5000)),
    ] {
        let reg = registry(redirect(302, &location), false);
        let (code, err, took) = run(
            &reg.host,
            &[&reg.host],
            &["inspect", &format!("{}/app:1-amd64", reg.host)],
        );
        assert_eq!(code, Some(1), "{location}: {err}");
        let shown: String = location.replace('\t', " ").chars().take(40).collect();
        assert!(
            err.contains(&format!(
                "a redirect from {} to an unusable location \"{shown}",
                reg.host
            )),
            "{location}: {err}"
        );
        assert!(!err.contains("check the host and port"), "{err}");
        assert!(!err.contains('\t') && err.len() < 2000, "{err}");
        assert!(took < Duration::from_secs(5), "{location}: {took:?}");
    }
}

#[test]
fn a_redirect_loop_ends_at_once_with_exit_1_naming_the_host() {
    let reg = registry(redirect(302, "/v2/app/manifests/1-amd64"), true);
    for command in ["push", "plan"] {
        let (code, err, took) = run(&reg.host, &[&reg.host], &[command]);
        assert_eq!(code, Some(1), "{command}: {err}");
        assert!(
            err.contains(&format!(
                "6 redirects in a row from {0}, the last to {0} (at most 5 are followed)",
                reg.host
            )),
            "{command}: {err}"
        );
        assert!(!err.contains("retry the job"), "{err}");
        assert!(took < Duration::from_secs(5), "{command}: {took:?}");
    }
}

#[test]
fn only_redirect_statuses_are_followed() {
    let image = Image::amd64(None);
    let target = Hostile::start(move |_, _| image.config());
    let location = format!("http://{}/blob", target.host);
    let reg = registry(redirect(304, &location), false);
    let (code, err, _) = run(
        &reg.host,
        &[&reg.host, &target.host],
        &["inspect", &format!("{}/app:1-amd64", reg.host)],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("HTTP 304"), "{err}");
    assert_eq!(target.requests(), 0, "a 304 is not a redirect");

    // The same Location with a 307 is followed and the image read.
    let reg = registry(redirect(307, &location), false);
    let (code, err, _) = run(
        &reg.host,
        &[&reg.host, &target.host],
        &["inspect", &format!("{}/app:1-amd64", reg.host)],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(target.requests(), 1);
}
