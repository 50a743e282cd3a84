//! No AWS credentials: the AWS SDK's default chain (run for real, against moto's STS) finds none,
//! and the error says what the job set and what is missing or broken — the id_token variable (by
//! the name the run reads, with the `id_tokens:` lines that fill it), the token file and the
//! system's error, the profile no file defines, the config line that does not parse — never a
//! value. Exit 5. Beside each, the same set-up made whole logs in: the chain is the SDK's own.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::hostile::{Behaviour, Hostile};
use crate::support::moto::{ecr_password, Moto, ACCOUNT};
use crate::support::{exited, multiarch, stderr_of, Options, Registry};

const ROLE: &str = "arn:aws:iam::123456789012:role/gitlab-publish";
const ID_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6Z3JvdXAvYXBwIn0.c2lnbmF0dXJl";

/// `multiarch login` of the registry through ECR with `extra` variables, run in `home` (also
/// `HOME`); its exit code and stderr.
fn login(
    moto: &Moto,
    reg: &Registry,
    home: &Path,
    extra: &[(&str, &str)],
) -> (std::process::Output, String) {
    let env: BTreeMap<String, String> = moto.job(reg, extra);
    let out = multiarch(&env, home)
        .args(["login", &reg.host, "--password-stdout"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    (out, err)
}

fn ecr_registry() -> Registry {
    Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        ..Default::default()
    })
}

/// The problem's line, and the start of its hint.
fn says(err: &str, problem: &str, hint: &str) {
    assert!(
        err.contains(&format!(
            "error: no AWS credentials for ecr:GetAuthorizationToken: {problem}\n  hint: {hint}"
        )),
        "{err}"
    );
}

#[test]
fn nothing_set_names_every_source_tried_and_how_a_gitlab_job_gets_one() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let home = tempfile::tempdir().unwrap();
    let (out, err) = login(&moto, &reg, home.path(), &[]);
    exited(&out, 5);
    says(
        &err,
        "none is set; tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, AWS_ROLE_ARN with GITLAB_OIDC_TOKEN or AWS_WEB_IDENTITY_TOKEN_FILE, the container role (ECS/EKS), the instance role (IMDS)",
        "in GitLab set AWS_ROLE_ARN and request the id_token (the components: oidc: true):\n    id_tokens:\n      GITLAB_OIDC_TOKEN:\n        aud: https://gitlab.com\n  or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_role_without_its_id_token_shows_the_lines_that_request_it_under_the_name_read() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let home = tempfile::tempdir().unwrap();
    for (extra, var, state, snippet) in [
        (
            &[("AWS_ROLE_ARN", ROLE)][..],
            "GITLAB_OIDC_TOKEN",
            "not set",
            "GITLAB_OIDC_TOKEN",
        ),
        (
            &[("AWS_ROLE_ARN", ROLE), ("GITLAB_OIDC_TOKEN", "")][..],
            "GITLAB_OIDC_TOKEN",
            "empty",
            "GITLAB_OIDC_TOKEN",
        ),
        (
            &[
                ("AWS_ROLE_ARN", ROLE),
                ("MULTIARCH_OIDC_TOKEN_VAR", "AWS_ID_TOKEN"),
                ("GITLAB_OIDC_TOKEN", ID_TOKEN),
            ][..],
            "AWS_ID_TOKEN (named by MULTIARCH_OIDC_TOKEN_VAR)",
            "not set",
            "AWS_ID_TOKEN",
        ),
    ] {
        let (out, err) = login(&moto, &reg, home.path(), extra);
        exited(&out, 5);
        says(
            &err,
            &format!("AWS_ROLE_ARN is set, but {var}, which must hold the job's GitLab id_token, is {state}"),
            "request the id_token in the job, with the audience the role's trust policy expects",
        );
        assert!(
            err.contains(&format!(
                "    id_tokens:\n      {snippet}:\n        aud: https://gitlab.com"
            )),
            "{err}"
        );
        assert!(!err.contains(ID_TOKEN), "{err}");
    }
    // With the token where the run reads it, the role is assumed.
    let (out, err) = login(
        &moto,
        &reg,
        home.path(),
        &[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_ID_TOKEN", ID_TOKEN),
            ("MULTIARCH_OIDC_TOKEN_VAR", "AWS_ID_TOKEN"),
        ],
    );
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("assumed role with the GitLab OIDC token"),
        "{err}"
    );
}

#[test]
fn a_token_file_that_cannot_be_read_is_named_with_the_system_error() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("web-identity-token");
    let path = file.display().to_string();
    let (out, err) = login(
        &moto,
        &reg,
        home.path(),
        &[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &path),
            ("GITLAB_OIDC_TOKEN", ID_TOKEN),
        ],
    );
    exited(&out, 5);
    says(
        &err,
        &format!("AWS_WEB_IDENTITY_TOKEN_FILE names {path}, which cannot be read: No such file or directory (os error 2)"),
        "GITLAB_OIDC_TOKEN holds an id_token, but AWS_WEB_IDENTITY_TOKEN_FILE comes first: unset AWS_WEB_IDENTITY_TOKEN_FILE, or write the token to that file before multiarch runs",
    );
    assert!(!err.contains(ID_TOKEN), "{err}");
    // Once the file holds the token, the SDK's own web identity provider assumes the role.
    std::fs::write(&file, ID_TOKEN).unwrap();
    let (out, err) = login(
        &moto,
        &reg,
        home.path(),
        &[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &path),
        ],
    );
    assert!(out.status.success(), "{err}");
}

