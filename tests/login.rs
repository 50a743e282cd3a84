//! `multiarch login HOST`: the credential `push` would use, checked against the registry, for
//! build tools that need one (buildah in the build component). Real registries, moto for ECR.

mod support;

use std::os::unix::fs::PermissionsExt as _;

use support::moto::{ecr_password, Moto};
use support::{multiarch, stderr_of, vars, Options, Registry};

#[test]
fn writes_the_job_credential_into_an_auth_file_that_skopeo_can_use() {
    let reg = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "job-token-5a1e".into())),
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let auth = work.path().join("containers/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    std::fs::write(
        &auth,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"credHelpers":{"x.example":"y"}}"#,
    )
    .unwrap();
    let env = vars(&[
        ("CI_REGISTRY", &reg.host),
        ("CI_REGISTRY_USER", "gitlab-ci-token"),
        ("CI_REGISTRY_PASSWORD", "job-token-5a1e"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
        ("REGISTRY_AUTH_FILE", auth.to_str().unwrap()),
    ]);
    let out = multiarch(&env, work.path())
        .args(["login", &reg.host])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert!(!stderr_of(&out).contains("job-token-5a1e"));
    assert!(
        stderr_of(&out).contains("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
        "{}",
        stderr_of(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&auth).unwrap()).unwrap();
    assert_eq!(
        doc["auths"]["other.example"]["auth"], "eDp5",
        "other entries kept"
    );
    assert_eq!(doc["credHelpers"]["x.example"], "y");
    assert!(doc["auths"][reg.host.as_str()]["auth"].is_string());
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // skopeo, another client, gets in with it.
    let inspect = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "login", "--get-login", "--authfile"])
        .arg(&auth)
        .arg(&reg.host)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "gitlab-ci-token"
    );

    // --password-stdout: the password alone, for `… login --password-stdin`.
    let out = multiarch(&env, work.path())
        .args(["login", "--password-stdout", &reg.host])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "job-token-5a1e\n");

    // A refused credential, and none at all: exit 5, the file untouched.
    let before = std::fs::read_to_string(&auth).unwrap();
    let mut wrong = env.clone();
    wrong.insert("CI_REGISTRY_PASSWORD".into(), "expired".into());
    let out = multiarch(&wrong, work.path())
        .args(["login", &reg.host])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("refused access"),
        "{}",
        stderr_of(&out)
    );
    let out = multiarch(
        &vars(&[("REGISTRY_AUTH_FILE", auth.to_str().unwrap())]),
        work.path(),
    )
    .args(["login", "quay.example"])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("no credentials for quay.example"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read_to_string(&auth).unwrap(), before);
}

#[test]
fn an_ecr_token_from_a_gitlab_oidc_role() {
    let moto = Moto::start();
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.extend(reg.access_env());
    env.extend(vars(&[
        ("MULTIARCH_AUTH", "ecr"),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/gitlab-build",
        ),
        (
            "GITLAB_OIDC_TOKEN",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        ),
    ]));
    let out = multiarch(&env, work.path())
        .args(["login", "--password-stdout", &reg.host])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ecr_password());
    assert!(
        stderr_of(&out).contains("assumed role with the GitLab OIDC token"),
        "{}",
        stderr_of(&out)
    );
}
