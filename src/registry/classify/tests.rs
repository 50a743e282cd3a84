//! Statuses, codes and transport verdicts → exit codes and messages, each said once.

use super::super::redirect::Via;
use super::*;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

fn reply_of(status: u16, body: &str, plain: bool) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        headers: HeaderMap::new(),
        body: body.as_bytes().to_vec(),
        plain,
        known: false,
        via: None,
    }
}

/// The same from a host that answered something else before.
fn later(status: u16, body: &str, plain: bool) -> Reply {
    Reply {
        known: true,
        ..reply_of(status, body, plain)
    }
}

fn op(action: Action) -> Op<'static> {
    Op {
        action,
        at: "r.example/app:1",
        host: "r.example",
        registry: "r.example",
        scope: "repository:app:pull".into(),
        hosts_from: "the registry host in MULTIARCH_IMAGE",
        path: Some("app"),
        ecr: false,
    }
}

#[test]
fn statuses_and_codes_pick_the_exit_code() {
    let denied =
        r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
    for (status, body, action, plain, code) in [
        (401, "", Action::Fetch, false, 5),
        (403, denied, Action::PushManifest, false, 5),
        (503, "", Action::Fetch, false, 75),
        (429, "", Action::Fetch, false, 75),
        (
            400,
            r#"{"errors":[{"code":"TAG_INVALID","message":"tag invalid"}]}"#,
            Action::PushManifest,
            false,
            4,
        ),
        (
            400,
            "Client sent an HTTP request to an HTTPS server.",
            Action::Fetch,
            true,
            2,
        ),
        (400, "", Action::Fetch, false, 1),
        (418, "", Action::Fetch, false, 1),
        (400, "", Action::PushManifest, false, 4),
        (
            400,
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#,
            Action::PushManifest,
            true,
            4,
        ),
        (404, denied, Action::CheckTarget, false, 5),
    ] {
        let e = reply(&reply_of(status, body, plain), &op(action), None);
        assert_eq!(e.exit_code(), code, "{status} {action:?}: {e}");
    }
    let e = reply(
        &reply_of(403, denied, false),
        &op(Action::PushManifest),
        Some(&Origin::CiRegistry),
    );
    assert!(e.to_string().contains("DENIED: requested access"), "{e}");
    assert!(
        e.to_string()
            .contains("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
        "{e}"
    );
}

/// A login names no repository: its refusal is of the credentials, said so, not of a repository.
#[test]
fn a_refused_login_is_worded_for_the_credentials_not_a_repository() {
    let e = reply(
        &reply_of(401, "", false),
        &op(Action::Login),
        Some(&Origin::Explicit),
    );
    assert_eq!(e.exit_code(), 5);
    assert_eq!(
        e.to_string(),
        "logging in to r.example: the registry refused the credentials (HTTP 401 Unauthorized; credentials from MULTIARCH_USERNAME/MULTIARCH_PASSWORD)\n  hint: check the credential from MULTIARCH_USERNAME/MULTIARCH_PASSWORD for r.example: a login asks for no repository, so the credential itself is not taken (wrong, expired or revoked)"
    );
    assert!(!e.to_string().contains("repository;"), "{e}");
}

/// A host that does not resolve is sent back to where the command's hosts were named.
#[test]
fn an_unknown_host_is_checked_where_it_was_named() {
    let at = Op {
        hosts_from: "the host given to multiarch login",
        ..op(Action::Login)
    };
    let e = failure(Failure::UnknownHost("typo.example".into()).into(), &at).error();
    assert_eq!(
        e.to_string(),
        "cannot reach typo.example: the name does not resolve (DNS: no such host)\n  hint: check the host given to multiarch login"
    );
}

#[test]
fn a_repository_the_registry_does_not_know_fails_a_push_as_misconfiguration() {
    let unknown = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'dest' does not exist in the registry with id '123456789012'"}]}"#;
    for action in [
        Action::CheckTarget,
        Action::UploadBlob,
        Action::MountBlob,
        Action::PushManifest,
    ] {
        let e = reply(&reply_of(404, unknown, false), &op(action), None);
        assert_eq!(e.exit_code(), 2, "{action:?}: {e}");
    }
    let ecr = Op {
        action: Action::CheckTarget,
        at: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dest",
        host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        scope: "repository:dest:pull,push".into(),
        hosts_from: "the registry host in MULTIARCH_IMAGE",
        path: Some("dest"),
        ecr: true,
    };
    let e = reply(&reply_of(404, unknown, false), &ecr, None);
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        "checking push access to 123456789012.dkr.ecr.eu-west-1.amazonaws.com/dest: the repository dest does not exist (HTTP 404 Not Found, NAME_UNKNOWN: The repository with name 'dest' does not exist in the registry with id '123456789012')"
    );
    assert!(
        e.to_string()
            .contains("aws ecr create-repository --repository-name dest --region eu-west-1"),
        "{e}"
    );
    // Reading is not pushing (a source not there yet is waited for), and a bare 404 says
    // nothing about the repository.
    let e = reply(&reply_of(404, unknown, false), &op(Action::Fetch), None);
    assert_eq!(e.exit_code(), 1, "{e}");
    let e = reply(&reply_of(404, "", false), &op(Action::UploadBlob), None);
    assert_eq!(
        e.to_string(),
        "uploading blob to r.example/app:1: the registry answered HTTP 404 Not Found"
    );
}

