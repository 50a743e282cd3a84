//! Reports name only what exists: when target tags are refused, stdout and the dotenv name the
//! tags that hold the index and the `repository@digest` of each destination that holds it — and
//! nothing the registry does not hold (with one tag to move, the index is pushed under the tag
//! alone, so a refused tag leaves no index at all). A proxy in front of the real registry refuses
//! the tag PUTs; skopeo checks what is there.

use std::time::Duration;

use crate::support::fixtures::{push_two_arches, Kind};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{multiarch, sha256, stderr_of, vars, Registry};

/// A proxy refusing the PUT of each of `paths` (`app/manifests/latest`) as a protected tag.
fn refusing(reg: &Registry, paths: &'static [&'static str]) -> Proxy {
    refusing_with(reg, paths, 403)
}

/// The same with HTTP `code` (some registries answer a protected tag 400 or 405, with `DENIED`).
fn refusing_with(reg: &Registry, paths: &'static [&'static str], code: u16) -> Proxy {
    Proxy::start(&reg.host, Duration::ZERO, move |req, _| {
        if req.method == "PUT" && paths.iter().any(|p| req.path == format!("/v2/{p}")) {
            Fault::Json {
                code,
                body: r#"{"errors":[{"code":"DENIED","message":"protected tag"}]}"#.into(),
            }
        } else {
            Fault::Pass
        }
    })
}

/// Runs `multiarch push` publishing `tags` (from `app:latest-<arch>`) to `images` (paths behind
/// `proxy`); exit code, stdout, stderr and the dotenv.
fn push(proxy: &Proxy, images: &[&str], tags: &str) -> (Option<i32>, String, String, String) {
    push_with(proxy, images, tags, &[])
}

/// The same with `more` variables.
fn push_with(
    proxy: &Proxy,
    images: &[&str],
    tags: &str,
    more: &[(&str, &str)],
) -> (Option<i32>, String, String, String) {
    let work = tempfile::tempdir().unwrap();
    let images: Vec<String> = images
        .iter()
        .map(|i| format!("{}/{i}", proxy.host))
        .collect();
    let mut env = vars(&[
        ("MULTIARCH_IMAGE", &images.join(",")),
        ("MULTIARCH_TAGS", tags),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{}/app:latest-{{arch}}", proxy.host),
        ),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_DOTENV", "multiarch.env"),
        ("MULTIARCH_TIMEOUT", "0"),
    ]);
    env.extend(vars(more));
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    let err = stderr_of(&out);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        err,
        dotenv,
    )
}

/// The dotenv's value of `name`.
fn value<'a>(dotenv: &'a str, name: &str) -> &'a str {
    dotenv
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {dotenv}"))
}

#[test]
fn a_single_refused_tag_leaves_no_index_and_the_report_names_none() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = refusing(&reg, &["app/manifests/latest"]);
    let (code, stdout, err, dotenv) = push(&proxy, &["app"], "latest");
    assert_eq!(code, Some(5), "{err}");
    assert_eq!(stdout, "");
    // No index is in the registry, so the report names no digest; the error names the one built.
    assert_eq!(value(&dotenv, "MULTIARCH_DIGEST"), "");
    let digest = err
        .split("this run stored no index ")
        .nth(1)
        // sha256: and 64 hex digits, then the colon that ends the clause.
        .and_then(|rest| rest.get(..71))
        .unwrap_or_else(|| panic!("no index named in {err}"))
        .to_string();
    assert!(
        reg.raw(&format!("app@{digest}")).is_none(),
        "the index was never stored"
    );
    assert_eq!(value(&dotenv, "MULTIARCH_REF"), "");
    assert_eq!(value(&dotenv, "MULTIARCH_REFS"), "");
    assert_eq!(value(&dotenv, "MULTIARCH_TAGGED"), "");
    assert!(
        err.contains(&format!("1 of 1 target tag(s) did not move; this run stored no index {digest}: no tag moved and it was not pushed under its digest")),
        "{err}"
    );
    assert!(!err.contains("is in the registry"), "{err}");
    assert!(err.contains("the tag did not move"), "{err}");
    // Its warning names the tag once (the refusal opens with it).
    let warned = err
        .lines()
        .find(|l| l.contains("the tag did not move"))
        .unwrap();
    let tag = format!("{}/app:latest", proxy.host);
    assert_eq!(warned.matches(&tag).count(), 1, "{warned}");
    assert!(err.contains("credentials from anonymous"), "{err}");
}

