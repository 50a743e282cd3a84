//! A tiny HTTP server that misbehaves on purpose, for what a real registry or token service
//! cannot be made to do: answer with a body that never ends, drip one byte a second, cut a body
//! short, send headers without end, hand out a token no header may carry, name another host in
//! an upload `Location`, or accept connections and never answer. Threads, not async: it must not
//! share a runtime with what it tests. Counts the requests it got and records each one's method,
//! path and `Authorization` header (a capture host: where credentials must never arrive);
//! request bodies are read and dropped.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::http::{answer, read_body, read_head, Server};

/// What to do with one request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answer this status, these headers and body.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Answer 200 with a chunked body that never ends (megabytes a second).
    Endless,
    /// Answer 200 and then one byte a second, forever.
    Drip,
    /// Answer 200 announcing all of `body` and send only its first `sent` bytes, then close.
    Cut { body: Vec<u8>, sent: usize },
    /// Answer 200 with `body`, sent steadily at `per_second` bytes a second.
    Slow { body: Vec<u8>, per_second: usize },
    /// Read the request and never answer.
    Silent,
    /// Answer 200 and then response headers, forever (a head no client reads to its end).
    EndlessHeaders,
}

impl Behaviour {
    pub fn json(status: u16, body: &str) -> Behaviour {
        Behaviour::Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A 401 with a Bearer challenge pointing at `realm`.
    pub fn challenge(realm: &str) -> Behaviour {
        Behaviour::Answer {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!("Bearer realm=\"{realm}\",service=\"hostile\""),
            )],
            body: Vec::new(),
        }
    }
}

/// A linux/amd64 image to serve by hand: its config and a manifest pointing at it (and at its
/// layer, if it has one).
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: String,
    pub manifest_digest: String,
    /// The layer's bytes and digest (empty: no layer).
    pub layer: Vec<u8>,
    pub layer_digest: String,
}

impl Image {
    /// The image, its manifest saying the config is `size` bytes (`None`: the truth).
    pub fn amd64(size: Option<usize>) -> Image {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let config_digest = super::sha256(&config);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
            size.unwrap_or(config.len())
        );
        let manifest_digest = super::sha256(manifest.as_bytes());
        Image {
            config,
            config_digest,
            manifest,
            manifest_digest,
            layer: Vec::new(),
            layer_digest: String::new(),
        }
    }

    /// The same image with one layer of `layer`'s bytes (not a real tar: registries do not look).
    pub fn amd64_with_layer(layer: Vec<u8>) -> Image {
        let base = Image::amd64(None);
        let layer_digest = super::sha256(&layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{}}}]}}"#,
            base.config_digest,
            base.config.len(),
            layer.len()
        );
        Image {
            manifest_digest: super::sha256(manifest.as_bytes()),
            manifest,
            layer,
            layer_digest,
            ..base
        }
    }

    /// The answer to the layer's GET.
    pub fn layer(&self) -> Behaviour {
        Behaviour::Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: self.layer.clone(),
        }
    }

    /// The answer to a manifest GET or HEAD.
    pub fn manifest(&self) -> Behaviour {
        Behaviour::Answer {
            status: 200,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest".into(), self.manifest_digest.clone()),
            ],
            body: self.manifest.as_bytes().to_vec(),
        }
    }

    /// The answer to the config blob's GET.
    pub fn config(&self) -> Behaviour {
        Behaviour::Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: self.config.clone(),
        }
    }
}

/// An answer of `status` with a `Location` header.
pub fn redirect(status: u16, location: &str) -> Behaviour {
    Behaviour::Answer {
        status,
        headers: vec![("Location".into(), location.into())],
        body: Vec::new(),
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

pub struct Hostile {
    /// `127.0.0.1:PORT`
    pub host: String,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: Server,
}

impl Hostile {
    /// Serves every request with what `rule(method, path)` says.
    pub fn start(rule: impl Fn(&str, &str) -> Behaviour + Send + Sync + 'static) -> Hostile {
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (counter, log) = (requests.clone(), seen.clone());
        let server = Server::start(move |stream| serve(stream, &rule, &counter, &log));
        Hostile {
            host: server.host.clone(),
            requests,
            seen,
            _server: server,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    rule: &dyn Fn(&str, &str) -> Behaviour,
    counter: &AtomicUsize,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    // The body is read (and dropped) before answering; one that cannot be read ends the
    // connection.
    while let Ok(Some(head)) = read_head(&mut reader) {
        counter.fetch_add(1, Ordering::SeqCst);
        let (method, path) = (head.method.as_str(), head.path.as_str());
        seen.lock().unwrap().push(Seen {
            method: method.to_string(),
            path: path.to_string(),
            authorization: head.header("authorization"),
        });
        if read_body(&mut reader, &head.bytes).is_err() {
            return;
        }
        match rule(method, path) {
            Behaviour::Answer {
                status,
                headers,
                body,
            } => {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let status = format!("{status} Hostile");
                if answer(&mut stream, method, &status, &headers, &body).is_err() {
                    return;
                }
            }
            Behaviour::Endless => {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                while stream.write_all(chunk.as_bytes()).is_ok() {}
                return;
            }
            Behaviour::Drip => {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
                );
                while stream.write_all(b" ").is_ok() {
                    thread::sleep(Duration::from_secs(1));
                }
                return;
            }
            Behaviour::Cut { body, sent } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body[..sent.min(body.len())]);
                let _ = stream.flush();
                return;
            }
            Behaviour::Slow { body, per_second } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let start = std::time::Instant::now();
                let piece = (per_second / 20).max(1);
                for (i, chunk) in body.chunks(piece).enumerate() {
                    // On schedule, whatever the writes cost.
                    let due = start + Duration::from_millis(50 * i as u64);
                    thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
                    if stream.write_all(chunk).is_err() {
                        return;
                    }
                }
            }
            Behaviour::Silent => {
                thread::sleep(Duration::from_secs(600));
                return;
            }
            Behaviour::EndlessHeaders => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
                let mut i = 0u64;
                while stream
                    .write_all(format!("X-Junk-{i}: {}\r\n", "a".repeat(100)).as_bytes())
                    .is_ok()
                {
                    i += 1;
                }
                return;
            }
        }
    }
}
