//! An HTTP/1.1 proxy in front of the real registry that injects what real networks do: 429 with
//! `Retry-After`, bursts of 503, a connection cut mid-response, a stall past the client's request
//! timeout, and latency (half a round trip each way, one more on connect). It counts requests.
//!
//! A rule decides the fate of the n-th request (0-based, in arrival order). Plain HTTP only.
//! It also records the most requests it ever had in flight at once.
//! Threads, not async: it must not share a runtime with what it tests.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::http::{header, read_body, read_chunked, read_head, Head, Server};

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward to the registry.
    Pass,
    /// Answer this status without asking the registry (`Retry-After` if given).
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// Answer this status with a JSON body (a registry error envelope).
    Json { code: u16, body: String },
    /// Forward, then send the client only half of the response and close.
    Cut,
    /// Accept the request and say nothing for this long, then close.
    Stall(Duration),
    /// Forward with this request target instead (a registry that ignores part of a request).
    Retarget(String),
    /// Forward, and answer with this response header (name, value) instead of the registry's.
    Header(String, String),
}

/// A rule that answers every PUT (a manifest push) with `fault` and passes everything else.
pub fn on_put(fault: Fault) -> impl Fn(&Request, usize) -> Fault + Send + Sync + 'static {
    move |req, _| {
        if req.method == "PUT" {
            fault.clone()
        } else {
            Fault::Pass
        }
    }
}

/// The request, for rules (its `method` and `path`).
pub type Request = Head;

type Rule = dyn Fn(&Request, usize) -> Fault + Send + Sync;

/// A running proxy; stops accepting on drop.
pub struct Proxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    count: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<String>>>,
    flight: Arc<Flight>,
    _server: Server,
}

/// Requests between their arrival and the end of their answer: now, and the most ever.
#[derive(Default)]
struct Flight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// One request in flight; it lands on drop, however its answer ends.
struct InFlight<'a>(&'a Flight);

impl<'a> InFlight<'a> {
    fn start(flight: &'a Flight) -> InFlight<'a> {
        let now = flight.now.fetch_add(1, Ordering::SeqCst) + 1;
        flight.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(flight)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`) with `rtt` of injected latency.
    pub fn start(
        upstream: &str,
        rtt: Duration,
        rule: impl Fn(&Request, usize) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        let count = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let flight = Arc::new(Flight::default());
        let (counter, requests, in_flight) = (count.clone(), log.clone(), flight.clone());
        let upstream = upstream.to_string();
        let server = Server::start(move |client| {
            thread::sleep(rtt); // the TCP handshake's round trip
            let _ = serve(
                client, &upstream, rtt, &rule, &counter, &requests, &in_flight,
            );
        });
        Proxy {
            host: server.host.clone(),
            count,
            log,
            flight,
            _server: server,
        }
    }

    /// The most requests that were in flight at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.flight.peak.load(Ordering::SeqCst)
    }

    /// Requests seen so far.
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// `METHOD path -> fate` for every request so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

struct Upstream {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

fn connect(upstream: &str) -> std::io::Result<Upstream> {
    let s = TcpStream::connect(upstream)?;
    s.set_nodelay(true)?;
    Ok(Upstream {
        writer: s.try_clone()?,
        reader: BufReader::new(s),
    })
}

/// Serves one client connection (keep-alive: many requests).
fn serve(
    client: TcpStream,
    upstream: &str,
    rtt: Duration,
    rule: &Rule,
    count: &AtomicUsize,
    log: &Mutex<Vec<String>>,
    flight: &Flight,
) -> std::io::Result<()> {
    client.set_nodelay(true)?; // no Nagle delays: latency is what the rule injects, nothing else
                               // A TLS ClientHello (clients that try HTTPS before plain HTTP): refuse at once, as a plain
                               // HTTP server's error would, instead of waiting for a line that never comes.
    let mut first = [0u8; 1];
    if client.peek(&mut first)? == 0 || first[0] == 0x16 {
        return Ok(());
    }
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut up: Option<Upstream> = None;
    loop {
        let Some(request) = read_head(&mut reader)? else {
            return Ok(());
        };
        let head = request.bytes.clone();
        let body = read_body(&mut reader, &head)?;
        let _in_flight = InFlight::start(flight);
        let n = count.fetch_add(1, Ordering::SeqCst);
        let fault = rule(&request, n);
        log.lock()
            .unwrap()
            .push(format!("{} {} -> {fault:?}", request.method, request.path));
        thread::sleep(rtt / 2);
        match fault {
            Fault::Status { code, retry_after } => {
                let mut answer = format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\n");
                if let Some(ra) = retry_after {
                    answer.push_str(&format!("Retry-After: {ra}\r\n"));
                }
                answer.push_str("\r\n");
                thread::sleep(rtt / 2);
                client.write_all(answer.as_bytes())?;
            }
            Fault::Json { code, body } => {
                let answer = format!("HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                thread::sleep(rtt / 2);
                client.write_all(answer.as_bytes())?;
            }
            Fault::Stall(d) => {
                thread::sleep(d);
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Pass | Fault::Cut | Fault::Retarget(_) | Fault::Header(..) => {
                let head = match &fault {
                    Fault::Retarget(target) => String::from_utf8_lossy(&head)
                        .replacen(&request.path, target, 1)
                        .into_bytes(),
                    _ => head,
                };
                let response = match forward(&mut up, upstream, &head, &body, &request.method) {
                    Ok(r) => r,
                    Err(_) => {
                        up = None; // the registry closed a kept-alive connection: once more
                        forward(&mut up, upstream, &head, &body, &request.method)?
                    }
                };
                thread::sleep(rtt / 2);
                if fault == Fault::Cut {
                    client.write_all(&response[..response.len() / 2])?;
                    let _ = client.shutdown(Shutdown::Both);
                    return Ok(());
                }
                let response = match &fault {
                    Fault::Header(name, value) => with_header(&response, name, value),
                    _ => response,
                };
                client.write_all(&response)?;
            }
        }
    }
}

/// `response` with header `name` set to `value` (replacing the registry's).
fn with_header(response: &[u8], name: &str, value: &str) -> Vec<u8> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |at| at + 2);
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out: String = head
        .split_inclusive("\r\n")
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        })
        .collect();
    out.push_str(&format!("{name}: {value}\r\n"));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response[end..]);
    bytes
}

/// Sends one request upstream and reads the whole response (head and body, as bytes).
fn forward(
    up: &mut Option<Upstream>,
    upstream: &str,
    head: &[u8],
    body: &[u8],
    method: &str,
) -> std::io::Result<Vec<u8>> {
    if up.is_none() {
        *up = Some(connect(upstream)?);
    }
    let u = up.as_mut().unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(body);
    u.writer.write_all(&request)?;
    let Some(response) = read_head(&mut u.reader)?.map(|h| h.bytes) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "upstream closed",
        ));
    };
    let mut out = response.clone();
    let status: u16 = String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(out);
    }
    if let Some(len) = header(&response, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; len];
        u.reader.read_exact(&mut body)?;
        out.extend(body);
    } else if header(&response, "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        read_chunked(&mut u.reader, &mut out)?;
    } else {
        u.reader.read_to_end(&mut out)?;
        *up = None;
    }
    Ok(out)
}
