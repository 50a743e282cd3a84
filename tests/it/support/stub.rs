//! A minimal registry stub that serves one image, requires basic auth, and answers blob requests
//! with a redirect to a second server (as ECR redirects blob downloads to S3). The second server
//! records the headers it receives, so a test can check that no Authorization followed.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

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
}

fn read_request(stream: &TcpStream) -> Option<(String, Vec<String>)> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    if reader.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        headers.push(line.trim().to_string());
    }
    Some((first.trim().to_string(), headers))
}

fn respond(mut stream: &TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
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
        let blob_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let blob_host = blob_listener.local_addr().unwrap().to_string();
        let blob_requests = Arc::new(Mutex::new(Vec::new()));
        let seen = blob_requests.clone();
        thread::spawn(move || {
            for stream in blob_listener.incoming().flatten() {
                if let Some((_, headers)) = read_request(&stream) {
                    seen.lock().unwrap().push(headers);
                    respond(&stream, "200 OK", &[], &config);
                }
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let redirect_to = blob_host.clone();
        let registry_auth = Arc::new(Mutex::new(Vec::new()));
        let auth_seen = registry_auth.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let Some((line, headers)) = read_request(&stream) else {
                    continue;
                };
                let auth = headers.iter().find_map(|h| {
                    h.strip_prefix("Authorization: ")
                        .or_else(|| h.strip_prefix("authorization: "))
                        .map(str::to_string)
                });
                if let Some(a) = &auth {
                    auth_seen.lock().unwrap().push(a.clone());
                }
                if auth.as_deref() != Some(expected.as_str()) {
                    respond(
                        &stream,
                        "401 Unauthorized",
                        &[("WWW-Authenticate", "Basic realm=\"stub\"".into())],
                        b"",
                    );
                    continue;
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                if path.starts_with("/v2/app/manifests/") {
                    let headers = [
                        (
                            "Content-Type",
                            "application/vnd.oci.image.manifest.v1+json".to_string(),
                        ),
                        ("Docker-Content-Digest", sha256(manifest.as_bytes())),
                    ];
                    let body: &[u8] = if line.starts_with("HEAD") {
                        b""
                    } else {
                        manifest.as_bytes()
                    };
                    respond(&stream, "200 OK", &headers, body);
                } else if path.starts_with("/v2/app/blobs/") {
                    let location =
                        format!("http://{redirect_to}/bucket/blob?X-Amz-Signature=deadbeef");
                    respond(
                        &stream,
                        "307 Temporary Redirect",
                        &[("Location", location)],
                        b"",
                    );
                } else {
                    respond(&stream, "200 OK", &[], b"{}");
                }
            }
        });
        RedirectingRegistry {
            host,
            blob_host,
            registry_auth,
            blob_requests,
        }
    }
}
