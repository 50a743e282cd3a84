//! A minimal registry stub that serves one image, requires basic auth, and answers blob requests
//! with a redirect to a second server (as ECR redirects blob downloads to S3). The second server
//! records the headers it receives, so a test can check that no Authorization followed.

use std::io::BufReader;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use super::http::{answer, read_head, Head, Server};
use super::sha256;

pub struct RedirectingRegistry {
    /// `127.0.0.1:PORT` of the registry stub.
    pub host: String,
    /// `127.0.0.1:PORT` of the blob server the stub redirects to (plain HTTP).
    pub blob_host: String,
    /// Authorization headers the registry stub saw.
    pub registry_auth: Arc<Mutex<Vec<String>>>,
    /// Header lines the blob server saw, one request each.
    pub blob_requests: Arc<Mutex<Vec<Vec<String>>>>,
    _servers: (Server, Server),
}

/// Reads the one request of a connection (each answer closes it).
fn one_request(stream: &TcpStream) -> Option<Head> {
    read_head(&mut BufReader::new(stream)).ok().flatten()
}

/// Answers and closes.
fn respond(
    mut stream: &TcpStream,
    head: &Head,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut headers = headers.to_vec();
    headers.push(("Connection", "close"));
    let _ = answer(&mut stream, &head.method, status, &headers, body);
}

impl RedirectingRegistry {
    /// Serves `app:latest-amd64` (a linux/amd64 image) for user `user` with password `password`.
    pub fn start(user: &str, password: &str) -> RedirectingRegistry {
        use base64::Engine as _;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let config_digest = sha256(&config);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
            config.len()
        );
        let blob_requests = Arc::new(Mutex::new(Vec::new()));
        let seen = blob_requests.clone();
        let blobs = Server::start(move |stream| {
            if let Some(head) = one_request(&stream) {
                let lines = String::from_utf8_lossy(&head.bytes)
                    .lines()
                    .skip(1)
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                seen.lock().unwrap().push(lines);
                respond(&stream, &head, "200 OK", &[], &config);
            }
        });
        let blob_host = blobs.host.clone();
        let redirect_to = blob_host.clone();
        let registry_auth = Arc::new(Mutex::new(Vec::new()));
        let auth_seen = registry_auth.clone();
        let manifest_digest = sha256(manifest.as_bytes());
        let registry = Server::start(move |stream| {
            let Some(head) = one_request(&stream) else {
                return;
            };
            let auth = head.header("authorization");
            if let Some(a) = &auth {
                auth_seen.lock().unwrap().push(a.clone());
            }
            if auth.as_deref() != Some(expected.as_str()) {
                let challenge = [("WWW-Authenticate", "Basic realm=\"stub\"")];
                respond(&stream, &head, "401 Unauthorized", &challenge, b"");
                return;
            }
            if head.path.starts_with("/v2/app/manifests/") {
                let headers = [
                    ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                    ("Docker-Content-Digest", manifest_digest.as_str()),
                ];
                respond(&stream, &head, "200 OK", &headers, manifest.as_bytes());
            } else if head.path.starts_with("/v2/app/blobs/") {
                let location = format!("http://{redirect_to}/bucket/blob?X-Amz-Signature=deadbeef");
                let headers = [("Location", location.as_str())];
                respond(&stream, &head, "307 Temporary Redirect", &headers, b"");
            } else {
                respond(&stream, &head, "200 OK", &[], b"{}");
            }
        });
        let host = registry.host.clone();
        RedirectingRegistry {
            host,
            blob_host,
            registry_auth,
            blob_requests,
            _servers: (registry, blobs),
        }
    }
}
