//! A registry with bearer-token auth (`auth: token`, as GitLab's registry and Docker Hub run):
//! the 401 challenge, the token service asked with the job's credentials, the token presented.

use std::collections::BTreeMap;

use crate::support::fixtures::{push_two_arches, Kind};
use crate::support::token::TokenService;
use crate::support::{exited, gitlab_env, multiarch, stderr_of, Options, Registry};
use serde_json::Value;

#[test]
fn a_token_registry_is_published_to_with_the_job_credentials_and_one_token_per_operation() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenService::start(dir.path(), "gitlab-ci-token", "job-token-7e1f");
    let reg = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "job-token-7e1f".into())),
        token: Some((tokens.realm.clone(), tokens.bundle.clone())),
        ..Default::default()
    });
    push_two_arches(&reg, "group/app", Kind::Oci);
    let fixtures_tokens = tokens.issued();

    let work = tempfile::tempdir().unwrap();
    let mut job: BTreeMap<String, String> = gitlab_env(&reg.repo("group/app"));
    job.extend(reg.access_env());
    // This test's token service speaks plain HTTP: without being listed, it gets no credentials.
    let token_host = tokens
        .realm
        .trim_start_matches("http://")
        .trim_end_matches("/token");
    job.insert("CI_REGISTRY".into(), reg.host.clone());
    job.insert("CI_REGISTRY_USER".into(), "gitlab-ci-token".into());
    job.insert("CI_REGISTRY_PASSWORD".into(), "job-token-7e1f".into());
    let out = multiarch(&job, work.path()).arg("push").output().unwrap();
    exited(&out, 5);
    assert!(
        stderr_of(&out).contains(&format!("token service on plain HTTP ({token_host})")),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(tokens.issued(), fixtures_tokens, "no credential went there");
    job.insert(
        "MULTIARCH_INSECURE_REGISTRIES".into(),
        format!("{},{token_host}", reg.host),
    );
    job.insert("CI_REGISTRY".into(), reg.host.clone());
    job.insert("CI_REGISTRY_USER".into(), "gitlab-ci-token".into());
    job.insert("CI_REGISTRY_PASSWORD".into(), "job-token-7e1f".into());
    let out = multiarch(&job, work.path())
        .args(["push", "--log", "debug"])
        .output()
        .unwrap();
    let ours = tokens.issued() - fixtures_tokens;
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("job-token-7e1f"));
    let index: Value = serde_json::from_slice(&reg.raw("group/app:latest").unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    // One token for pulling and one for pushing, however many requests use them.
    assert_eq!(ours, 2, "{}", stderr_of(&out));

    // Anonymous: the challenge is answered, the token service refuses, exit 5.
    let anonymous: BTreeMap<String, String> = [
        ("MULTIARCH_IMAGE", reg.repo("group/app")),
        ("MULTIARCH_TAGS", "latest".into()),
        (
            "MULTIARCH_INSECURE_REGISTRIES",
            format!("{},{token_host}", reg.host),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let out = multiarch(&anonymous, work.path())
        .arg("plan")
        .output()
        .unwrap();
    exited(&out, 5);
    // The token service is named, with its own reason and where the credential came from.
    assert!(
        stderr_of(&out).contains(&format!(
            "the token service {token_host} of {} refused repository:group/app:pull (HTTP 401 Unauthorized: bad credentials; credentials from anonymous)",
            reg.host
        )),
        "{}",
        stderr_of(&out)
    );
}