#[test]
fn misconfiguration_is_final_and_outages_are_retried() {
    for (f, code) in [
        (Failure::UnknownHost("typo.example".into()), 2),
        (Failure::NotTls, 2),
        (Failure::Untrusted("UnknownIssuer".into()), 2),
        (Failure::BadUrl("bad port".into()), 2),
        (Failure::TooLarge(10), 4),
        (
            Failure::PlainHttp {
                host: "s3.example".into(),
                sent: Sent::Redirect,
                by: "r.example".into(),
            },
            1,
        ),
    ] {
        match failure(f.into(), &op(Action::Fetch)) {
            Failed::Final(e) => assert_eq!(e.exit_code(), code, "{e}"),
            _ => panic!("final"),
        }
    }
    match failure(
        Failure::Transient("connection refused".into()).into(),
        &op(Action::Token),
    ) {
        Failed::Transient(error) => {
            assert_eq!(error.exit_code(), 75);
            assert!(
                error
                    .to_string()
                    .contains("the token service r.example of r.example"),
                "{error}"
            );
        }
        _ => panic!("transient"),
    }
}

fn redirected(to: &str, failure: Failure) -> Unanswered {
    elsewhere(to, Sent::Redirect, failure)
}

fn elsewhere(to: &str, sent: Sent, failure: Failure) -> Unanswered {
    Unanswered {
        failure,
        via: Some(Via {
            from: "r.example".into(),
            to: to.into(),
            sent,
        }),
    }
}

#[test]
fn a_bare_400_is_a_tls_port_only_before_the_host_answered_anything_else() {
    let html = "<html><body><h1>400 Bad Request</h1></body></html>";
    let e = reply(&reply_of(400, html, true), &op(Action::Fetch), None);
    assert_eq!(e.exit_code(), 2, "{e}");
    let e = reply(&later(400, html, true), &op(Action::PushManifest), None);
    assert_eq!(e.exit_code(), 4, "{e}");
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        "pushing to r.example/app:1: the registry refused the manifest (HTTP 400 Bad Request)"
    );
    let e = reply(&later(400, html, true), &op(Action::Fetch), None);
    assert_eq!(e.exit_code(), 1, "{e}");
    assert_eq!(
        e.to_string(),
        "fetching manifest r.example/app:1: the registry answered HTTP 400 Bad Request"
    );
}

#[test]
fn answers_from_where_a_location_or_redirect_led_name_that_host_and_are_not_about_credentials() {
    let mut r = reply_of(401, "", false);
    r.via = Some(Via {
        from: "r.example".into(),
        to: "up.example:81".into(),
        sent: Sent::Location,
    });
    let e = reply(&r, &op(Action::UploadBlob), Some(&Origin::Explicit));
    assert_eq!(e.exit_code(), 1, "{e}");
    assert_eq!(
        e.to_string(),
        "uploading blob to r.example/app:1: up.example:81 answered HTTP 401 Unauthorized (where r.example's upload Location points); no credentials are sent there, only to r.example"
    );
    r.status = StatusCode::SERVICE_UNAVAILABLE;
    let e = reply(&r, &op(Action::UploadBlob), None);
    assert_eq!(e.exit_code(), 75, "{e}");
    match failure(
        Failure::PlainHttp {
            host: "up.example".into(),
            sent: Sent::Location,
            by: "r.example".into(),
        }
        .into(),
        &op(Action::UploadBlob),
    ) {
        Failed::Final(e) => assert_eq!(
            e.to_string(),
            "uploading blob to r.example/app:1: r.example's upload Location points to plain HTTP at up.example, which is not listed in MULTIARCH_INSECURE_REGISTRIES; nothing was sent there"
        ),
        _ => panic!("final"),
    }
    match failure(
        elsewhere(
            "up.example:81",
            Sent::Location,
            Failure::Transient("connection refused".into()),
        ),
        &op(Action::UploadBlob),
    ) {
        Failed::Transient(error) => assert!(
            error.to_string().starts_with(
                "uploading blob to r.example/app:1: connection refused at up.example:81, where r.example's upload Location points\n"
            ),
            "{error}"
        ),
        _ => panic!("transient"),
    }
}

