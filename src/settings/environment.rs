//! The snapshot of the process environment that settings are resolved from, and which variables
//! multiarch reads. A variable it reads must be UTF-8: dropping one silently changes the run
//! (`MULTIARCH_TAGS` with a stray byte fell back to `latest` and pushed), so it is exit 2, naming
//! the variable but never showing the value (it may be a secret). Variables nobody reads are left
//! out of the snapshot, whatever they hold. Pure: the environment arrives as pairs.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;

use super::Env;
use crate::error::Error;

/// Families read as a whole: ours (settings, hand-offs, dotenv reports of earlier jobs), and the
/// AWS SDK's own (keys, profiles, regions, endpoints).
const READ_PREFIXES: &[&str] = &["MULTIARCH_", "AWS_"];

/// Every other variable read: GitLab's predefined ones, credentials, logging.
const READ: &[&str] = &[
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_REF_SLUG",
    "CI_COMMIT_SHA",
    "CI_COMMIT_TAG",
    "CI_COMMIT_TIMESTAMP",
    "CI_DEFAULT_BRANCH",
    "CI_JOB_ID",
    "CI_PIPELINE_CREATED_AT",
    "CI_PIPELINE_ID",
    "CI_PROJECT_ID",
    "CI_PROJECT_PATH",
    "CI_PROJECT_URL",
    "CI_REGISTRY",
    "CI_REGISTRY_IMAGE",
    "CI_REGISTRY_PASSWORD",
    "CI_REGISTRY_USER",
    "DOCKER_AUTH_CONFIG",
    "DOCKER_CONFIG",
    "GITLAB_CI",
    "HOME",
    "NO_COLOR",
    "REGISTRY_AUTH_FILE",
    "RUST_LOG",
];

/// Where the GitLab id_token for AWS web identity is, unless `MULTIARCH_OIDC_TOKEN_VAR` names
/// another variable.
pub(crate) const DEFAULT_TOKEN_VAR: &str = "GITLAB_OIDC_TOKEN";

/// The variable holding the GitLab id_token (`MULTIARCH_OIDC_TOKEN_VAR`, empty = unset).
pub(crate) fn token_var(env: &Env) -> &str {
    env.get("MULTIARCH_OIDC_TOKEN_VAR")
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(DEFAULT_TOKEN_VAR)
}

/// True when multiarch reads `name` (`token_var` holds the id_token).
pub(crate) fn is_read(name: &str, token_var: &str) -> bool {
    READ_PREFIXES.iter().any(|p| name.starts_with(p)) || READ.contains(&name) || name == token_var
}

/// The environment as settings see it: every variable whose name and value are UTF-8. A
/// variable that multiarch reads with a value that is not UTF-8 is refused.
pub(crate) fn snapshot(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<Env, Error> {
    let mut env = Env::new();
    let mut unusable: Vec<(String, usize)> = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into_string() else {
            continue; // no variable multiarch reads has such a name
        };
        match value.into_string() {
            Ok(value) => {
                env.insert(name, value);
            }
            Err(value) => {
                let at =
                    std::str::from_utf8(value.as_bytes()).map_or_else(|e| e.valid_up_to(), |_| 0);
                unusable.push((name, at));
            }
        }
    }
    unusable.sort();
    let token_var = token_var(&env);
    match unusable
        .into_iter()
        .find(|(name, _)| is_read(name, token_var))
    {
        Some((variable, at)) => Err(Error::NotUnicode { variable, at }),
        None => Ok(env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt as _;

    fn pairs(list: &[(&[u8], &[u8])]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(k, v)| {
                (
                    OsString::from_vec(k.to_vec()),
                    OsString::from_vec(v.to_vec()),
                )
            })
            .collect()
    }

    #[test]
    fn a_variable_that_is_read_must_be_utf8() {
        for (name, value, at) in [
            (&b"MULTIARCH_TAGS"[..], &b"release-1.0\xff"[..], 11),
            (b"MULTIARCH_DRY_RUN", b"true\xff", 4),
            (b"MULTIARCH_SOURCE_LINUX_ARM64", b"\xfer/app@sha256:x", 0),
            (b"CI_COMMIT_TAG", b"v1.\xc3", 3),
            (b"CI_REGISTRY_PASSWORD", b"s3cr3t\xff", 6),
            (b"AWS_SECRET_ACCESS_KEY", b"s3cr3t\xff", 6),
            (b"GITLAB_OIDC_TOKEN", b"s3cr3t\xff", 6),
            (b"HOME", b"/home/\xe9", 6),
        ] {
            let e = snapshot(pairs(&[(b"LANG", b"C"), (name, value)])).unwrap_err();
            let name = String::from_utf8(name.to_vec()).unwrap();
            assert_eq!(e.exit_code(), 2);
            assert!(
                matches!(&e, Error::NotUnicode { variable, at: got } if *variable == name && *got == at),
                "{e:?}"
            );
            let text = e.to_string();
            assert!(
                text.contains(&format!("variable {name} is not valid UTF-8")),
                "{text}"
            );
            assert!(!text.contains("s3cr3t"), "{text}");
        }
    }

    #[test]
    fn variables_nobody_reads_are_left_out_whatever_they_hold() {
        let env = snapshot(pairs(&[
            (b"MULTIARCH_TAGS", b"latest"),
            (b"LANG", b"de_DE.\xff"),
            (b"CI_COMMIT_MESSAGE", b"caf\xe9"),
            (b"NAME_\xff", b"x"),
            (b"GITLAB_OIDC_TOKEN", b"\xff"),
            (b"MULTIARCH_OIDC_TOKEN_VAR", b"MY_TOKEN"),
        ]))
        .unwrap();
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["MULTIARCH_OIDC_TOKEN_VAR", "MULTIARCH_TAGS"]
        );
        // The id_token variable MULTIARCH_OIDC_TOKEN_VAR names is read.
        let e = snapshot(pairs(&[
            (b"MY_TOKEN", b"\xff"),
            (b"MULTIARCH_OIDC_TOKEN_VAR", b"MY_TOKEN"),
        ]))
        .unwrap_err();
        assert!(matches!(e, Error::NotUnicode { ref variable, .. } if variable == "MY_TOKEN"));
    }
}
