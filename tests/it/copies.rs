//! Copies blame the right host and end in time: a source registry (the hostile server) that drips
//! or cuts a layer short while it is streamed into a real docker-registry is cut off within the
//! request limit and named as the source, not as the destination failing; a copy slower than a
//! MiB a second on average ends at its bound; a source that sends another size than its
//! descriptor says is refused (exit 4); a destination that takes the whole upload and never
//! answers is named as the destination. No tag moves in any of those; a source cut off once is
//! copied whole on the retry, the short upload never committed.

use crate::support;

use std::collections::BTreeMap;

use crate::support::hostile::{Behaviour, Hostile, Image};
use crate::support::{vars, Registry};

/// A source registry serving `app:1-amd64` (one layer) whose layer GET is answered by `layer`.
fn source(image: Image, layer: Behaviour) -> Hostile {
    Hostile::start(move |method, path| {
        let blob = |digest: &str| path == format!("/v2/app/blobs/{digest}");
        match method {
            "GET" | "HEAD" if path.starts_with("/v2/app/manifests/") => image.manifest(),
            "GET" if blob(&image.config_digest) => image.config(),
            "GET" if blob(&image.layer_digest) => layer.clone(),
            _ => Behaviour::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#),
        }
    })
}

/// Publishes `dest/app:1` from `src/app:1-amd64` with a short request limit; exit code, stderr.
fn publish(src: &Hostile, dest: &Registry) -> (Option<i32>, String) {
    publish_with(src, &dest.host, "2s", &[])
}

/// The same into the registry at `dest` (a host), with `request_timeout` and `more` variables
/// (`MULTIARCH_RETRIES` is 1 unless they say otherwise).
fn publish_with(
    src: &Hostile,
    dest: &str,
    request_timeout: &str,
    more: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut env: BTreeMap<String, String> = vars(&[
        ("MULTIARCH_IMAGE", &format!("{dest}/app")),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{}/app:{{tag}}-{{arch}}", src.host),
        ),
        (
            "MULTIARCH_INSECURE_REGISTRIES",
            &format!("{dest},{}", src.host),
        ),
        ("MULTIARCH_REQUEST_TIMEOUT", request_timeout),
        ("MULTIARCH_RETRIES", "1"),
        ("MULTIARCH_TIMEOUT", "0"),
    ]);
    env.extend(vars(more));
    let (code, err, took) = support::run(&env, &["push"]);
    eprintln!(
        "ended with {code:?} in {:.1} s: {}",
        took.as_secs_f64(),
        err.lines()
            .filter(|l| !l.contains(" INFO "))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    (code, err)
}

#[test]
fn a_dripping_or_cut_source_is_named_as_the_source_and_the_run_ends() {
    let dest = Registry::start();
    let layer = vec![b'x'; 1_000_000];
    for (answer, said) in [
        // One byte a second: each arrives, the blob never does.
        (
            Behaviour::Drip,
            "then less than 1 MiB in 2 s (MULTIARCH_REQUEST_TIMEOUT): a stalled or dripping source, after 2 attempts",
        ),
        // The whole length announced, a third sent, the connection closed.
        (
            Behaviour::Cut {
                body: layer.clone(),
                sent: 333_333,
            },
            "after 333333 of 1000000 bytes, after 2 attempts",
        ),
    ] {
        let image = Image::amd64_with_layer(layer.clone());
        let digest = image.layer_digest.clone();
        let src = source(image, answer.clone());
        let (code, err) = publish(&src, &dest);
        assert_eq!(code, Some(75), "{answer:?}: {err}");
        let error = err.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
        assert!(
            error.starts_with(&format!(
                "error: reading blob {digest} from {}/app: ",
                src.host
            )),
            "{answer:?}: {err}"
        );
        assert!(error.contains(&src.host) && error.ends_with(said), "{answer:?}: {error}");
        assert!(!err.contains("uploading blob to"), "{answer:?}: {err}");
        assert!(dest.raw("app:1").is_none(), "no tag moved");
    }
}

