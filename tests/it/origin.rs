//! Credentials only where the registry lives: an upload `Location` — of an upload session, of a
//! mount answered with a session, of the push-access check — that names another host is followed
//! without the registry's credentials (or refused, on plain HTTP not listed), whatever its form.
//! A hand-made destination registry (the hostile server) sends the Location; a second one, the
//! capture host, records every request's `Authorization` header and must see none.

use crate::support;

use std::collections::BTreeMap;

use crate::support::hostile::{Behaviour, Hostile, Image, Seen};
use crate::support::vars;

const PASSWORD: &str = "job-token-5f3c9a";

/// A registry whose upload sessions for `app` are at `location` and which also serves `image` as
/// `src:1-amd64`.
fn destination(location: String, image: Image) -> Hostile {
    Hostile::start(move |method, path| {
        let blob = |digest: &str| path == format!("/v2/src/blobs/{digest}");
        match method {
            "GET" | "HEAD" if path.starts_with("/v2/src/manifests/") => image.manifest(),
            "GET" if blob(&image.config_digest) => image.config(),
            "GET" if blob(&image.layer_digest) => image.layer(),
            "POST" if path.starts_with("/v2/app/blobs/uploads/") => Behaviour::Answer {
                status: 202,
                headers: vec![("Location".into(), location.clone())],
                body: Vec::new(),
            },
            "PUT" if path.starts_with("/v2/app/manifests/") => Behaviour::json(201, "{}"),
            "PUT" if path.starts_with("/v2/app/blobs/uploads/") => Behaviour::json(201, "{}"),
            "DELETE" if path.starts_with("/v2/app/blobs/uploads/") => Behaviour::json(204, ""),
            _ => Behaviour::json(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#),
        }
    })
}

/// A host that takes uploads (PUT) and gives sessions back (DELETE), recording what it gets.
fn capture() -> Hostile {
    Hostile::start(|method, _| match method {
        "PUT" => Behaviour::json(201, "{}"),
        "DELETE" => Behaviour::json(204, ""),
        _ => Behaviour::json(404, "{}"),
    })
}

struct Run {
    /// The destination registry's host.
    dest: String,
    code: Option<i32>,
    err: String,
    destination: Vec<Seen>,
    capture: Vec<Seen>,
}

/// Publishes `dest/app:1` from `src:1-amd64` — on the destination itself (`mount`: mounted,
/// answered with a session) or on a registry of its own (streamed) — with the destination's
/// upload sessions at `location` (`{capture}` is replaced by the capture host), the capture host
/// listed as insecure or not.
fn publish(location: &str, mount: bool, capture: &Hostile, list_capture: bool) -> Run {
    let image = || Image::amd64_with_layer(b"layer bytes of the amd64 image".to_vec());
    let location = location.replace("{capture}", &capture.host);
    let dest = destination(location, image());
    // A source registry of its own serves the same image under the same paths.
    let source = destination(String::new(), image());
    let from = if mount { &dest.host } else { &source.host };
    let mut listed = vec![dest.host.clone(), source.host.clone()];
    if list_capture {
        listed.push(capture.host.clone());
    }
    let env: BTreeMap<String, String> = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", dest.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{from}/src:{{tag}}-{{arch}}"),
        ),
        ("MULTIARCH_INSECURE_REGISTRIES", &listed.join(",")),
        ("MULTIARCH_USERNAME", "job"),
        ("MULTIARCH_PASSWORD", PASSWORD),
        ("MULTIARCH_TIMEOUT", "0"),
        ("MULTIARCH_RETRIES", "1"),
    ]);
    let (code, err, _) = support::run(&env, &["push"]);
    assert!(!err.contains(PASSWORD), "{err}");
    Run {
        dest: dest.host.clone(),
        code,
        err,
        destination: dest.seen(),
        capture: capture.seen(),
    }
}

