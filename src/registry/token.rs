//! Authorization: what each registry asked for (its `WWW-Authenticate` challenge), the token
//! exchange of the distribution token spec, and the Authorization header kept per host and scope
//! (`repository:group/app:pull,push`), behind one lock each so concurrent requests share one
//! token instead of racing for their own.
//!
//! The token service is reached through the same transport, time limit, body bound, retry
//! budget and verdict on each attempt (`retry::attempt`) as the registry. Its 401/403 is a
//! refusal (exit 5) with its own reason and its host named; its 5xx and timeouts are transient
//! (exit 75). Which realm may get the registry's credential is `origin`'s rule: over TLS, or
//! plain HTTP when listed; a realm on unlisted plain HTTP is refused before any credential goes
//! there (exit 5). A token granting less than asked (no `push` in a JWT's `access` claim) fails
//! at once rather than at the first PUT.
//! Spec: <https://distribution.github.io/distribution/spec/auth/token/>.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::{debug, instrument};

use super::classify::{self, Action, Op};
use super::origin::{self, authority, Sent};
use super::retry::{attempt, retry, Budget};
use super::transport::{Limit, Overflow, Request, Transport, Within};
use crate::credentials::{Credential, Credentials, Found};
use crate::error::Error;

/// Largest token-service answer read: tokens are a few KiB.
pub(crate) const MAX_TOKEN_BYTES: usize = 256 * 1024;

/// What a registry asked for in its 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

type Slot = Arc<Mutex<Option<Option<HeaderValue>>>>;

/// Challenges and headers of a run.
#[derive(Default)]
pub(crate) struct Auth {
    challenges: std::sync::Mutex<HashMap<String, Challenge>>,
    headers: Mutex<HashMap<(String, String), Slot>>,
}

/// What the token service answers.
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

impl Auth {
    /// Remembers what `op.host` (at `registry`, the URL that answered 401) asked for. A Bearer
    /// realm the origin rule refuses (plain HTTP, not listed) is refused here, before any
    /// credential is sent there.
    pub(crate) fn learn(
        &self,
        op: &Op,
        registry: &Url,
        headers: &HeaderMap,
        transport: &Transport,
    ) -> Result<(), Error> {
        let challenge = match challenge(headers) {
            Ok(Some(challenge)) => challenge,
            Ok(None) => return Ok(()), // a 401 without a challenge: the answer stands
            Err(realm) => {
                return Err(Error::Registry {
                    action: op.action.doing(),
                    reference: op.at.to_string(),
                    reason: format!(
                        "{} asks for a bearer token from the token service \"{}\", which is not an absolute http(s) URL, so no token can be asked for (docker and containerd do not resolve such a realm either); the registry's token realm needs fixing",
                        op.host,
                        classify::clean(&realm)
                    ),
                })
            }
        };
        if let Challenge::Bearer { realm, .. } = &challenge {
            origin::judge(Sent::Realm, registry, realm, transport.insecure()).map_err(|p| {
                Error::InsecureRealm {
                    registry: op.registry.to_string(),
                    realm_host: p.host,
                }
            })?;
        }
        self.challenges
            .lock()
            .expect("challenge map")
            .insert(op.host.to_string(), challenge);
        Ok(())
    }

    /// The Authorization header for `op`: cached for its host and scope, else made from the
    /// host's credential (Basic) or a token (Bearer). `stale` is the header a 401 just refused:
    /// a new one is made unless another request already replaced it.
    #[instrument(skip_all, fields(registry = op.registry, scope = %op.scope))]
    pub(crate) async fn header(
        &self,
        op: &Op<'_>,
        stale: Option<Option<&HeaderValue>>,
        transport: &Transport,
        credentials: &dyn Credentials,
        budget: &Budget,
    ) -> Result<Option<HeaderValue>, Error> {
        let key = (op.host.to_string(), op.scope.clone());
        let slot = self.headers.lock().await.entry(key).or_default().clone();
        let mut cached = slot.lock().await;
        match (&*cached, stale) {
            (Some(h), None) => return Ok(h.clone()),
            (Some(h), Some(refused)) if h.as_ref() != refused => return Ok(h.clone()),
            _ => {}
        }
        let challenge = self
            .challenges
            .lock()
            .expect("challenge map")
            .get(op.host)
            .cloned();
        // After a refused Basic credential, look again (an expired ECR token).
        let again = stale.is_some() && !matches!(challenge, Some(Challenge::Bearer { .. }));
        let found = credentials.get(op.registry, again).await?;
        let header = match (&challenge, &found.credential) {
            (Some(Challenge::Bearer { realm, service }), _) => {
                Some(fetch_token(op, realm, service.as_deref(), &found, transport, budget).await?)
            }
            (_, credential) => basic(credential, op.registry)?,
        };
        *cached = Some(header.clone());
        Ok(header)
    }
}

