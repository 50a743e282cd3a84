//! Why the AWS SDK's default credential chain gave nothing, told from what the job set: the chain
//! itself (its order, its providers) stays the SDK's; this only reads its verdict, and what the
//! SDK's own loader makes of the profile files, next to the variables. Pure: `sdk` gathers both.

use crate::error::{IdTokenVar, Missing};

/// What the job set for AWS credentials: names, paths, and whether a value is there, never a
/// value. Part of the settings (read from the environment snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AwsSetup {
    pub(crate) access_key_id: bool,
    pub(crate) secret_access_key: bool,
    /// `AWS_PROFILE`.
    pub(crate) profile: Option<String>,
    /// `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`: where profiles are read instead of ~/.aws.
    pub(crate) config_file: Option<String>,
    pub(crate) credentials_file: Option<String>,
    pub(crate) role_arn: bool,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`.
    pub(crate) token_file: Option<String>,
    /// The variable the GitLab id_token is read from, and what it holds.
    pub(crate) token_var: String,
    pub(crate) token_var_renamed: bool,
    pub(crate) token: Held,
}

/// What a variable holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Held {
    #[default]
    Unset,
    Empty,
    Value,
}

/// How the SDK's chain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChainEnd {
    /// Every provider passed: none had credentials.
    NoneFound,
    /// A provider failed and ended the chain: its words, and the system's error beneath them.
    Failed { error: String, os: Option<String> },
}

/// What the SDK's loader makes of the profile files (`AWS_CONFIG_FILE`, ~/.aws/config, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Profiles {
    /// Read (missing files count as empty); whether `AWS_PROFILE`'s profile is in them, and the
    /// files `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` name that do not exist (as
    /// `AWS_CONFIG_FILE (/path)`).
    Read {
        selected_defined: bool,
        absent: Vec<String>,
        /// The selected profile's `source_profile`, when the files do not define it.
        source_undefined: Option<String>,
    },
    /// A file cannot be read or parsed: the loader's words (file, line).
    Broken(String),
}

/// What is missing or broken, first what the job meant to use: with `AWS_ROLE_ARN` and no token
/// file the run's own GitLab OIDC exchange would apply, so its id_token variable comes first.
pub(crate) fn diagnose(setup: &AwsSetup, end: &ChainEnd, profiles: &Profiles) -> Missing {
    let var = IdTokenVar {
        name: setup.token_var.clone(),
        renamed: setup.token_var_renamed,
    };
    if setup.role_arn && setup.token_file.is_none() && setup.token != Held::Value {
        return Missing::IdToken {
            var,
            empty: setup.token == Held::Empty,
        };
    }
    if let Profiles::Broken(error) = profiles {
        return Missing::ProfilesBroken {
            error: error.clone(),
        };
    }
    let files = || {
        format!(
            "{} and {}",
            setup
                .config_file
                .as_ref()
                .map_or("~/.aws/config".to_string(), |f| format!(
                    "AWS_CONFIG_FILE ({f})"
                )),
            setup
                .credentials_file
                .as_ref()
                .map_or("~/.aws/credentials".to_string(), |f| format!(
                    "AWS_SHARED_CREDENTIALS_FILE ({f})"
                )),
        )
    };
    // A file the job named that is not there explains a profile not found, or nothing found
    // (a token file the job set is looked at first).
    if let Profiles::Read { absent, .. } = profiles {
        if !absent.is_empty() && setup.token_file.is_none() {
            return Missing::ProfileFilesAbsent {
                files: absent.clone(),
            };
        }
    }
    if let (
        Some(profile),
        Profiles::Read {
            selected_defined: false,
            ..
        },
    ) = (&setup.profile, profiles)
    {
        return Missing::ProfileUndefined {
            profile: profile.clone(),
            files: files(),
        };
    }
    if let Some(path) = &setup.token_file {
        let path = path.clone();
        if let ChainEnd::Failed { os: Some(os), .. } = end {
            return Missing::TokenFileUnreadable {
                path,
                os: os.clone(),
                var: (setup.token == Held::Value).then_some(var),
            };
        }
        if !setup.role_arn {
            return Missing::TokenFileWithoutRole { path };
        }
        if let ChainEnd::Failed { error, .. } = end {
            return Missing::WebIdentityFailed {
                path,
                error: error.clone(),
            };
        }
    }
    match (end, setup.access_key_id, setup.secret_access_key) {
        (ChainEnd::Failed { error, .. }, _, _) => Missing::ChainFailed {
            error: error.clone(),
        },
        (ChainEnd::NoneFound, true, false) => Missing::HalfKey {
            set: "AWS_ACCESS_KEY_ID",
            unset: "AWS_SECRET_ACCESS_KEY",
        },
        (ChainEnd::NoneFound, false, true) => Missing::HalfKey {
            set: "AWS_SECRET_ACCESS_KEY",
            unset: "AWS_ACCESS_KEY_ID",
        },
        (ChainEnd::NoneFound, ..) => match &setup.profile {
            Some(profile) => match profiles {
                Profiles::Read {
                    source_undefined: Some(source),
                    ..
                } => Missing::SourceProfileUndefined {
                    profile: profile.clone(),
                    source: source.clone(),
                    files: files(),
                },
                _ => Missing::ProfileWithoutCredentials {
                    profile: profile.clone(),
                    files: files(),
                },
            },
            None if setup.token == Held::Value => Missing::RoleArn { var },
            None => Missing::Nothing { var },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gitlab() -> AwsSetup {
        AwsSetup {
            token_var: "GITLAB_OIDC_TOKEN".into(),
            ..Default::default()
        }
    }

    const READ: Profiles = Profiles::Read {
        selected_defined: true,
        absent: Vec::new(),
        source_undefined: None,
    };

    fn failed(error: &str, os: Option<&str>) -> ChainEnd {
        ChainEnd::Failed {
            error: error.into(),
            os: os.map(str::to_string),
        }
    }

    #[test]
    fn each_setup_is_told_what_it_lacks() {
        let default_var = IdTokenVar {
            name: "GITLAB_OIDC_TOKEN".into(),
            renamed: false,
        };
        let not_found = "No such file or directory (os error 2)";
        let cases: Vec<(&str, AwsSetup, ChainEnd, Profiles, Missing)> = vec![
            (
                "a role and no id_token",
                AwsSetup {
                    role_arn: true,
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                READ,
                Missing::IdToken {
                    var: default_var.clone(),
                    empty: false,
                },
            ),
            (
                "a role and an empty id_token, under another name",
                AwsSetup {
                    role_arn: true,
                    token: Held::Empty,
                    token_var: "AWS_ID_TOKEN".into(),
                    token_var_renamed: true,
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                READ,
                Missing::IdToken {
                    var: IdTokenVar {
                        name: "AWS_ID_TOKEN".into(),
                        renamed: true,
                    },
                    empty: true,
                },
            ),
            (
                "an id_token and no role",
                AwsSetup {
                    token: Held::Value,
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                READ,
                Missing::RoleArn {
                    var: default_var.clone(),
                },
            ),
            (
                "a token file that is not there",
                AwsSetup {
                    role_arn: true,
                    token_file: Some("/ci/token".into()),
                    ..gitlab()
                },
                failed(
                    "an error occurred while loading credentials",
                    Some(not_found),
                ),
                READ,
                Missing::TokenFileUnreadable {
                    path: "/ci/token".into(),
                    os: not_found.into(),
                    var: None,
                },
            ),
            (
                "a token file that is not there, and the id_token it hides",
                AwsSetup {
                    role_arn: true,
                    token_file: Some("/ci/token".into()),
                    token: Held::Value,
                    ..gitlab()
                },
                failed(
                    "an error occurred while loading credentials",
                    Some(not_found),
                ),
                READ,
                Missing::TokenFileUnreadable {
                    path: "/ci/token".into(),
                    os: not_found.into(),
                    var: Some(default_var.clone()),
                },
            ),
            (
                "a token file without a role",
                AwsSetup {
                    token_file: Some("/ci/token".into()),
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                READ,
                Missing::TokenFileWithoutRole {
                    path: "/ci/token".into(),
                },
            ),
            (
                "a token file STS refuses",
                AwsSetup {
                    role_arn: true,
                    token_file: Some("/ci/token".into()),
                    ..gitlab()
                },
                failed("service error: InvalidIdentityToken", None),
                READ,
                Missing::WebIdentityFailed {
                    path: "/ci/token".into(),
                    error: "service error: InvalidIdentityToken".into(),
                },
            ),
            (
                "a profile no file defines",
                AwsSetup {
                    profile: Some("publish".into()),
                    config_file: Some("/ci/aws.ini".into()),
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                Profiles::Read {
                    selected_defined: false,
                    absent: Vec::new(),
                    source_undefined: None,
                },
                Missing::ProfileUndefined {
                    profile: "publish".into(),
                    files: "AWS_CONFIG_FILE (/ci/aws.ini) and ~/.aws/credentials".into(),
                },
            ),
            (
                "a role profile whose source_profile no file defines",
                AwsSetup {
                    profile: Some("deploy".into()),
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                Profiles::Read {
                    selected_defined: true,
                    absent: Vec::new(),
                    source_undefined: Some("base".into()),
                },
                Missing::SourceProfileUndefined {
                    profile: "deploy".into(),
                    source: "base".into(),
                    files: "~/.aws/config and ~/.aws/credentials".into(),
                },
            ),
            (
                "a config file the job named that is not there",
                AwsSetup {
                    profile: Some("publish".into()),
                    config_file: Some("/ci/aws.ini".into()),
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                Profiles::Read {
                    selected_defined: false,
                    absent: vec!["AWS_CONFIG_FILE (/ci/aws.ini)".into()],
                    source_undefined: None,
                },
                Missing::ProfileFilesAbsent {
                    files: vec!["AWS_CONFIG_FILE (/ci/aws.ini)".into()],
                },
            ),
            (
                "a profile without credentials",
                AwsSetup {
                    profile: Some("publish".into()),
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                READ,
                Missing::ProfileWithoutCredentials {
                    profile: "publish".into(),
                    files: "~/.aws/config and ~/.aws/credentials".into(),
                },
            ),
            (
                "a config file that does not parse",
                gitlab(),
                failed("ProfileFile provider could not be built", None),
                Profiles::Broken("error parsing ~/.aws/config on line 1".into()),
                Missing::ProfilesBroken {
                    error: "error parsing ~/.aws/config on line 1".into(),
                },
            ),
            (
                "a key id without its secret",
                AwsSetup {
                    access_key_id: true,
                    ..gitlab()
                },
                ChainEnd::NoneFound,
                READ,
                Missing::HalfKey {
                    set: "AWS_ACCESS_KEY_ID",
                    unset: "AWS_SECRET_ACCESS_KEY",
                },
            ),
            (
                "another provider failing",
                gitlab(),
                failed(
                    "the credentials provider was not properly configured: x",
                    None,
                ),
                READ,
                Missing::ChainFailed {
                    error: "the credentials provider was not properly configured: x".into(),
                },
            ),
            (
                "nothing",
                gitlab(),
                ChainEnd::NoneFound,
                READ,
                Missing::Nothing { var: default_var },
            ),
        ];
        for (case, setup, end, profiles, want) in cases {
            assert_eq!(diagnose(&setup, &end, &profiles), want, "{case}");
        }
    }
}
