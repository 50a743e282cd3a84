//! Amazon ECR end to end with real parts: moto_server is the ECR and STS API; the real registry,
//! over TLS with a generated CA and htpasswd user `AWS` with moto's token password, plays the ECR
//! registry (`MULTIARCH_AUTH=ecr`, as for a VPC endpoint name).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::fixtures::{push as push_fixture, Kind};
use crate::support::moto::{ecr_password, Moto, ACCOUNT};
use crate::support::names::{hosts_file, multiarch_within};
use crate::support::proxy::{Fault, Proxy};
use crate::support::stub::RedirectingRegistry;
use crate::support::{exited, multiarch, stderr_of, Options, Registry};
use base64::Engine as _;

fn ecr_registry() -> Registry {
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        ..Default::default()
    });
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    reg
}

/// A job environment with no AWS credentials yet: moto endpoints, the registry's CA, ECR auth.
fn job(reg: &Registry, moto: &Moto, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    moto.job(reg, extra)
}

const KEYS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIATESTING"),
    ("AWS_SECRET_ACCESS_KEY", "testing-secret"),
];

#[test]
fn access_keys_from_the_environment_log_in_through_get_authorization_token() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &moto, &KEYS), work.path())
        .arg("push")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("ECR login"), "{}", stderr_of(&out));
    assert!(reg.raw("app:latest").is_some());
}

#[test]
fn a_gitlab_oidc_token_and_a_role_are_enough() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let work = tempfile::tempdir().unwrap();
    let env = job(
        &reg,
        &moto,
        &[
            (
                "AWS_ROLE_ARN",
                &format!("arn:aws:iam::{ACCOUNT}:role/gitlab-publish"),
            ),
            (
                "GITLAB_OIDC_TOKEN",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6Z3JvdXAvYXBwIn0.c2lnbmF0dXJl",
            ),
        ],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("assumed role with the GitLab OIDC token"),
        "{err}"
    );
    assert!(err.contains("multiarch-group.app-4242"), "{err}");
    assert!(reg.raw("app:latest").is_some());
    println!("{err}");
}

#[test]
fn immutable_tags_rerun_as_a_no_op_and_refuse_a_different_index_before_pushing() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    moto.ecr(
        "CreateRepository",
        r#"{"repositoryName":"app","imageTagMutability":"IMMUTABLE"}"#,
    );
    let work = tempfile::tempdir().unwrap();
    let env = job(&reg, &moto, &KEYS);
    multiarch(&env, work.path()).arg("push").assert().success();
    let first = reg.raw("app:latest").unwrap();

    let again = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert!(stderr_of(&again).contains("unchanged"));

    let changed = multiarch(&env, work.path())
        .args([
            "push",
            "--log",
            "debug",
            "--annotation",
            "org.opencontainers.image.title=changed",
        ])
        .output()
        .unwrap();
    let err = stderr_of(&changed);
    assert_eq!(changed.status.code(), Some(4), "{err}");
    // Found by multiarch's own look before any push: not called a registry's refusal.
    assert!(
        err.contains(&format!("error: {}/app:latest: this tag is immutable in its repository (its tag mutability, read before any push) and already holds sha256:", reg.host)),
        "{err}"
    );
    assert!(
        err.contains("not this run's index; nothing was pushed\n"),
        "{err}"
    );
    assert!(!err.contains("refused"), "{err}");
    assert!(err.contains("new tag"), "{err}");
    assert_eq!(
        reg.raw("app:latest").unwrap(),
        first,
        "the tag is unchanged"
    );
    // The preview says the same, before a push is tried.
    let planned = multiarch(&env, work.path())
        .args([
            "plan",
            "--annotation",
            "org.opencontainers.image.title=changed",
        ])
        .output()
        .unwrap();
    let err = exited(&planned, 4);
    assert!(
        err.contains(&format!(
            "error: {}/app:latest: this tag is immutable in its repository",
            reg.host
        )),
        "{err}"
    );

    // An exclusion filter makes `latest` movable again.
    moto.ecr(
        "PutImageTagMutability",
        r#"{"repositoryName":"app","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"lat*"}]}"#,
    );
    multiarch(&env, work.path())
        .args([
            "push",
            "--annotation",
            "org.opencontainers.image.title=changed",
        ])
        .assert()
        .success();
    assert_ne!(reg.raw("app:latest").unwrap(), first);
}