/// Asks the token service for a token for `op.scope`.
async fn fetch_token(
    op: &Op<'_>,
    realm: &Url,
    service: Option<&str>,
    found: &Found,
    transport: &Transport,
    budget: &Budget,
) -> Result<HeaderValue, Error> {
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for scope in op.scope.split(' ').filter(|s| !s.is_empty()) {
            q.append_pair("scope", scope);
        }
    }
    let service_host = authority(realm);
    let basic = basic(&found.credential, op.registry)?;
    debug!(service = %service_host, scope = %op.scope, credential = %found.origin, "token request");
    let token_op = Op {
        action: Action::Token,
        at: op.at,
        host: &service_host,
        registry: op.registry,
        scope: op.scope.clone(),
        hosts_from: op.hosts_from,
        path: op.path,
        ecr: op.ecr,
    };
    let limit = Limit {
        bytes: MAX_TOKEN_BYTES,
        overflow: Overflow::Refuse,
    };
    let reply = retry(budget, || async {
        let req = Request::new(Method::GET, url.clone());
        let bound = Within::Whole(budget.request_timeout);
        attempt(
            transport.exchange(req, basic.as_ref(), bound, limit).await,
            &token_op,
        )
    })
    .await?;
    if matches!(
        reply.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        if op.action == Action::Login {
            return Err(Error::LoginRefused {
                registry: op.registry.to_string(),
                refused_by: format!("its token service {service_host}"),
                credential: found.origin.clone(),
                reason: classify::service_reason(&reply),
            });
        }
        return Err(Error::TokenRefused {
            service: service_host,
            registry: op.registry.to_string(),
            scope: op.scope.clone(),
            credential: found.origin.clone(),
            reason: classify::service_reason(&reply),
        });
    }
    if !reply.status.is_success() {
        return Err(classify::reply(&reply, &token_op, None));
    }
    let bad = |reason: &str| Error::Registry {
        action: "getting a token for",
        reference: op.at.to_string(),
        reason: format!("the token service {service_host} {reason}"),
    };
    let answer: TokenAnswer =
        serde_json::from_slice(&reply.body).map_err(|_| bad("answered without token JSON"))?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("answered without a token"))?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("sent a token with characters no HTTP header may carry"));
    }
    if let Some(missing) = ungranted(&token, &op.scope) {
        return Err(Error::TokenRefused {
            service: service_host,
            registry: op.registry.to_string(),
            scope: op.scope.clone(),
            credential: found.origin.clone(),
            reason: format!("it granted no {missing}"),
        });
    }
    secret_header(&format!("Bearer {token}"), op.registry)
}

