//! The AWS SDK as multiarch runs it: one HTTP client over rustls with ring (like the rest of the
//! binary) whose DNS keeps getaddrinfo's verdict (`net`'s resolver, as the registry's), a retry classifier
//! that never retries a host that does not exist, and SDK errors converted by error code. A call
//! that failed for want of credentials is told why (`diagnosis`): the chain's verdict, and what
//! the SDK's own loader makes of the profile files (it keeps a parse error's line from the
//! chain's message), next to what the job set.
//!
//! Why the DNS verdict matters: an ECR region comes from the registry host or `AWS_REGION`, and a
//! typo (`eu-wset-1`) names an API endpoint that does not exist. The SDK would retry that as an
//! outage and report that "the AWS API did not answer" (exit 75, a job retry); here it ends at
//! once with exit 2, naming the endpoint and where its region came from. An endpoint override
//! (`AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL`) goes through the same resolver.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};

use super::diagnosis::{diagnose, AwsSetup, ChainEnd, Profiles};
use crate::error::{Error, GaveUp, Refused};
use crate::net::{causes, lookup, DnsFailure};
use crate::text::escaped;

/// The AWS region of a call and where it came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Region {
    pub(super) name: String,
    /// `the registry host …`, or the variables.
    pub(super) from: String,
}

/// SDK configuration from the environment (keys, profiles, web identity, container and
/// instance roles; `AWS_ENDPOINT_URL_*`), over rustls with ring and our resolver. Each attempt of
/// a call gets `attempt` (the request timeout), the whole call with the SDK's retries
/// `ATTEMPTS` of them: the SDK sets no timeout of its own, so an endpoint that takes a request and
/// never answers would hold the run for good.
pub(super) async fn config(region: &Region, attempt: Duration) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_with_resolver(Resolver);
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(attempt.min(CONNECT))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * ATTEMPTS)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .region(aws_config::Region::new(region.name.clone()))
        .load()
        .await
}

/// The SDK's standard retry mode makes at most this many attempts of a call.
const ATTEMPTS: u32 = 3;
/// A TCP (and TLS) connection to an AWS endpoint is up within this, or not at all.
const CONNECT: Duration = Duration::from_secs(10);

/// getaddrinfo with its verdict kept (`net::lookup`, as for registries), for the SDK's connections.
#[derive(Debug, Clone)]
struct Resolver;

impl ResolveDns for Resolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        let name = name.to_string();
        DnsFuture::new(async move {
            match lookup(name).await {
                Ok(addrs) => Ok(addrs.into_iter().map(|a| a.ip()).collect()),
                Err(failure) => Err(ResolveDnsError::new(failure)),
            }
        })
    }
}

/// Forbids retrying a call whose endpoint does not exist: the SDK counts every DNS failure as a
/// transient I/O error, but no retry makes a mistyped region exist.
#[derive(Debug)]
pub(super) struct UnknownHostIsFinal;

impl ClassifyRetry for UnknownHostIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) if unknown_host(e).is_some() => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "a host that does not exist is not retried"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The name that does not exist, if that is why `error` happened.
fn unknown_host<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a str> {
    DnsFailure::find(error)
        .filter(|dns| dns.unknown)
        .map(|dns| dns.name.as_str())
}

/// An SDK call's failure as an error: for want of credentials, what `setup` lacks (the profile
/// files read with the SDK's loader to say so); otherwise by error code (`convert`).
pub(super) async fn failure<E>(
    e: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    action: &'static str,
    resource: &str,
    region: &Region,
    setup: &AwsSetup,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match chain_end(&e) {
        Some(end) if e.as_service_error().is_none() && unknown_host(&e).is_none() => {
            // The SDK's own web identity exchange (AWS_WEB_IDENTITY_TOKEN_FILE) failing at STS
            // is STS's answer, judged as the run's own exchange's is.
            if let Some(sts) = causes(&e).find_map(|c| c.downcast_ref::<StsError>()) {
                return convert_ref(
                    sts,
                    "sts:AssumeRoleWithWebIdentity",
                    "the role of AWS_ROLE_ARN",
                    region,
                );
            }
            Error::NoAwsCredentials {
                action,
                missing: diagnose(setup, &end, &profiles(setup).await),
            }
        }
        _ => convert(e, action, resource, region),
    }
}