#[test]
fn a_source_cut_off_once_is_copied_whole_on_the_retry_and_the_short_upload_never_lands() {
    let dest = Registry::start();
    let layer = vec![b'y'; 1_000_000];
    let image = Image::amd64_with_layer(layer.clone());
    let gets = std::sync::atomic::AtomicUsize::new(0);
    let whole = image.layer();
    let src = Hostile::start(move |method, path| {
        let blob = |digest: &str| path == format!("/v2/app/blobs/{digest}");
        match method {
            "GET" | "HEAD" if path.starts_with("/v2/app/manifests/") => image.manifest(),
            "GET" if blob(&image.config_digest) => image.config(),
            // The first read of the layer stops a third of the way; the next is whole.
            "GET" if blob(&image.layer_digest) => {
                if gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    Behaviour::Cut {
                        body: layer.clone(),
                        sent: 333_333,
                    }
                } else {
                    whole.clone()
                }
            }
            _ => Behaviour::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#),
        }
    });
    // The content check would open the layer too (alongside the config): only the copy reads it.
    let (code, err) = publish_with(
        &src,
        &dest.host,
        "2s",
        &[("MULTIARCH_CONTENT_CHECK", "off")],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("after 333333 of 1000000 bytes"),
        "the cut was retried: {err}"
    );
    // The upload cut short was never committed: skopeo reads every blob back, digests checked.
    dest.complete("app:1");
}

#[test]
fn a_copy_slower_than_a_mib_a_second_ends_with_its_bound_and_is_not_retried() {
    let dest = Registry::start();
    let mib = 1024 * 1024;
    let image = Image::amd64_with_layer(vec![b'z'; 4 * mib]);
    let digest = image.layer_digest.clone();
    // 450 KiB/s: each MiB within the 3 s stall limit, the whole far below 1 MiB/s on average.
    let slow = Behaviour::Slow {
        body: image.layer.clone(),
        per_second: 450 * 1024,
    };
    let src = source(image, slow);
    let (code, err) = publish_with(&src, &dest.host, "3s", &[]);
    assert_eq!(code, Some(75), "{err}");
    assert!(
        err.contains(&format!(
            "error: copying blob {digest} from {}/app to {}: the copy did not finish within 7 s (MULTIARCH_REQUEST_TIMEOUT plus 1 s per MiB): ",
            src.host,
            dest.repo("app")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            " of 4194304 bytes had been sent on to {}; it was not retried",
            dest.host
        )),
        "{err}"
    );
    assert!(!err.contains("retrying"), "{err}");
    assert!(dest.raw("app:1").is_none(), "no tag moved");
}

#[test]
fn a_source_that_sends_another_size_than_its_descriptor_is_refused() {
    let dest = Registry::start();
    let image = Image::amd64_with_layer(vec![b'y'; 4096]);
    let digest = image.layer_digest.clone();
    // A well-formed answer of 1000 bytes for a 4096-byte layer.
    let short = Behaviour::Answer {
        status: 200,
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
        body: vec![b'y'; 1000],
    };
    let src = source(image, short);
    let (code, err) = publish(&src, &dest);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "error: {digest} from {0}/app is not a usable blob: {0} ended it after 1000 of the 4096 bytes its descriptor says",
            src.host
        )),
        "{err}"
    );
    assert!(dest.raw("app:1").is_none(), "no tag moved");
}

#[test]
fn a_destination_that_takes_the_upload_and_never_answers_is_named() {
    let image = Image::amd64_with_layer(vec![b'w'; 4096]);
    let layer = image.layer();
    let src = source(image, layer);
    // A destination that opens upload sessions, reads every byte PUT into one and never answers.
    let dest = Hostile::start(|method, path| match method {
        "PUT" if path.starts_with("/v2/app/blobs/uploads/") => Behaviour::Silent,
        "POST" if path.starts_with("/v2/app/blobs/uploads/") => Behaviour::Answer {
            status: 202,
            headers: vec![("Location".into(), "/v2/app/blobs/uploads/u1".into())],
            body: Vec::new(),
        },
        "DELETE" => Behaviour::json(204, ""),
        "GET" if path == "/v2/" => Behaviour::json(200, "{}"),
        _ => Behaviour::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#),
    });
    let (code, err) = publish_with(&src, &dest.host, "2s", &[("MULTIARCH_RETRIES", "5")]);
    assert_eq!(code, Some(75), "{err}");
    let error = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        error.contains(&format!(
            "to {}/app: the destination {} took all ",
            dest.host, dest.host
        )),
        "{err}"
    );
    assert!(
        error.ends_with(
            "bytes of the upload and did not answer within 3 s (MULTIARCH_REQUEST_TIMEOUT plus 1 s per MiB); it was not retried"
        ),
        "{err}"
    );
    assert!(
        !dest
            .seen()
            .iter()
            .any(|s| s.path.contains("/manifests/1") && s.method == "PUT"),
        "no tag moved"
    );
}