/// The Basic header for `credential` (none when anonymous).
fn basic(credential: &Credential, registry: &str) -> Result<Option<HeaderValue>, Error> {
    match credential {
        Credential::Basic { username, password } => {
            let pair = format!("{username}:{}", password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            secret_header(&format!("Basic {encoded}"), registry).map(Some)
        }
        Credential::Anonymous => Ok(None),
    }
}

/// A header value marked sensitive (hyper never logs it).
fn secret_header(value: &str, registry: &str) -> Result<HeaderValue, Error> {
    // A server may echo the credential back in an error: it is blanked out of what we show.
    if let Some((_scheme, credential)) = value.split_once(' ') {
        crate::secret::remember(credential);
    }
    let mut h = HeaderValue::from_str(value).map_err(|_| Error::Registry {
        action: "authenticating to",
        reference: registry.to_string(),
        reason: "the credential has characters no HTTP header may carry".into(),
    })?;
    h.set_sensitive(true);
    Ok(h)
}

#[derive(Deserialize)]
struct Claims {
    access: Option<Vec<Grant>>,
}

#[derive(Deserialize)]
struct Grant {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

/// When the token is a JWT with an `access` claim (the token spec's), the first requested
/// `repository:name:push` it does not grant, as `push on name`. Tokens we cannot read are taken
/// on trust: the registry will say.
fn ungranted(token: &str, scope: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let grants = serde_json::from_slice::<Claims>(&bytes).ok()?.access?;
    for requested in scope.split(' ') {
        let mut parts = requested.splitn(3, ':');
        let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
        if kind != "repository" || !actions.split(',').any(|a| a == "push") {
            continue;
        }
        let granted = grants.iter().any(|g| {
            g.kind == kind && g.name == name && g.actions.iter().any(|a| a == "push" || a == "*")
        });
        if !granted {
            return Some(format!("push on {name}"));
        }
    }
    None
}

/// The challenge a 401 carries: Bearer if offered with a usable realm, else Basic if offered.
/// A Bearer challenge whose realm is not an absolute http(s) URL (`/token`, `token`,
/// `//host/token`) and nothing else usable: `Err(realm)`. Such a realm is not resolved against
/// the registry's URL, as docker/distribution and containerd do not resolve it either: a
/// registry configured so fails for every client, and is named.
pub(crate) fn challenge(headers: &HeaderMap) -> Result<Option<Challenge>, String> {
    let mut basic = false;
    let mut unusable = None;
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for (scheme, params) in parse_challenges(text) {
            match scheme.to_ascii_lowercase().as_str() {
                "bearer" => {
                    // No realm at all (an `error=` alone): not a challenge to answer.
                    let Some(given) = params.get("realm").cloned() else {
                        continue;
                    };
                    let realm = Url::parse(&given)
                        .ok()
                        .filter(|r| matches!(r.scheme(), "http" | "https"));
                    match realm {
                        Some(realm) => {
                            return Ok(Some(Challenge::Bearer {
                                realm,
                                service: params.get("service").cloned(),
                            }))
                        }
                        None => unusable = unusable.or(Some(given)),
                    }
                }
                "basic" => basic = true,
                _ => {}
            }
        }
    }
    match (basic, unusable) {
        (true, _) => Ok(Some(Challenge::Basic)),
        (false, Some(realm)) => Err(realm),
        (false, None) => Ok(None),
    }
}

/// Parses `WWW-Authenticate` (RFC 9110 §11.6.1): one or more `scheme param=value, …`
/// challenges, values plain or quoted (commas inside quotes are values, `\"` escapes).
pub(crate) fn parse_challenges(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        // A token followed by `=` is a parameter of the current challenge; otherwise a scheme.
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let after = rest[end..].trim_start();
        if word.is_empty() {
            break;
        }
        if let (Some(value_part), Some(last)) = (after.strip_prefix('='), out.last_mut()) {
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(quoted) = value_part.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut consumed = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                value.push(e);
                            }
                        }
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[consumed..])
            } else {
                let end = value_part.find(',').unwrap_or(value_part.len());
                (value_part[..end].trim().to_string(), &value_part[end..])
            };
            last.1.insert(word.to_ascii_lowercase(), value);
            rest = remaining;
        } else {
            out.push((word.to_string(), BTreeMap::new()));
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges_with_quoted_commas_and_several_schemes() {
        let parsed = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0, "Bearer");
        assert_eq!(parsed[0].1["realm"], "https://auth.example/token");
        assert_eq!(parsed[0].1["scope"], "repository:a/b:pull,push");
        let parsed = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer realm="https://x/t", service=s"#,
        );
        assert_eq!(parsed.len(), 2, "{parsed:?}");
        assert_eq!(parsed[0].1["realm"], "Registry Realm");
        assert_eq!(parsed[1].1["service"], "s");
        let parsed = parse_challenges(r#"Bearer realm="a\"b""#);
        assert_eq!(parsed[0].1["realm"], "a\"b");
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn prefers_bearer_with_a_usable_realm() {
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, "Basic realm=\"r\"".parse().unwrap());
        assert_eq!(challenge(&h), Ok(Some(Challenge::Basic)));
        h.append(
            WWW_AUTHENTICATE,
            "Bearer realm=\"https://auth.example/token\",service=\"reg\""
                .parse()
                .unwrap(),
        );
        assert!(
            matches!(challenge(&h), Ok(Some(Challenge::Bearer { service: Some(s), .. })) if s == "reg")
        );
        let mut h = HeaderMap::new();
        h.append(
            WWW_AUTHENTICATE,
            "Bearer realm=\"file:///etc/passwd\"".parse().unwrap(),
        );
        assert_eq!(challenge(&h), Err("file:///etc/passwd".to_string()));
        // Relative and scheme-relative realms are not resolved (nor by docker or containerd).
        for realm in ["/token", "token", "//peer.example/token", ""] {
            let mut h = HeaderMap::new();
            let value = format!("Bearer realm=\"{realm}\",service=\"reg\"");
            h.append(WWW_AUTHENTICATE, value.parse().unwrap());
            assert_eq!(challenge(&h), Err(realm.to_string()), "{realm}");
            // With Basic offered too, Basic is taken.
            h.append(WWW_AUTHENTICATE, "Basic realm=\"r\"".parse().unwrap());
            assert_eq!(challenge(&h), Ok(Some(Challenge::Basic)), "{realm}");
        }
        assert_eq!(challenge(&HeaderMap::new()), Ok(None));
    }

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"ES256"}"#),
            b64(&serde_json::to_vec(&claims).unwrap())
        )
    }

    #[test]
    fn a_token_without_push_is_found_out_before_any_push() {
        let pull_only = jwt(
            serde_json::json!({"access": [{"type": "repository", "name": "g/app", "actions": ["pull"]}]}),
        );
        assert_eq!(
            ungranted(&pull_only, "repository:g/app:pull,push").as_deref(),
            Some("push on g/app")
        );
        assert_eq!(ungranted(&pull_only, "repository:g/app:pull"), None);
        let both = jwt(
            serde_json::json!({"access": [{"type": "repository", "name": "g/app", "actions": ["pull", "push"]}]}),
        );
        assert_eq!(ungranted(&both, "repository:g/app:pull,push"), None);
        // Opaque tokens are taken on trust.
        assert_eq!(
            ungranted("opaque-token", "repository:g/app:pull,push"),
            None
        );
        let no_claim = jwt(serde_json::json!({"sub": "x"}));
        assert_eq!(ungranted(&no_claim, "repository:g/app:pull,push"), None);
    }
}