/// An STS AssumeRoleWithWebIdentity failure, as the SDK's credential chain wraps it.
type StsError = SdkError<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError,
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
>;

/// How the SDK's credential chain ended, if `error` is its failure.
fn chain_end(error: &(dyn std::error::Error + 'static)) -> Option<ChainEnd> {
    let credentials = causes(error).find_map(|s| s.downcast_ref::<CredentialsError>())?;
    Some(match credentials {
        CredentialsError::CredentialsNotLoaded(_) => ChainEnd::NoneFound,
        other => ChainEnd::Failed {
            error: words(other),
            os: causes(other)
                .find_map(|s| s.downcast_ref::<std::io::Error>())
                .map(|io| io.to_string()),
        },
    })
}

/// What the SDK's loader makes of the profile files, as the chain read them (the process's
/// environment: `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_PROFILE`, `HOME`).
async fn profiles(setup: &AwsSetup) -> Profiles {
    let fs = Default::default();
    let env = Default::default();
    let absent = [
        ("AWS_CONFIG_FILE", &setup.config_file),
        ("AWS_SHARED_CREDENTIALS_FILE", &setup.credentials_file),
    ]
    .into_iter()
    .filter_map(|(name, path)| Some((name, path.as_ref()?)))
    // `~/…` is the SDK's to expand: not judged here.
    .filter(|(_, path)| !path.starts_with('~') && !std::path::Path::new(path).exists())
    .map(|(name, path)| format!("{name} ({path})"))
    .collect();
    match aws_config::profile::load(&fs, &env, &Default::default(), None).await {
        Ok(set) => {
            let selected = set.get_profile(set.selected_profile());
            Profiles::Read {
                selected_defined: selected.is_some(),
                absent,
                source_undefined: selected
                    .and_then(|p| p.get("source_profile"))
                    .filter(|source| set.get_profile(source).is_none())
                    .map(str::to_string),
            }
        }
        Err(e) => Profiles::Broken(words(&e)),
    }
}

/// An error and its causes as one line, each said once, without this run's secrets.
fn words(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !out.last().is_some_and(|last| last.contains(&text)) {
            out.push(text);
        }
    }
    // The SDK's words may carry what an endpoint sent back (a message, a token it echoed).
    escaped(&crate::secret::redact(&out.join(": ")))
        .chars()
        .take(1000)
        .collect()
}

/// Converts an SDK error by error code; the message never carries a secret.
fn convert<E>(
    e: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    action: &'static str,
    resource: &str,
    region: &Region,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    convert_ref(&e, action, resource, region)
}

