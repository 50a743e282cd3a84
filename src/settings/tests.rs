//! Settings resolution as a whole value: flags × variables × GitLab defaults.

use super::access::{session_name, DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRIES};
use super::*;
use crate::model::SourceOrigin;
use crate::secret::Secret;

/// Resolves with flags `given` (no spec): the plan.
fn resolve_flags(given: &[(&'static str, &str)], env: &Env) -> Result<Plan, Error> {
    resolve(&Given::of(given), env, None).map(|(plan, _)| plan)
}

/// How the same run's results would be shown.
fn shown(given: &[(&'static str, &str)], env: &Env) -> Presentation {
    resolve(&Given::of(given), env, None).unwrap().1
}

fn access(given: &[(&'static str, &str)], env: &Env) -> Result<Access, Error> {
    access::access(&Inputs::new(&Given::of(given), env))
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A GitLab job on the default branch of `g/app`.
fn gitlab() -> Env {
    env(&[
        ("GITLAB_CI", "true"),
        ("CI_REGISTRY", "registry.gitlab.example"),
        ("CI_REGISTRY_IMAGE", "registry.gitlab.example/g/app"),
        ("CI_REGISTRY_USER", "gitlab-ci-token"),
        ("CI_REGISTRY_PASSWORD", "job-token-secret"),
        ("CI_DEFAULT_BRANCH", "main"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_REF_SLUG", "main"),
        ("CI_COMMIT_SHA", "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"),
        ("CI_PROJECT_URL", "https://gitlab.example/g/app"),
        ("CI_COMMIT_TIMESTAMP", "2026-11-27T03:38:34+00:00"),
    ])
}

fn with(mut base: Env, extra: &[(&str, &str)]) -> Env {
    for (k, v) in extra {
        base.insert(k.to_string(), v.to_string());
    }
    base
}

/// (extra variables, expected text) rows.
type Rows<'a> = &'a [(&'a [(&'a str, &'a str)], &'a str)];

fn targets(p: &Plan) -> Vec<String> {
    p.targets.iter().map(|t| t.to_string()).collect()
}

fn sources(p: &Plan) -> Vec<String> {
    p.sources.iter().map(|s| s.reference.to_string()).collect()
}

#[test]
fn tags_follow_gitlab_defaults() {
    let cases: &[(&str, Env, &[&str])] = &[
        ("default branch", gitlab(), &["latest"]),
        (
            "git tag",
            with(
                gitlab(),
                &[("CI_COMMIT_TAG", "1.4.2"), ("CI_COMMIT_BRANCH", "")],
            ),
            &["1.4.2"],
        ),
        (
            "feature branch",
            with(
                gitlab(),
                &[
                    ("CI_COMMIT_BRANCH", "feat/x"),
                    ("CI_COMMIT_REF_SLUG", "feat-x"),
                ],
            ),
            &["feat-x"],
        ),
        (
            "merge request",
            with(
                gitlab(),
                &[("CI_COMMIT_BRANCH", ""), ("CI_COMMIT_REF_SLUG", "feat-x")],
            ),
            &["feat-x"],
        ),
        (
            "variable list",
            with(gitlab(), &[("MULTIARCH_TAGS", "latest, 1.4.2,1.4,latest")]),
            &["latest", "1.4.2", "1.4"],
        ),
        (
            "empty variable is unset",
            with(gitlab(), &[("MULTIARCH_TAGS", "")]),
            &["latest"],
        ),
    ];
    for (name, e, want) in cases {
        let plan = resolve_flags(&[], e).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(plan.tags, *want, "{name}");
    }
}

/// Semver names the sources by the version; a git tag that is not it (`v2.0.1`) is kept for the
/// hint when they are missing, unless the source template does not use `{tag}`.
#[test]
fn semver_keeps_a_git_tag_that_is_not_the_version_for_the_hint() {
    let release = |tag: &str, extra: &[(&str, &str)]| {
        let mut e = with(
            gitlab(),
            &[
                ("CI_COMMIT_TAG", tag),
                ("CI_COMMIT_BRANCH", ""),
                ("MULTIARCH_TAGS", "semver"),
            ],
        );
        e = with(e, extra);
        resolve_flags(&[], &e).unwrap()
    };
    let p = release("v2.0.1", &[]);
    assert_eq!(sources(&p)[0], "registry.gitlab.example/g/app:2.0.1-amd64");
    assert_eq!(
        p.semver_tag,
        Some(SemverTag {
            git_tag: "v2.0.1".into(),
            version: "2.0.1".into()
        })
    );
    assert_eq!(release("2.0.1", &[]).semver_tag, None);
    let own = [("MULTIARCH_SOURCE_TEMPLATE", "{image}:build-{arch}")];
    assert_eq!(release("v2.0.1", &own).semver_tag, None);
    let listed = with(
        gitlab(),
        &[("CI_COMMIT_TAG", "v2.0.1"), ("MULTIARCH_TAGS", "v2.0.1")],
    );
    assert_eq!(resolve_flags(&[], &listed).unwrap().semver_tag, None);
}

#[test]
fn flags_beat_variables_beat_gitlab() {
    let e = with(
        gitlab(),
        &[
            ("MULTIARCH_TAGS", "from-var"),
            ("MULTIARCH_IMAGE", "other.example/x"),
        ],
    );
    let plan = resolve_flags(&[], &e).unwrap();
    assert_eq!(targets(&plan), ["other.example/x:from-var"]);
    assert!(shown(&[], &e)
        .origins
        .contains(&("tags", Origin::Variable("MULTIARCH_TAGS"))));
    let plan = resolve_flags(&[("tags", "from-flag")], &e).unwrap();
    assert_eq!(targets(&plan), ["other.example/x:from-flag"]);
    assert!(shown(&[("tags", "from-flag")], &e)
        .origins
        .contains(&("tags", Origin::Flag("tags"))));
    assert!(shown(&[], &gitlab())
        .origins
        .contains(&("image", Origin::GitLab("CI_REGISTRY_IMAGE"))));
}

#[test]
fn sources_come_from_the_template_and_first_tag() {
    type Expect<'a> = &'a [(&'a [(&'a str, &'a str)], &'a [&'a str])];
    let cases: Expect = &[
        (
            &[],
            &[
                "registry.gitlab.example/g/app:latest-amd64",
                "registry.gitlab.example/g/app:latest-arm64",
            ],
        ),
        (
            &[
                ("MULTIARCH_TAGS", "1.4.2,latest"),
                (
                    "MULTIARCH_PLATFORMS",
                    "linux/amd64,linux/arm/v7,linux/arm64/v8",
                ),
            ],
            &[
                "registry.gitlab.example/g/app:1.4.2-amd64",
                "registry.gitlab.example/g/app:1.4.2-armv7",
                "registry.gitlab.example/g/app:1.4.2-arm64",
            ],
        ),
        (
            &[("MULTIARCH_SOURCE_TEMPLATE", "{image}:{tag}-{os}-{arch}")],
            &[
                "registry.gitlab.example/g/app:latest-linux-amd64",
                "registry.gitlab.example/g/app:latest-linux-arm64",
            ],
        ),
        (
            &[
                (
                    "MULTIARCH_SOURCE_TEMPLATE",
                    "registry.gitlab.example/g/app:build-{arch}",
                ),
                ("MULTIARCH_PLATFORMS", "linux/aarch64"),
            ],
            &["registry.gitlab.example/g/app:build-arm64"],
        ),
    ];
    for (extra, want) in cases {
        let plan = resolve_flags(&[], &with(gitlab(), extra)).unwrap();
        assert_eq!(sources(&plan), *want, "{extra:?}");
    }
}

#[test]
fn rejects_bad_values_with_exit_2_and_a_hint() {
    let cases: Rows = &[
        (
            &[("MULTIARCH_PLATFORMS", "linux/amd64,arm64")],
            "linux/arm/v7",
        ),
        (
            &[("MULTIARCH_PLATFORMS", "linux/amd64,linux/x86_64")],
            "listed twice",
        ),
        (&[("MULTIARCH_PLATFORMS", " , ")], "no platform"),
        (
            &[("MULTIARCH_SOURCE_TEMPLATE", "{image}:{tag}-{cpu}")],
            "unknown placeholder {cpu}",
        ),
        (
            &[("MULTIARCH_SOURCE_TEMPLATE", "{image}:{tag")],
            "unknown placeholder",
        ),
        (&[("MULTIARCH_TIMEOUT", "soon")], "90s"),
        (&[("MULTIARCH_FORMAT", "v2s2")], "auto, oci or docker"),
        (&[("MULTIARCH_TAGS", "-bad")], "1.4.2"),
        (
            &[("MULTIARCH_IMAGE", "r.example/app:1")],
            "must not carry a tag",
        ),
        (
            &[("MULTIARCH_IMAGE", "R.example/App")],
            "not an image reference",
        ),
        (&[("MULTIARCH_ALLOW_MISSING", "maybe")], "true or false"),
        (&[("MULTIARCH_ANNOTATIONS", "novalue")], "key=value"),
        (&[("MULTIARCH_OUTPUT", "yaml")], "text or json"),
        (&[("MULTIARCH_USERNAME", "bob")], "MULTIARCH_PASSWORD"),
        (&[("MULTIARCH_RETRIES", "many")], "0 to 20"),
        (&[("MULTIARCH_IMAGE", " , ")], "no repository in the list"),
        (&[("MULTIARCH_AUTH", "iam")], "auto or ecr"),
        (&[("MULTIARCH_REQUEST_TIMEOUT", "0")], "more than 0"),
        (
            &[("MULTIARCH_TIMEOUT", "18446744073709551615")],
            "longer than 24 hours",
        ),
        (
            &[("MULTIARCH_ANNOTATIONS", "a b=c")],
            "the key is empty or has spaces",
        ),
        (
            &[("MULTIARCH_CONTENT_BUDGET", "0")],
            "a budget of 0 bytes can read nothing\n  hint: to skip the check, set MULTIARCH_CONTENT_CHECK=off; to check, give a size such as 256MiB",
        ),
        (
            &[("MULTIARCH_CONTENT_BUDGET", "lots")],
            "not a size\n  hint: a size such as 256MiB, 1GiB, 500MB or 1048576 (bytes); to skip the check, set MULTIARCH_CONTENT_CHECK=off",
        ),
    ];
    for (extra, hint) in cases {
        let e = resolve_flags(&[], &with(gitlab(), extra)).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{extra:?}");
        assert!(e.to_string().contains(hint), "{extra:?}: {e}");
        let named = ["MULTIARCH_USERNAME", "MULTIARCH_SOURCE_TEMPLATE"];
        if !named.contains(&extra[0].0) {
            // The error names the variable the value came from.
            assert!(e.to_string().starts_with(extra[0].0), "{extra:?}: {e}");
        }
    }
}

#[test]
fn errors_name_where_the_value_came_from() {
    let e = resolve_flags(
        &[],
        &with(
            gitlab(),
            &[("CI_COMMIT_TAG", "-bad"), ("CI_COMMIT_BRANCH", "")],
        ),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("CI_COMMIT_TAG"), "{e}");
    assert!(e.to_string().contains("set MULTIARCH_TAGS"), "{e}");
    // A valid 128-character tag makes a source tag too long: the message says so.
    let long = "a".repeat(128);
    let e = resolve_flags(&[("tags", &long)], &gitlab()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("has 134 characters"), "{e}");
    let e = resolve_flags(&[("tags", "-bad")], &gitlab()).unwrap_err();
    assert!(e.to_string().starts_with("--tags"), "{e}");
    let e = log_level(&Given::default(), &env(&[("MULTIARCH_LOG", "verbose")])).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().starts_with("MULTIARCH_LOG"), "{e}");
    assert_eq!(
        log_level(&Given::of(&[("log", "DEBUG")]), &Env::new()).unwrap(),
        "debug"
    );
}

#[test]
fn inspect_views_come_from_flags_or_variables() {
    let (view, _, _) = inspect(&Given::default(), &env(&[("MULTIARCH_RAW", "true")])).unwrap();
    assert_eq!(view, InspectView::Raw);
    let (view, _, _) = inspect(&Given::of(&[("json", "true")]), &Env::new()).unwrap();
    assert_eq!(view, InspectView::Json);
    let e = inspect(
        &Given::of(&[("json", "true")]),
        &env(&[("MULTIARCH_RAW", "1")]),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn outside_gitlab_image_and_tags_are_required() {
    let e = resolve_flags(&[], &Env::new()).unwrap_err();
    assert!(e.to_string().contains("--image"), "{e}");
    let e = resolve_flags(&[("image", "localhost:5000/app")], &Env::new()).unwrap_err();
    assert!(e.to_string().contains("--tags"), "{e}");
    let given = [("image", "localhost:5000/app"), ("tags", "v1")];
    let plan = resolve_flags(&given, &Env::new()).unwrap();
    let show = shown(&given, &Env::new());
    assert_eq!(show.dotenv, None);
    assert!(!show.gitlab);
    assert!(plan.annotations.values.is_empty());
}

#[test]
fn annotations_come_from_ci_and_can_be_overridden_or_removed() {
    let e = with(
        gitlab(),
        &[
            ("CI_COMMIT_TAG", "1.4.2"),
            (
                "MULTIARCH_ANNOTATIONS",
                "org.opencontainers.image.title=app,org.opencontainers.image.created=",
            ),
        ],
    );
    let plan = resolve_flags(
        &[
            ("annotation", "org.opencontainers.image.title=App"),
            ("annotation", "x=a=b"),
        ],
        &e,
    )
    .unwrap();
    let got: Vec<(&str, &str)> = plan
        .annotations
        .values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "org.opencontainers.image.revision",
                "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
            ),
            (
                "org.opencontainers.image.source",
                "https://gitlab.example/g/app"
            ),
            ("org.opencontainers.image.title", "App"),
            ("org.opencontainers.image.version", "1.4.2"),
            ("x", "a=b"),
        ]
    );
}

#[test]
fn gitlab_job_writes_dotenv_and_uses_job_credentials() {
    let plan = resolve_flags(&[], &gitlab()).unwrap();
    let show = shown(&[], &gitlab());
    assert_eq!(show.dotenv, Some(PathBuf::from("multiarch.env")));
    assert!(show.gitlab);
    let (host, user, _) = plan.access.credentials.ci_registry.clone().unwrap();
    assert_eq!(
        (host.as_str(), user.as_str()),
        ("registry.gitlab.example", "gitlab-ci-token")
    );
    assert!(!format!("{:?}", plan.access).contains("job-token-secret"));
    let show = shown(&[], &with(gitlab(), &[("MULTIARCH_DOTENV", "out/m.env")]));
    assert_eq!(show.dotenv, Some(PathBuf::from("out/m.env")));
    let show = shown(&[], &with(gitlab(), &[("MULTIARCH_DOTENV", "none")]));
    assert_eq!(show.dotenv, None, "none switches the report off");
}

#[test]
fn timeout_and_booleans() {
    for (text, secs) in [
        ("0", 0),
        ("90s", 90),
        ("15m", 900),
        ("1h 30m", 5400),
        ("45", 45),
    ] {
        let plan = resolve_flags(&[], &with(gitlab(), &[("MULTIARCH_TIMEOUT", text)])).unwrap();
        assert_eq!(plan.timeout, Duration::from_secs(secs), "{text}");
    }
    assert_eq!(
        resolve_flags(&[], &gitlab()).unwrap().timeout,
        DEFAULT_TIMEOUT
    );
    let plan = resolve_flags(
        &[],
        &with(
            gitlab(),
            &[
                ("MULTIARCH_ALLOW_MISSING", "true"),
                ("MULTIARCH_FORMAT", "OCI"),
            ],
        ),
    )
    .unwrap();
    assert!(plan.allow_missing);
    assert_eq!(plan.format, Format::Oci);
}

#[test]
fn if_complete_is_off_by_default_and_refuses_allow_missing_with_exit_2() {
    assert!(!resolve_flags(&[], &gitlab()).unwrap().if_complete);
    let plan = resolve_flags(&[("if-complete", "true")], &gitlab()).unwrap();
    assert!(plan.if_complete);
    let e = resolve_flags(
        &[],
        &with(
            gitlab(),
            &[
                ("MULTIARCH_IF_COMPLETE", "true"),
                ("MULTIARCH_ALLOW_MISSING", "true"),
            ],
        ),
    )
    .err()
    .unwrap();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        "MULTIARCH_IF_COMPLETE = \"true\" is invalid: it cannot go with --allow-missing / MULTIARCH_ALLOW_MISSING (on as well)\n  hint: choose one: --if-complete publishes only when every platform is there, --allow-missing publishes whatever is there at the deadline"
    );
}

#[test]
fn access_collects_insecure_hosts_and_docker_config_candidates() {
    let e = env(&[
        ("MULTIARCH_INSECURE_REGISTRIES", "a:5000, b"),
        ("DOCKER_CONFIG", "/cfg"),
        ("HOME", "/home/u"),
        ("MULTIARCH_CA_FILE", "/ca.pem"),
    ]);
    let a = access(&[("insecure-registry", "c")], &e).unwrap();
    assert_eq!(a.insecure, ["a:5000", "b", "c"]);
    assert_eq!(a.ca_file, Some(PathBuf::from("/ca.pem")));
    assert_eq!(
        a.credentials.docker_config_files,
        [
            PathBuf::from("/cfg/config.json"),
            PathBuf::from("/home/u/.docker/config.json")
        ]
    );
    assert_eq!(
        (a.retries, a.request_timeout),
        (DEFAULT_RETRIES, DEFAULT_REQUEST_TIMEOUT)
    );
    let e = env(&[
        ("MULTIARCH_RETRIES", "2"),
        ("MULTIARCH_REQUEST_TIMEOUT", "2s"),
    ]);
    let a = access(&[], &e).unwrap();
    assert_eq!((a.retries, a.request_timeout), (2, Duration::from_secs(2)));
}

#[test]
fn gitlab_oidc_inputs_for_ecr() {
    let e = with(
        gitlab(),
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/publish"),
            ("GITLAB_OIDC_TOKEN", "eyJ.oidc.token"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("CI_PROJECT_PATH", "group/sub/app"),
            ("CI_JOB_ID", "4242"),
            ("MULTIARCH_AUTH", "ecr"),
        ],
    );
    let aws = resolve_flags(&[], &e).unwrap().access.credentials.aws;
    assert!(aws.force_ecr);
    assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        aws.web_identity_token.as_ref().map(Secret::expose),
        Some("eyJ.oidc.token")
    );
    assert_eq!(aws.session_name, "multiarch-group.sub.app-4242");
    // The SDK's own token file wins; another variable can carry the token.
    let file = with(e.clone(), &[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]);
    assert!(resolve_flags(&[], &file)
        .unwrap()
        .access
        .credentials
        .aws
        .web_identity_token
        .is_none());
    let other = with(
        e,
        &[
            ("MULTIARCH_OIDC_TOKEN_VAR", "AWS_ID_TOKEN"),
            ("AWS_ID_TOKEN", "eyJ.other"),
        ],
    );
    let aws = resolve_flags(&[], &other).unwrap().access.credentials.aws;
    assert_eq!(
        aws.web_identity_token.as_ref().map(Secret::expose),
        Some("eyJ.other")
    );
    assert_eq!(session_name(Some(&"x".repeat(100)), Some("1")).len(), 64);
}

#[test]
fn a_spec_replaces_image_tags_and_sources() {
    let spec = crate::spec::parse(
        "spec.yml",
        "image: r.example/app:2.0\ntags: [latest]\nmanifests:\n  - {image: r.example/app:2.0-s390x, platform: {architecture: s390x, os: linux}}\n",
    )
    .unwrap();
    let (plan, show) = resolve(&Given::default(), &gitlab(), Some(&spec)).unwrap();
    assert_eq!(
        targets(&plan),
        ["r.example/app:2.0", "r.example/app:latest"]
    );
    assert_eq!(sources(&plan), ["r.example/app:2.0-s390x"]);
    assert!(show
        .origins
        .contains(&("tags", Origin::Spec("spec.yml: tags".into()))));
    // Flags beat the spec; variables do not.
    let e = with(gitlab(), &[("MULTIARCH_TAGS", "ignored")]);
    let (plan, _) = resolve(&Given::of(&[("tags", "9.9")]), &e, Some(&spec)).unwrap();
    assert_eq!(targets(&plan), ["r.example/app:9.9"]);
    let (plan, _) = resolve(&Given::default(), &e, Some(&spec)).unwrap();
    assert_eq!(
        targets(&plan),
        ["r.example/app:2.0", "r.example/app:latest"]
    );
    let e = resolve(
        &Given::of(&[("source-template", "{image}:x")]),
        &gitlab(),
        Some(&spec),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        show.dotenv,
        Some(PathBuf::from("multiarch.env")),
        "the rest still follows GitLab"
    );
}

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn hand_offs_replace_the_tag_of_their_platform() {
    let e = with(
        gitlab(),
        &[
            ("MULTIARCH_PLATFORMS", "linux/amd64,linux/arm/v7"),
            (
                "MULTIARCH_SOURCE_LINUX_ARM",
                &format!("registry.gitlab.example/g/app@{DIGEST_A}"),
            ),
            ("MULTIARCH_SOURCE_TEMPLATE", "{image}:{tag}-{arch}{variant}"),
            ("MULTIARCH_SOURCE_LINUX_AMD64", ""),
        ],
    );
    let plan = resolve_flags(&[], &e).unwrap();
    assert_eq!(
        sources(&plan),
        [
            "registry.gitlab.example/g/app:latest-amd64".to_string(),
            format!("registry.gitlab.example/g/app@{DIGEST_A}")
        ]
    );
    assert_eq!(plan.sources[0].origin, SourceOrigin::Template);
    assert_eq!(
        plan.sources[1].origin,
        SourceOrigin::HandOff("MULTIARCH_SOURCE_LINUX_ARM".into())
    );
}

#[test]
fn hand_offs_for_unlisted_platforms_or_without_digest_exit_2() {
    let rows: Rows = &[
        (
            &[(
                "MULTIARCH_SOURCE_LINUX_S390X",
                "registry.gitlab.example/g/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            )],
            "no platform in the list (linux/amd64,linux/arm64) has the suffix LINUX_S390X",
        ),
        (
            &[("MULTIARCH_SOURCE_LINUX_ARM64", "registry.gitlab.example/g/app:1")],
            "it names no digest",
        ),
        (
            &[("MULTIARCH_SOURCE_LINUX_ARM64", "registry.gitlab.example/g/app@sha256:12")],
            "MULTIARCH_SOURCE_LINUX_ARM64",
        ),
    ];
    for (extra, want) in rows {
        let e = resolve_flags(&[], &with(gitlab(), extra)).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{extra:?}");
        assert!(e.to_string().contains(want), "{extra:?}: {e}");
    }
}

#[test]
fn the_expected_revision_is_the_commit_unless_set_or_none() {
    let sha = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
    let plan = resolve_flags(&[], &gitlab()).unwrap();
    assert_eq!(plan.revision.as_deref(), Some(sha));
    assert!(!plan.require_revision);
    let plan = resolve_flags(
        &[],
        &with(
            gitlab(),
            &[
                ("MULTIARCH_REVISION", "v1.4.2"),
                ("MULTIARCH_REQUIRE_REVISION", "true"),
            ],
        ),
    )
    .unwrap();
    assert_eq!(plan.revision.as_deref(), Some("v1.4.2"));
    assert!(plan.require_revision);
    // The index says the revision its sources were checked for.
    assert_eq!(
        plan.annotations.values["org.opencontainers.image.revision"],
        "v1.4.2"
    );
    let plan = resolve_flags(&[], &with(gitlab(), &[("MULTIARCH_REVISION", "none")])).unwrap();
    assert_eq!(plan.revision, None);
    assert_eq!(
        resolve_flags(&[("revision", "abc1234")], &gitlab())
            .unwrap()
            .revision
            .as_deref(),
        Some("abc1234")
    );
    let outside = env(&[
        ("MULTIARCH_IMAGE", "r.example/app"),
        ("MULTIARCH_TAGS", "1"),
    ]);
    assert_eq!(resolve_flags(&[], &outside).unwrap().revision, None);
    let e =
        resolve_flags(&[], &with(gitlab(), &[("MULTIARCH_REVISION", "two words")])).unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn several_destinations_get_every_tag_and_sources_may_live_anywhere() {
    let e = with(
        gitlab(),
        &[
            (
                "MULTIARCH_IMAGE",
                "registry.gitlab.example/g/app, 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app",
            ),
            ("MULTIARCH_TAGS", "1.4,latest"),
            (
                "MULTIARCH_SOURCE_TEMPLATE",
                "registry.gitlab.example/g/app/build:{tag}-{arch}",
            ),
            ("MULTIARCH_APPEND", "true"),
        ],
    );
    let plan = resolve_flags(&[], &e).unwrap();
    assert_eq!(
        targets(&plan),
        [
            "registry.gitlab.example/g/app:1.4",
            "registry.gitlab.example/g/app:latest",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1.4",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest",
        ]
    );
    assert_eq!(
        sources(&plan)[0],
        "registry.gitlab.example/g/app/build:1.4-amd64"
    );
    assert!(plan.append);
}

#[test]
fn with_a_spec_only_the_platforms_flag_filters_platformless_entries() {
    let spec = crate::spec::parse(
        "spec.yml",
        "image: r.example/app:2.0\nmanifests:\n  - image: docker.io/library/alpine:3.20\n",
    )
    .unwrap();
    let e = with(gitlab(), &[("MULTIARCH_PLATFORMS", "linux/s390x")]);
    let (plan, _) = resolve(&Given::default(), &e, Some(&spec)).unwrap();
    assert_eq!(plan.platform_filter, None);
    let (plan, _) = resolve(
        &Given::of(&[("platforms", "linux/amd64,linux/arm64")]),
        &e,
        Some(&spec),
    )
    .unwrap();
    let filter: Vec<String> = plan
        .platform_filter
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(filter, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn only_asked_for_annotations_count_as_asked() {
    let plan = resolve_flags(&[], &gitlab()).unwrap();
    assert!(plan.annotations.asked.is_none());
    assert!(!plan.annotations.values.is_empty());
    let plan = resolve_flags(
        &[("annotation", "org.opencontainers.image.title=App")],
        &gitlab(),
    )
    .unwrap();
    assert!(plan.annotations.asked.is_some());
}

#[test]
fn a_docker_list_asked_for_with_annotations_asked_for_is_refused() {
    let env = with(
        gitlab(),
        &[
            ("MULTIARCH_FORMAT", "docker"),
            (
                "MULTIARCH_ANNOTATIONS",
                "org.opencontainers.image.title=App",
            ),
        ],
    );
    let e = resolve_flags(&[], &env).err().unwrap();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        e.to_string(),
        "MULTIARCH_FORMAT = \"docker\" is invalid: a Docker manifest list cannot carry the annotations MULTIARCH_ANNOTATIONS asks for\n  hint: set MULTIARCH_FORMAT=oci (or auto) to keep them, or drop them from MULTIARCH_ANNOTATIONS"
    );
    // The CI's own annotations are not asked for: a Docker list leaves them out and says so.
    let plan = resolve_flags(&[], &with(gitlab(), &[("MULTIARCH_FORMAT", "docker")])).unwrap();
    assert!(plan.annotations.asked.is_none());
}

/// A command reads only the settings it takes: a variable set pipeline-wide for another command
/// (`MULTIARCH_IF_COMPLETE` for the build jobs, `MULTIARCH_OUTPUT` for a manifest job) changes
/// nothing and fails nothing in `wait`.
#[test]
fn a_command_ignores_the_variables_of_settings_it_does_not_take() {
    let env = with(
        gitlab(),
        &[
            ("MULTIARCH_IF_COMPLETE", "true"),
            ("MULTIARCH_OUTPUT", "bogus"),
            ("MULTIARCH_FORMAT", "bogus"),
            ("MULTIARCH_ROLLBACK", "bogus"),
        ],
    );
    let wait = Given {
        cmd: Some(table::Cmd::Wait),
        ..Given::default()
    };
    let (plan, _) = resolve(&wait, &env, None).unwrap();
    assert!(!plan.if_complete, "wait always waits");
    let push = Given {
        cmd: Some(table::Cmd::Push),
        ..Given::default()
    };
    let e = resolve(&push, &env, None).unwrap_err();
    assert_eq!(e.exit_code(), 2, "push takes them: {e}");
}