#[test]
fn failures_after_a_redirect_name_the_host_that_failed_and_who_sent_us_there() {
    let at = "s3.example:443, where r.example redirected";
    for (f, code, what, not) in [
        (
            redirected("s3.example:443", Failure::Untrusted("UnknownIssuer".into())),
            2,
            "TLS connection to s3.example:443 (where r.example redirected) refused".into(),
            "",
        ),
        (
            redirected("https://r.example", Failure::NotTls),
            2,
            "cannot reach https://r.example, where r.example redirected: it answered the TLS handshake in plain HTTP".into(),
            "list it in MULTIARCH_INSECURE_REGISTRIES",
        ),
        (
            redirected("s3.example:443", Failure::UnknownHost("s3.example".into())),
            2,
            "cannot reach s3.example, where r.example redirected: the name does not resolve".into(),
            "MULTIARCH_IMAGE",
        ),
        (
            redirected("s3.example:443", Failure::BadUrl("bad".into())),
            1,
            format!("a redirect to {at} that cannot be requested"),
            "host:port",
        ),
        (
            redirected("s3.example:443", Failure::TooLarge(10)),
            4,
            format!("{at} sent more than the 10 bytes"),
            "",
        ),
    ] {
        match failure(f, &op(Action::FetchConfig)) {
            Failed::Final(e) => {
                assert_eq!(e.exit_code(), code, "{e}");
                assert!(e.to_string().contains(&what), "{e}");
                assert!(not.is_empty() || !e.to_string().contains(not), "{e}");
            }
            _ => panic!("final"),
        }
    }
    match failure(
        redirected(
            "127.0.0.1:1",
            Failure::Transient("connection refused".into()),
        ),
        &op(Action::FetchBlob),
    ) {
        Failed::Transient(error) => {
            assert_eq!(error.exit_code(), 75);
            assert!(
                error
                    .to_string()
                    .contains("connection refused at 127.0.0.1:1, where r.example redirected"),
                "{error}"
            );
        }
        _ => panic!("transient"),
    }
    match failure(
        redirected("127.0.0.1:1", Failure::Transient("timed out".into())),
        &op(Action::Token),
    ) {
        Failed::Transient(error) => assert!(
            error.to_string().contains(
                "timed out at 127.0.0.1:1, where the token service r.example of r.example redirected"
            ),
            "{error}"
        ),
        _ => panic!("transient"),
    }
}

#[test]
fn a_broken_redirect_is_the_registrys_fault_shown_cleaned_and_bounded() {
    let location = format!("http://[::1:bad\t\u{7f}{}", "x".repeat(500));
    let cases = [
        (
            Failure::BadRedirect {
                by: "r.example".into(),
                location,
            },
            "a redirect from r.example to an unusable location \"http://[::1:bad",
        ),
        (
            Failure::TooManyRedirects {
                from: "r.example".into(),
                hops: 6,
                last: "r.example".into(),
            },
            "6 redirects in a row from r.example, the last to r.example (at most 5 are followed)",
        ),
    ];
    for (f, what) in cases {
        match failure(f.into(), &op(Action::Fetch)) {
            Failed::Final(e) => {
                assert_eq!(e.exit_code(), 1, "{e}");
                let text = e.to_string();
                assert!(text.contains(what), "{text}");
                assert!(!text.contains('\t') && !text.contains('\u{7f}'), "{text}");
                assert!(text.len() < 500, "{text}");
            }
            _ => panic!("final"),
        }
    }
}

#[test]
fn server_text_is_cleaned_and_bounded() {
    assert_eq!(
        clean("a\nMULTIARCH_REF=evil\x1b[31m"),
        "a MULTIARCH_REF=evil [31m"
    );
    assert_eq!(clean(&"x".repeat(500)).chars().count(), 201);
    let r = reply_of(401, r#"{"details":"bad\ncredentials"}"#, false);
    assert_eq!(service_reason(&r), "HTTP 401 Unauthorized: bad credentials");
}
