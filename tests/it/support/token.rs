//! A bearer-token service for `docker-registry`'s `auth: token` mode, the scheme GitLab's
//! registry and Docker Hub use: the registry answers 401 with a `Bearer realm=…` challenge, the
//! client asks this service for a token (with basic credentials) and presents it. Tokens are
//! ES256 JWTs carrying their certificate in `x5c`, which the registry checks against the bundle
//! written here. Counts the tokens it issues.

use std::io::BufReader;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::http::{answer, read_head, Server};

pub const SERVICE: &str = "multiarch-test-registry";
pub const ISSUER: &str = "multiarch-test-issuer";

pub struct TokenService {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    /// Whether `push` is granted (a job token of a project without write access gets a token,
    /// but a pull-only one, as GitLab does).
    pub grants_push: Arc<std::sync::atomic::AtomicBool>,
    /// PEM of the signing certificate, for the registry's `rootcertbundle`.
    pub bundle: PathBuf,
    issued: Arc<AtomicUsize>,
    _server: Server,
}

impl TokenService {
    /// Issues tokens for any scope to `user`/`password`; refuses everyone else (401).
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenService {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let bundle = dir.join("token-signer.pem");
        std::fs::write(&bundle, cert.pem()).unwrap();
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        let grants_push = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let push = grants_push.clone();
        let server = Server::start(move |stream| {
            let Ok(Some(head)) = read_head(&mut BufReader::new(&stream)) else {
                return;
            };
            if head.header("authorization").as_deref() != Some(expected.as_str()) {
                respond(
                    &stream,
                    "401 Unauthorized",
                    "{\"details\":\"bad credentials\"}",
                );
                return;
            }
            let mut access = scopes(&head.path);
            if !push.load(Ordering::SeqCst) {
                for a in &mut access {
                    a["actions"] = serde_json::json!(["pull"]);
                }
            }
            let token = sign(&signer, &x5c, &access);
            counter.fetch_add(1, Ordering::SeqCst);
            let body = format!(
                "{{\"token\":\"{token}\",\"access_token\":\"{token}\",\"expires_in\":300}}"
            );
            respond(&stream, "200 OK", &body);
        });
        TokenService {
            realm: format!("http://{}/token", server.host),
            grants_push,
            bundle,
            issued,
            _server: server,
        }
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

/// Answers JSON and closes (one request per connection).
fn respond(mut stream: &TcpStream, status: &str, body: &str) {
    let headers = [
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    let _ = answer(&mut stream, "GET", status, &headers, body.as_bytes());
}

/// `scope=repository:app:pull,push` query parameters → token `access` entries.
fn scopes(path: &str) -> Vec<serde_json::Value> {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(|s| s.replace("%3A", ":").replace("%2C", ",").replace("%2F", "/"))
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect()
}

fn sign(signer: &EcdsaKeyPair, x5c: &str, access: &[serde_json::Value]) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "ci", "aud": SERVICE, "exp": now + 300, "nbf": now - 5, "iat": now,
        "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&serde_json::to_vec(&claims).unwrap())
    );
    let signature = signer
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", b64(signature.as_ref()))
}
