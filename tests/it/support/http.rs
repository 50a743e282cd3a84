//! The HTTP/1.1 that the test servers speak (the redirecting stub registry, the token service,
//! the hostile server, the fault proxy): one accept loop with a thread per connection, one request
//! reader, one answer writer. Threads, not async: a server must not share a runtime with what it
//! tests.

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// A listening server; stops accepting when dropped.
pub struct Server {
    /// `127.0.0.1:PORT`
    pub host: String,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listens on a free loopback port and hands each connection to `connection` on a thread of
    /// its own.
    pub fn start(connection: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let connection = Arc::new(connection);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let connection = connection.clone();
                thread::spawn(move || connection(stream));
            }
        });
        Server { host, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host); // wake the accept loop
    }
}

/// A request's head: its bytes as they came, and its method and target.
#[derive(Debug, Clone)]
pub struct Head {
    pub bytes: Vec<u8>,
    pub method: String,
    pub path: String,
}

impl Head {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.bytes, name)
    }
}

/// Reads a request head; `None` at a clean end of the connection.
pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut bytes = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let end = line == b"\r\n" || line == b"\n";
        bytes.extend_from_slice(&line);
        if end {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    Ok(Some(Head {
        bytes,
        method,
        path,
    }))
}

/// The value of header `name` (any case) in a request or response head.
pub fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The body after `head` as it travels (a chunked body stays chunked, size lines included).
pub fn read_body(reader: &mut impl BufRead, head: &[u8]) -> std::io::Result<Vec<u8>> {
    if header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        read_chunked(reader, &mut out)?;
        return Ok(out);
    }
    let len: usize = header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// Copies a chunked body, size lines and trailer included, into `out`.
pub fn read_chunked(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let mut size_line = Vec::new();
        if reader.read_until(b'\n', &mut size_line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.extend_from_slice(&size_line);
        let text = String::from_utf8_lossy(&size_line);
        let size =
            usize::from_str_radix(text.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            loop {
                let mut line = Vec::new();
                reader.read_until(b'\n', &mut line)?;
                out.extend_from_slice(&line);
                if line == b"\r\n" || line == b"\n" || line.is_empty() {
                    return Ok(());
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        out.extend(chunk);
    }
}

/// Writes an answer: `status` is the code and reason (`200 OK`), the length is the body's, and
/// the body is left out for a HEAD request.
pub fn answer(
    stream: &mut impl Write,
    method: &str,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()
}
