//! A tiny HTTP server that misbehaves on purpose, for what a real registry or token service
//! cannot be made to do: answer with a body that never ends, drip one byte a second, hand out a
//! token no header may carry, or accept connections and never answer. Threads, not async: it must
//! not share a runtime with what it tests. Counts the requests it got.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

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
    /// Read the request and never answer.
    Silent,
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

/// A linux/amd64 image to serve by hand: its config and a manifest pointing at it.
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: String,
    pub manifest_digest: String,
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

pub struct Hostile {
    /// `127.0.0.1:PORT`
    pub host: String,
    requests: Arc<AtomicUsize>,
}

impl Hostile {
    /// Serves every request with what `rule(method, path)` says.
    pub fn start(rule: impl Fn(&str, &str) -> Behaviour + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let rule = Arc::new(rule);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let rule = rule.clone();
                let counter = counter.clone();
                thread::spawn(move || serve(stream, &*rule, &counter));
            }
        });
        Hostile { host, requests }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, rule: &dyn Fn(&str, &str) -> Behaviour, counter: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim().is_empty() {
                break;
            }
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let mut words = first.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        match rule(method, path) {
            Behaviour::Answer {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} Hostile\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                if method != "HEAD" && stream.write_all(&body).is_err() {
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
            Behaviour::Silent => {
                thread::sleep(Duration::from_secs(600));
                return;
            }
        }
    }
}