#[test]
fn a_profile_no_file_defines_and_a_config_that_does_not_parse_are_named() {
    let (moto, reg) = (Moto::start(), ecr_registry());
    let home = tempfile::tempdir().unwrap();
    let (out, err) = login(&moto, &reg, home.path(), &[("AWS_PROFILE", "publish")]);
    exited(&out, 5);
    says(
        &err,
        "AWS_PROFILE names the profile publish, which ~/.aws/config and ~/.aws/credentials do not define",
        "name a profile those files define, or unset AWS_PROFILE",
    );

    let aws = home.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("config"), "[profile publish\nregion = us-east-1\n").unwrap();
    let (out, err) = login(&moto, &reg, home.path(), &[("AWS_PROFILE", "publish")]);
    exited(&out, 5);
    says(
        &err,
        &format!(
            "the AWS config files cannot be used: could not parse profile file: error parsing {} on line 1: Profile definition must end with ']'",
            aws.join("config").display()
        ),
        "fix that file, or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at other files",
    );

    // A role profile whose source_profile no file defines: that one is named.
    std::fs::write(
        aws.join("config"),
        "[profile publish]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/publish\nsource_profile = base\n",
    )
    .unwrap();
    let (out, err) = login(&moto, &reg, home.path(), &[("AWS_PROFILE", "publish")]);
    exited(&out, 5);
    says(
        &err,
        "AWS_PROFILE names the profile publish, whose source_profile base ~/.aws/config and ~/.aws/credentials do not define",
        "define the profile base with credentials",
    );

    // The profile defined, with keys: logged in.
    std::fs::write(
        aws.join("config"),
        "[profile publish]\nregion = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!("[publish]\naws_access_key_id = AKIA{ACCOUNT}\naws_secret_access_key = testing-secret\n"),
    )
    .unwrap();
    let (out, err) = login(&moto, &reg, home.path(), &[("AWS_PROFILE", "publish")]);
    assert!(out.status.success(), "{err}");

    // The same profile, but AWS_CONFIG_FILE points where no file is: that file is named, and
    // the SDK's own warnings about it are not repeated above our error.
    let gone = home.path().join("ci/aws.ini");
    let (out, err) = login(
        &moto,
        &reg,
        home.path(),
        &[
            ("AWS_PROFILE", "publish"),
            ("AWS_CONFIG_FILE", gone.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", gone.to_str().unwrap()),
        ],
    );
    exited(&out, 5);
    says(
        &err,
        &format!(
            "AWS_CONFIG_FILE ({0}) and AWS_SHARED_CREDENTIALS_FILE ({0}) do not exist, so no profile was read from them",
            gone.display()
        ),
        "point the variable at the file",
    );
    assert!(!err.contains(" WARN "), "{err}");
}

/// A job whose AWS SDK talks to `aws` (an endpoint that misbehaves) for ECR and STS, logging
/// in to `reg` with an ECR token.
fn against(
    aws: &Hostile,
    reg: &Registry,
    home: &Path,
    extra: &[(&str, &str)],
) -> (std::process::Output, String) {
    let endpoint = format!("http://{}", aws.host);
    let mut env: BTreeMap<String, String> = reg.access_env();
    for (k, v) in [
        ("AWS_ENDPOINT_URL_ECR", endpoint.as_str()),
        ("AWS_ENDPOINT_URL_STS", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("MULTIARCH_AUTH", "ecr"),
        ("MULTIARCH_REQUEST_TIMEOUT", "1s"),
    ]
    .iter()
    .chain(extra)
    {
        env.insert(k.to_string(), v.to_string());
    }
    let out = multiarch(&env, home)
        .args(["login", &reg.host, "--password-stdout"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    (out, err)
}

/// An STS error answer (the query protocol's XML) with `code` and `message`.
fn sts_error(status: u16, code: &str, message: &str) -> Behaviour {
    Behaviour::Answer {
        status,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>").into_bytes(),
    }
}

#[test]
fn sts_answers_through_the_token_file_are_judged_as_the_runs_own_exchange_and_a_silent_endpoint_ends(
) {
    let reg = ecr_registry();
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, ID_TOKEN).unwrap();
    // Time enough for the SDK's own backoff on throttling (the whole call, credentials
    // included, gets three request timeouts).
    let via_file = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", ROLE),
        ("MULTIARCH_REQUEST_TIMEOUT", "20s"),
    ];

    // STS throttling is a retry of the job, not "no credentials" (the SDK's chain wraps it).
    let aws = Hostile::start(|_, _| sts_error(400, "Throttling", "Rate exceeded"));
    let (out, err) = against(&aws, &reg, home.path(), &via_file);
    exited(&out, 75);
    assert!(
        err.contains(
            "error: calling sts:AssumeRoleWithWebIdentity: AWS answered Throttling: Rate exceeded"
        ),
        "{err}"
    );

    // An expired id_token is said so; the token STS echoes back is blanked out.
    let aws = Hostile::start(|_, _| {
        sts_error(
            400,
            "ExpiredTokenException",
            &format!("Token expired: {ID_TOKEN}"),
        )
    });
    let (out, err) = against(&aws, &reg, home.path(), &via_file);
    exited(&out, 5);
    assert!(err.contains("sts:AssumeRoleWithWebIdentity was refused: the job's GitLab id_token has expired (ExpiredTokenException: Token expired: <redacted>)"), "{err}");
    assert!(!err.contains(ID_TOKEN), "{err}");

    // An endpoint that takes the request and never answers (for 10 minutes): each attempt ends
    // with the request timeout, the call with the SDK's three attempts (the SDK sets no timeout
    // of its own).
    let aws = Hostile::start(|_, _| Behaviour::Silent);
    let (out, err) = against(
        &aws,
        &reg,
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example-secret"),
        ],
    );
    exited(&out, 75);
    assert!(err.contains("calling ecr:GetAuthorizationToken: the AWS API did not answer within MULTIARCH_REQUEST_TIMEOUT (each of 3 attempts)"), "{err}");
}