fn with_credentials(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter(|s| s.authorization.is_some())
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

#[test]
fn a_location_on_another_host_gets_the_upload_without_credentials_whatever_its_form() {
    for (location, mount) in [
        ("http://{capture}/upload/u1?_state=s1", false),
        ("//{capture}/upload/u2?_state=s2", false),
        ("http://{capture}/upload/u3?_state=s3", true),
    ] {
        let capture = capture();
        let run = publish(location, mount, &capture, true);
        assert_eq!(run.code, Some(0), "{location}: {}", run.err);
        assert_eq!(
            with_credentials(&run.capture),
            Vec::<String>::new(),
            "{location}"
        );
        // The config and the layer were uploaded there (state token kept, digest added), and
        // the push-access check's session was given back there.
        let puts: Vec<&Seen> = run.capture.iter().filter(|s| s.method == "PUT").collect();
        assert_eq!(puts.len(), 2, "{location}: {:#?}", run.capture);
        for put in puts {
            assert!(
                put.path.contains("_state=s") && put.path.contains("&digest=sha256%3A"),
                "{}",
                put.path
            );
        }
        assert!(
            run.capture.iter().any(|s| s.method == "DELETE"),
            "{location}"
        );
        // The registry itself got them on every request.
        assert_eq!(
            with_credentials(&run.destination).len(),
            run.destination.len(),
            "{location}: {:#?}",
            run.destination
        );
        if mount {
            assert!(
                run.destination.iter().any(|s| s.path.contains("mount=")),
                "{location}"
            );
        }
        // Said once, so a later failure can be read against it.
        assert_eq!(
            run.err.matches("blobs are uploaded to ").count(),
            1,
            "{location}: {}",
            run.err
        );
        assert!(
            run.err
                .contains("upload Location points, without the registry's credentials"),
            "{}",
            run.err
        );
    }
}

#[test]
fn a_location_on_the_registry_itself_keeps_the_credentials_and_its_query() {
    let capture = capture();
    let run = publish("/v2/app/blobs/uploads/u4?_state=s4", false, &capture, true);
    assert_eq!(run.code, Some(0), "{}", run.err);
    assert!(run.capture.is_empty());
    let uploads: Vec<&Seen> = run
        .destination
        .iter()
        .filter(|s| {
            s.method == "PUT"
                && s.path
                    .starts_with("/v2/app/blobs/uploads/u4?_state=s4&digest=")
        })
        .collect();
    assert_eq!(uploads.len(), 2, "{:#?}", run.destination);
    assert!(uploads.iter().all(|s| s.authorization.is_some()));
}

#[test]
fn a_location_on_plain_http_not_listed_is_refused_and_nothing_goes_there() {
    let capture = capture();
    let run = publish(
        "http://{capture}/upload/u5?_state=s5",
        false,
        &capture,
        false,
    );
    assert_eq!(run.code, Some(1), "{}", run.err);
    assert!(
        run.err.contains(&format!(
            "'s upload Location points to plain HTTP at {}, which is not listed in MULTIARCH_INSECURE_REGISTRIES; nothing was sent there",
            capture.host
        )),
        "{}",
        run.err
    );
    assert_eq!(capture.requests(), 0);
}

#[test]
fn a_challenge_from_where_a_location_points_is_not_answered_with_the_registrys_credentials() {
    let realm = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let named = realm.clone();
    let capture = Hostile::start(move |_, path| {
        if path.starts_with("/token") {
            return Behaviour::json(200, r#"{"token":"stolen"}"#);
        }
        Behaviour::challenge(&named.lock().unwrap())
    });
    *realm.lock().unwrap() = format!("http://{}/token", capture.host);
    let run = publish("http://{capture}/upload/u6", false, &capture, true);
    assert_eq!(run.code, Some(1), "{}", run.err);
    assert!(
        run.err.contains(&format!(
            "{} answered HTTP 401 Unauthorized (where {}'s upload Location points); no credentials are sent there, only to {}",
            capture.host, run.dest, run.dest
        )),
        "{}",
        run.err
    );
    assert_eq!(with_credentials(&run.capture), Vec::<String>::new());
    assert!(
        !run.capture.iter().any(|s| s.path.starts_with("/token")),
        "{:#?}",
        run.capture
    );
}

#[test]
fn a_relative_or_scheme_relative_token_realm_is_named_and_never_asked() {
    let capture = capture();
    for realm in ["/token", "token", "//{capture}/token"] {
        let realm = realm.replace("{capture}", &capture.host);
        let registry = Hostile::start({
            let realm = realm.clone();
            move |_, _| Behaviour::challenge(&realm)
        });
        let env: BTreeMap<String, String> = vars(&[
            ("MULTIARCH_IMAGE", &format!("{}/app", registry.host)),
            ("MULTIARCH_TAGS", "1"),
            ("MULTIARCH_PLATFORMS", "linux/amd64"),
            (
                "MULTIARCH_INSECURE_REGISTRIES",
                &format!("{},{}", registry.host, capture.host),
            ),
            ("MULTIARCH_USERNAME", "job"),
            ("MULTIARCH_PASSWORD", PASSWORD),
            ("MULTIARCH_TIMEOUT", "0"),
            ("MULTIARCH_RETRIES", "1"),
        ]);
        let (code, err, _) = support::run(&env, &["push"]);
        assert!(!err.contains(PASSWORD), "{err}");
        assert_eq!(code, Some(1), "{realm}: {err}");
        assert!(
            err.contains(&format!(
                "{} asks for a bearer token from the token service \"{realm}\", which is not an absolute http(s) URL",
                registry.host
            )),
            "{realm}: {err}"
        );
        assert!(
            err.contains("the registry's token realm needs fixing"),
            "{err}"
        );
        assert!(
            !registry.seen().iter().any(|s| s.path.contains("token")),
            "{realm}: {:#?}",
            registry.seen()
        );
    }
    assert_eq!(capture.requests(), 0, "{:#?}", capture.seen());
}