/// A protected tag answered 405 with `DENIED` is a refused credential as a 403 is: the error
/// names where the credential came from, not "anonymous".
#[test]
fn a_tag_refused_with_another_status_and_denied_names_the_credential_used() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = refusing_with(&reg, &["app/manifests/latest"], 405);
    let (code, _, err, _) = push_with(
        &proxy,
        &["app"],
        "latest",
        &[
            ("MULTIARCH_USERNAME", "ci"),
            ("MULTIARCH_PASSWORD", "not-a-real-secret"),
        ],
    );
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains("(HTTP 405 Method Not Allowed, DENIED: protected tag; credentials from MULTIARCH_USERNAME/MULTIARCH_PASSWORD)"),
        "{err}"
    );
    assert!(!err.contains("not-a-real-secret"), "{err}");
}

#[test]
fn with_two_destinations_the_report_names_only_the_one_that_holds_the_index() {
    for (refused, holds) in [("mirror", "app"), ("app", "mirror")] {
        let reg = Registry::start();
        push_two_arches(&reg, "app", Kind::Oci);
        let paths: &'static [&'static str] = match refused {
            "mirror" => &["mirror/manifests/latest"],
            _ => &["app/manifests/latest"],
        };
        let proxy = refusing(&reg, paths);
        let (code, stdout, err, dotenv) = push(&proxy, &["app", "mirror"], "latest");
        assert_eq!(code, Some(5), "{err}");
        let digest = value(&dotenv, "MULTIARCH_DIGEST").to_string();
        let (held, gone) = (
            format!("{}/{holds}", proxy.host),
            format!("{}/{refused}", proxy.host),
        );
        assert_eq!(stdout, format!("{held}:latest@{digest}\n"));
        assert_eq!(
            sha256(&reg.raw(&format!("{holds}:latest")).unwrap()),
            digest
        );
        assert!(reg.raw(&format!("{refused}@{digest}")).is_none());
        // MULTIARCH_REF is the first destination's, or empty when it does not hold the index.
        let first = if holds == "app" {
            format!("{held}@{digest}")
        } else {
            String::new()
        };
        assert_eq!(value(&dotenv, "MULTIARCH_REF"), first, "{dotenv}");
        assert_eq!(value(&dotenv, "MULTIARCH_REFS"), format!("{held}@{digest}"));
        assert_eq!(value(&dotenv, "MULTIARCH_TAGGED"), format!("{held}:latest"));
        assert!(
            err.contains(&format!("1 of 2 target tag(s) did not move; the index {digest} is in the registry and these hold it: {held}:latest; {gone} do(es) not hold it: no tag moved there and it was never pushed there under its digest")),
            "{err}"
        );
    }
}

#[test]
fn two_refused_tags_of_one_destination_leave_the_index_by_digest_and_say_so() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = refusing(&reg, &["app/manifests/latest", "app/manifests/1"]);
    let (code, _, err, dotenv) = push(&proxy, &["app"], "latest,1");
    assert_eq!(code, Some(5), "{err}");
    let digest = value(&dotenv, "MULTIARCH_DIGEST").to_string();
    let repo = format!("{}/app", proxy.host);
    // Several tags to move: the index went in by digest first, and is there.
    assert_eq!(sha256(&reg.raw(&format!("app@{digest}")).unwrap()), digest);
    assert_eq!(value(&dotenv, "MULTIARCH_REF"), format!("{repo}@{digest}"));
    assert_eq!(value(&dotenv, "MULTIARCH_TAGGED"), "");
    assert!(
        err.contains(&format!("2 of 2 target tag(s) did not move; the index {digest} is in {repo} under its digest, but no tag holds it")),
        "{err}"
    );
}