#[test]
fn secrets_appear_nowhere_at_debug_level() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let work = tempfile::tempdir().unwrap();
    let sentinel_key = "sentinel-aws-secret-7f3a9c";
    let sentinel_oidc = "eyJsentinel.oidc.token-5b2e";
    let env = job(
        &reg,
        &moto,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIASENTINEL"),
            ("AWS_SECRET_ACCESS_KEY", sentinel_key),
            ("GITLAB_OIDC_TOKEN", sentinel_oidc),
            ("MULTIARCH_LOG", "debug"),
        ],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    let registry_password = ecr_password();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{registry_password}"));
    for text in [
        stderr_of(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        dotenv,
    ] {
        for secret in [
            sentinel_key,
            sentinel_oidc,
            registry_password.as_str(),
            basic.as_str(),
        ] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
    }
    assert!(
        stderr_of(&out).contains("DEBUG"),
        "the run really was at debug level"
    );
    assert_no_files_contain(
        work.path(),
        &[sentinel_key, sentinel_oidc, &registry_password],
    );
}

fn assert_no_files_contain(dir: &Path, secrets: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "{} holds a secret",
                    entry.path().display()
                );
            }
        }
    }
}

#[test]
fn authorization_does_not_follow_a_blob_redirect_to_another_host() {
    let stub = RedirectingRegistry::start("AWS", "stub-password-1c9d");
    let work = tempfile::tempdir().unwrap();
    let mut env: BTreeMap<String, String> = [
        ("MULTIARCH_USERNAME", "AWS"),
        ("MULTIARCH_PASSWORD", "stub-password-1c9d"),
        ("MULTIARCH_INSECURE_REGISTRIES", stub.host.as_str()),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // A redirect to plain HTTP is only followed to a host listed as insecure (S3 speaks TLS).
    let out = multiarch(&env, work.path())
        .args(["inspect", &format!("{}/app:latest-amd64", stub.host)])
        .output()
        .unwrap();
    exited(&out, 1);
    assert!(
        stderr_of(&out).contains(&format!("redirected to plain HTTP at {}", stub.blob_host)),
        "{}",
        stderr_of(&out)
    );
    assert!(stub.blob_requests.lock().unwrap().is_empty());
    env.insert(
        "MULTIARCH_INSECURE_REGISTRIES".into(),
        format!("{},{}", stub.host, stub.blob_host),
    );
    let out = multiarch(&env, work.path())
        .args(["inspect", &format!("{}/app:latest-amd64", stub.host)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("linux/amd64"));
    assert!(
        !stub.registry_auth.lock().unwrap().is_empty(),
        "the registry itself got credentials"
    );
    let blob_requests = stub.blob_requests.lock().unwrap();
    assert_eq!(
        blob_requests.len(),
        1,
        "the config was fetched from the redirect target"
    );
    assert!(
        blob_requests[0]
            .iter()
            .all(|h| !h.to_ascii_lowercase().starts_with("authorization")),
        "Authorization followed the redirect: {:?}",
        blob_requests[0]
    );
}

/// moto enforcing IAM: a role without ecr:GetAuthorizationToken is told which action it lacks;
/// one without ecr:DescribeRepositories is warned and goes on (the registry has the last word).
#[test]
fn missing_iam_permissions_are_named_and_a_denied_describe_only_warns() {
    // Set-up actions moto lets through before enforcing: one repository, two users of four each.
    let moto = Moto::start_enforcing_iam_after(Some(9));
    let reg = ecr_registry();
    moto.ecr(
        "CreateRepository",
        r#"{"repositoryName":"app","imageTagMutability":"IMMUTABLE"}"#,
    );
    let (no_token_key, no_token_secret) =
        moto.user_allowed("no-login", &["ecr:DescribeRepositories"]);
    let (no_describe_key, no_describe_secret) =
        moto.user_allowed("no-describe", &["ecr:GetAuthorizationToken"]);
    let work = tempfile::tempdir().unwrap();

    let env = job(
        &reg,
        &moto,
        &[
            ("AWS_ACCESS_KEY_ID", &no_token_key),
            ("AWS_SECRET_ACCESS_KEY", &no_token_secret),
        ],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 5);
    assert!(
        err.contains("IAM permission ecr:GetAuthorizationToken"),
        "{err}"
    );
    assert!(!err.contains(&no_token_secret));
    println!("{err}");

    // A secret that does not match its key is not a missing permission: the key is named.
    let env = job(
        &reg,
        &moto,
        &[
            ("AWS_ACCESS_KEY_ID", &no_describe_key),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 5);
    assert!(
        err.contains("ecr:GetAuthorizationToken was refused: AWS does not know the access key, or its secret does not match"),
        "{err}"
    );
    assert!(
        err.contains("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    assert!(!err.contains("needs the IAM permission"), "{err}");

    let env = job(
        &reg,
        &moto,
        &[
            ("AWS_ACCESS_KEY_ID", &no_describe_key),
            ("AWS_SECRET_ACCESS_KEY", &no_describe_secret),
        ],
    );
    multiarch(&env, work.path()).arg("push").assert().success();
    let out = multiarch(&env, work.path())
        .args([
            "push",
            "--annotation",
            "org.opencontainers.image.title=changed",
        ])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ecr:DescribeRepositories denied"), "{err}");
}

/// An AWS API endpoint that does not exist (a mistyped region, a wrong endpoint override) is a
/// misconfiguration: exit 2 at once naming the endpoint and where its region came from, not
/// exit 75 after the SDK's retries. `.invalid` names never resolve.
#[test]
fn an_aws_endpoint_that_does_not_resolve_exits_2_at_once_naming_it_and_its_region() {
    let reg = Registry::start();
    /// Variables of the case, what the error says, and the region it names.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 3] = [
        (
            &[
                ("MULTIARCH_IMAGE", "123456789012.dkr.ecr.eu-wset-1.amazonaws.com/app"),
                ("AWS_ENDPOINT_URL_ECR", "https://api.ecr.eu-wset-1.invalid"),
            ],
            "cannot reach api.ecr.eu-wset-1.invalid: the name does not resolve",
            "for ecr:GetAuthorizationToken in region eu-wset-1 (from the registry host 123456789012.dkr.ecr.eu-wset-1.amazonaws.com)",
        ),
        (
            &[
                ("MULTIARCH_AUTH", "ecr"),
                ("AWS_REGION", "eu-wset-1"),
                ("AWS_ENDPOINT_URL", "https://aws.invalid"),
            ],
            "cannot reach aws.invalid: the name does not resolve",
            "in region eu-wset-1 (from AWS_REGION / AWS_DEFAULT_REGION)",
        ),
        (
            &[
                ("MULTIARCH_AUTH", "ecr"),
                ("AWS_REGION", "eu-wset-1"),
                ("AWS_ENDPOINT_URL_STS", "https://sts.eu-wset-1.invalid"),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gitlab-publish"),
                ("GITLAB_OIDC_TOKEN", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
            ],
            "cannot reach sts.eu-wset-1.invalid: the name does not resolve",
            "for sts:AssumeRoleWithWebIdentity in region eu-wset-1",
        ),
    ];
    for (extra, what, region) in cases {
        let mut env: BTreeMap<String, String> = [
            ("MULTIARCH_IMAGE", reg.repo("app").as_str()),
            ("MULTIARCH_TAGS", "latest"),
            ("MULTIARCH_INSECURE_REGISTRIES", reg.host.as_str()),
            ("MULTIARCH_TIMEOUT", "10s"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            KEYS[0],
            KEYS[1],
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let work = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let out = multiarch(&env, work.path()).arg("push").output().unwrap();
        let took = start.elapsed();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(what), "{extra:?}: {err}");
        assert!(err.contains(region), "{extra:?}: {err}");
        assert!(err.contains("AWS_ENDPOINT_URL_ECR"), "{err}");
        assert!(
            took < std::time::Duration::from_secs(2),
            "{extra:?} took {took:?}"
        );
    }
}

/// ECR does not create repositories on push. Its registry answers an upload into one that does
/// not exist with 404 NAME_UNKNOWN (the proxy says so in front of the real registry): the
/// push-access check ends the run at once, exit 2, with the command that creates it.
#[test]
fn an_upload_into_a_repository_ecr_lacks_ends_the_run_at_once_with_the_command_that_creates_it() {
    let moto = Moto::start();
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        ..Default::default()
    });
    // arm64 never comes: without the check at the start, the run would wait a minute.
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    let proxy = Proxy::start(&reg.host, std::time::Duration::ZERO, |req, _| {
        if req.path.starts_with("/v2/dest/") {
            Fault::Json {
                code: 404,
                body: format!(
                    r#"{{"errors":[{{"code":"NAME_UNKNOWN","message":"The repository with name 'dest' does not exist in the registry with id '{ACCOUNT}'"}}]}}"#
                ),
            }
        } else {
            Fault::Pass
        }
    });
    let host = proxy.host.clone();
    let image = format!("{host}/dest");
    let template = format!("{host}/app:latest-{{arch}}");
    let env = job(
        &reg,
        &moto,
        &[
            KEYS[0],
            KEYS[1],
            ("MULTIARCH_INSECURE_REGISTRIES", &host),
            ("MULTIARCH_IMAGE", &image),
            ("MULTIARCH_SOURCE_TEMPLATE", &template),
            ("MULTIARCH_TIMEOUT", "1m"),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 2);
    assert!(
        err.contains(&format!("error: checking push access to {host}/dest: the repository dest does not exist (HTTP 404 Not Found, NAME_UNKNOWN: The repository with name 'dest' does not exist in the registry with id '{ACCOUNT}')\n  hint: ECR does not create repositories on push: create it with `aws ecr create-repository --repository-name dest` (in Terraform an aws_ecr_repository, or in the ECR console)")),
        "{err}"
    );
    assert!(!err.contains("not ready"), "{err}");
}

/// Under its ECR name, the registry's repositories are those moto's ECR knows: DescribeRepositories,
/// asked at the push-access check of the account the host names, says the destination does not
/// exist, and the run ends at once, exit 2, with the command that creates it (in the host's
/// region). Once created, the same run publishes.
#[test]
fn a_destination_ecr_says_does_not_exist_is_named_before_anything_is_pushed() {
    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let moto = Moto::start();
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        listen: Some(("127.77.0.2:443".into(), HOST.into())),
        ..Default::default()
    });
    // arm64 is not there yet: without the check at the start, the run would wait a minute.
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    moto.ecr("CreateRepository", r#"{"repositoryName":"app"}"#);
    let mut env = moto.env();
    for (k, v) in [
        ("MULTIARCH_IMAGE", format!("{HOST}/dest")),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            format!("{HOST}/app:latest-{{arch}}"),
        ),
        ("MULTIARCH_TAGS", "latest".into()),
        ("MULTIARCH_TIMEOUT", "1m".into()),
        (
            "MULTIARCH_CA_FILE",
            reg.ca_file.as_ref().unwrap().display().to_string(),
        ),
        (KEYS[0].0, KEYS[0].1.into()),
        (KEYS[1].0, KEYS[1].1.into()),
    ] {
        env.insert(k.to_string(), v);
    }
    let work = tempfile::tempdir().unwrap();
    let hosts = hosts_file(work.path(), "127.77.0.2", HOST);
    // The preview says so too (DescribeRepositories needs no push credential), not waiting.
    let out = multiarch_within(&env, work.path(), &hosts, &["plan"])
        .output()
        .unwrap();
    let err = exited(&out, 2);
    assert!(
        err.contains(&format!("error: looking up the destination {HOST}/dest: the repository dest does not exist (ecr:DescribeRepositories answered RepositoryNotFoundException: ")),
        "{err}"
    );
    assert!(!err.contains("not ready"), "{err}");
    let out = multiarch_within(&env, work.path(), &hosts, &["push"])
        .output()
        .unwrap();
    let err = exited(&out, 2);
    assert!(
        err.contains(&format!("error: checking push access to {HOST}/dest: the repository dest does not exist (ecr:DescribeRepositories answered RepositoryNotFoundException: ")),
        "{err}"
    );
    assert!(!err.contains("not ready"), "{err}");
    assert!(
        err.contains("`aws ecr create-repository --repository-name dest --region us-east-1`"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(reg.raw("dest:latest").is_none());

    moto.ecr("CreateRepository", r#"{"repositoryName":"dest"}"#);
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let out = multiarch_within(&env, work.path(), &hosts, &["push"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(reg.raw("dest:latest").is_some());
}

/// A registry that refuses the ECR token (here: its password is not the one moto hands out) is
/// answered with what the token stands for, the job's AWS identity and its IAM permissions, not
/// with registry logins and docker config files the token never came from.
#[test]
fn a_refused_ecr_token_points_at_the_aws_identity_not_at_registry_logins() {
    let moto = Moto::start();
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), "another-password".into())),
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &moto, &KEYS), work.path())
        .arg("push")
        .output()
        .unwrap();
    let err = exited(&out, 5);
    assert!(
        err.contains("credentials from ECR GetAuthorizationToken"),
        "{err}"
    );
    assert!(
        err.contains("hint: the ECR token stands for the job's AWS identity (the role AWS_ROLE_ARN names, or the keys' user): it needs the IAM permissions ecr:"),
        "{err}"
    );
    for elsewhere in ["MULTIARCH_USERNAME", "CI_REGISTRY_USER", "docker config"] {
        assert!(!err.contains(elsewhere), "{elsewhere}: {err}");
    }
}