fn convert_ref<E>(
    e: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    action: &'static str,
    resource: &str,
    region: &Region,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    if let Some(service) = e.as_service_error() {
        // An answer in another protocol than the API's (an XML error where JSON was expected:
        // a proxy, an emulator) leaves the SDK without a code: read it from the body.
        let body = e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let in_body = xml_element(&body, "Code");
        let code_given = service.code().filter(|c| !c.is_empty()).or(in_body);
        let code = code_given.unwrap_or("unknown");
        let message = service
            .message()
            .or_else(|| xml_element(&body, "Message"))
            .unwrap_or("")
            .to_string();
        let reason = match (code_given, status) {
            (Some(c), _) if message.is_empty() => c.to_string(),
            (Some(c), _) => format!("{c}: {message}"),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no error code".to_string(),
        };
        // AWS's (or whoever answered's) text: no control character, no secret of this run, and
        // bounded (AWS's own messages run to a few hundred characters).
        let reason: String = escaped(&crate::secret::redact(&reason))
            .chars()
            .take(1000)
            .collect();
        if let Some(refused) = Refused::of(code, action) {
            return Error::AwsCredentialRefused {
                action,
                refused,
                reason,
            };
        }
        // Without a code the SDK could parse (some endpoints answer XML), the status decides.
        if code.starts_with("AccessDenied") || (service.code().is_none() && status == Some(403)) {
            return Error::EcrDenied {
                action,
                resource: resource.to_string(),
                reason,
            };
        }
        // ECR and STS spell throttling differently; LimitExceededException is ECR's rate limit
        // on GetAuthorizationToken; IDPCommunicationError, STS not reaching GitLab.
        if matches!(
            code,
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "LimitExceededException"
                | "ServiceUnavailableException"
                | "ServiceUnavailable"
                | "ServerException"
                | "InternalFailure"
                | "IDPCommunicationError"
        ) || (code_given.is_none() && matches!(status, Some(429 | 500..=599)))
        {
            return Error::Transient {
                action: "calling",
                reference: action.to_string(),
                reason: format!("AWS answered {reason}"),
                gave_up: GaveUp::Not,
            };
        }
        return Error::Registry {
            action: "calling",
            reference: action.to_string(),
            reason: format!("AWS answered {reason}"),
        };
    }
    if let Some(name) = unknown_host(e) {
        return unreachable_endpoint(name, action, region);
    }
    let reason = match e {
        SdkError::TimeoutError(_) => format!("the AWS API did not answer within MULTIARCH_REQUEST_TIMEOUT (each of {ATTEMPTS} attempts)"),
        _ => "the AWS API did not answer".into(),
    };
    Error::Transient {
        action: "calling",
        reference: action.to_string(),
        reason,
        gave_up: GaveUp::Not,
    }
}

/// The text of the first `<name>…</name>` of an XML body (AWS's query-protocol errors), when it
/// is a short token or sentence.
fn xml_element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    let text = body[start..start + len].trim();
    (!text.is_empty() && text.len() <= 512 && !text.contains('<')).then_some(text)
}

/// An AWS API endpoint that does not exist: a misconfiguration (exit 2), named with the region
/// it was derived from.
fn unreachable_endpoint(name: &str, action: &str, region: &Region) -> Error {
    Error::Unreachable {
        host: name.to_string(),
        problem: format!("the name does not resolve (DNS: no such host); it is the AWS API endpoint for {action} in region {} (from {})", region.name, region.from),
        hint: "check the region (e.g. eu-west-1) in the registry host, AWS_REGION or AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL if one is set".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_that_does_not_exist_is_named_with_its_region() {
        let region = Region {
            name: "eu-wset-1".into(),
            from: "the registry host 123456789012.dkr.ecr.eu-wset-1.amazonaws.com".into(),
        };
        let e = unreachable_endpoint(
            "api.ecr.eu-wset-1.amazonaws.com",
            "ecr:GetAuthorizationToken",
            &region,
        );
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.starts_with(
                "cannot reach api.ecr.eu-wset-1.amazonaws.com: the name does not resolve"
            ),
            "{text}"
        );
        assert!(text.contains("for ecr:GetAuthorizationToken in region eu-wset-1 (from the registry host 123456789012.dkr.ecr.eu-wset-1.amazonaws.com)"), "{text}");
    }

    #[test]
    fn an_xml_error_gives_its_code_and_message() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>";
        assert_eq!(xml_element(body, "Code"), Some("SignatureDoesNotMatch"));
        assert_eq!(
            xml_element(body, "Message"),
            Some("The request signature we calculated does not match")
        );
        assert_eq!(xml_element("{\"message\":\"x\"}", "Code"), None);
        assert_eq!(xml_element("<Code></Code>", "Code"), None);
    }

    #[test]
    fn only_a_name_that_does_not_exist_is_final() {
        let unknown = std::io::Error::other(DnsFailure {
            name: "api.ecr.eu-wset-1.amazonaws.com".into(),
            unknown: true,
        });
        assert_eq!(
            unknown_host(&unknown),
            Some("api.ecr.eu-wset-1.amazonaws.com")
        );
        let outage = std::io::Error::other(DnsFailure {
            name: "api.ecr.eu-west-1.amazonaws.com".into(),
            unknown: false,
        });
        assert_eq!(unknown_host(&outage), None);
    }
}
