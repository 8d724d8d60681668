//! A minimal HTTP/1.1 client and server over `std::net`: one request per connection
//! (`Connection: close`), `Content-Length` or chunked response bodies, no TLS. Enough for a
//! Prometheus scrape, the agent's JSON API and its tests; put TLS in front with a reverse proxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 256 * 1024 * 1024;

/// `http://host:port` plus a path, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) authority: String,
    pub(crate) path: String,
}

impl Url {
    /// Parses `http://host[:port][/path[?query]]` (port 80 by default).
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Url { url: url.to_string(), reason: reason.to_string() };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// is supported (terminate TLS in a proxy)"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if auth.is_empty() || auth.contains('@') || auth.contains(char::is_whitespace) {
            return Err(bad("no host, or user info in the URL"));
        }
        let has_port = if auth.starts_with('[') { auth.contains("]:") } else { auth.contains(':') };
        let authority = if has_port { auth.to_string() } else { format!("{auth}:80") };
        Ok(Self { authority, path: path.to_string() })
    }
}

/// A response received by the client.
#[derive(Debug)]
pub(crate) struct ClientResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Sends one request and reads the whole response. Non-2xx statuses are returned, not errors
/// (see [`expect_ok`]).
pub(crate) fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<ClientResponse> {
    let u = Url::parse(url)?;
    let io = |source| Error::Io { url: url.to_string(), source };
    let addrs: Vec<SocketAddr> = u.authority.to_socket_addrs().map_err(io)?.collect();
    let mut last = None;
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut s = stream.ok_or_else(|| {
        io(last.unwrap_or_else(|| std::io::Error::other("host resolved to no address")))
    })?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let _ = s.set_nodelay(true);
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: */*\r\nUser-Agent: eai-cluster/{}\r\n",
        u.path,
        u.authority,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let payload = body.map_or(&[][..], |b| b.1);
    if let Some((ct, b)) = body {
        head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()));
    } else if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(payload).map_err(io)?;
    s.flush().map_err(io)?;
    let mut r = BufReader::new(s);
    let bad = |reason: String| Error::BadResponse { url: url.to_string(), reason };
    let status_line = read_line(&mut r).map_err(io)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("status line `{}`", status_line.trim())));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(|| bad(format!("status line `{}`", status_line.trim())))?;
    let headers = read_headers(&mut r).map_err(io)?;
    let header = |name: &str| {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(&mut r).map_err(|e| bad(format!("chunked body: {e}")))?
    } else if let Some(n) = header("content-length") {
        let n: usize = n.trim().parse().map_err(|_| bad(format!("Content-Length `{n}`")))?;
        if n > MAX_BODY {
            return Err(bad(format!("body of {n} bytes is too large")));
        }
        let mut b = vec![0; n];
        r.read_exact(&mut b).map_err(io)?;
        b
    } else {
        let mut b = Vec::new();
        r.take(MAX_BODY as u64).read_to_end(&mut b).map_err(io)?;
        b
    };
    if header("content-encoding").is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity")) {
        return Err(bad("compressed body (this client does not ask for compression)".into()));
    }
    Ok(ClientResponse { status, body })
}

/// Maps 401/403 to [`Error::Unauthorized`] and any other non-2xx status to [`Error::Status`].
pub(crate) fn expect_ok(url: &str, r: ClientResponse) -> Result<Vec<u8>> {
    match r.status {
        200..=299 => Ok(r.body),
        401 | 403 => Err(Error::Unauthorized { url: url.to_string(), status: r.status }),
        s => Err(Error::Status {
            url: url.to_string(),
            status: s,
            body: String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned(),
        }),
    }
}

fn read_line<R: BufRead>(r: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = r.by_ref().take(MAX_HEAD as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string())
}

fn read_headers<R: BufRead>(r: &mut R) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        let line = read_line(r)?;
        total += line.len();
        if line.is_empty() {
            return Ok(headers);
        }
        if total > MAX_HEAD || headers.len() > 200 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "headers too large"));
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

fn read_chunked<R: BufRead>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("chunk size `{size}`"))
        })?;
        if n == 0 {
            // Trailers, then the blank line.
            let _ = read_headers(r)?;
            return Ok(out);
        }
        if out.len() + n > MAX_BODY {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "body too large"));
        }
        let start = out.len();
        out.resize(start + n, 0);
        r.read_exact(&mut out[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

/// A request received by the server.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The raw (still percent-encoded) path.
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    /// Wall-clock time when the request had been read completely.
    pub(crate) received: SystemTime,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The path's segments, percent-decoded one by one (so `%2F` stays inside a segment).
    pub(crate) fn segments(&self) -> Vec<String> {
        self.path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A response the server sends.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json<T: serde::Serialize>(status: u16, v: &T) -> Self {
        match serde_json::to_vec(v) {
            Ok(body) => Self { status, content_type: "application/json", body },
            Err(e) => Self::error(500, &format!("cannot serialise the response: {e}")),
        }
    }

    pub(crate) fn text(status: u16, content_type: &'static str, body: String) -> Self {
        Self { status, content_type, body: body.into_bytes() }
    }

    pub(crate) fn error(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "error": message }).to_string();
        Self { status, content_type: "application/json", body: body.into_bytes() }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// Whether `presented` equals `expected`, in time independent of where they differ and of
/// their lengths (both are hashed first; the digests are compared without early exit).
pub(crate) fn token_matches(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The handler a [`Server`] calls for every request.
pub(crate) type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A threaded HTTP server: one thread accepts, one short-lived thread per connection.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `handler` until [`Server::stop`].
    pub(crate) fn start(addr: &str, handler: Handler) -> Result<Self> {
        let bind = |source| Error::Bind { addr: addr.to_string(), source };
        let listener = TcpListener::bind(addr).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("eai-agent-http".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let h = Arc::clone(&handler);
                    let _ = std::thread::Builder::new()
                        .name("eai-agent-conn".into())
                        .spawn(move || serve_one(stream, &h));
                }
            })
            .map_err(bind)?;
        Ok(Self { addr: local, stop, accept: Some(accept) })
    }

    /// The bound address (the real port when bound to port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and joins the accept thread (connections in flight finish).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_one(stream: TcpStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut r = BufReader::new(read_half);
    let resp = match read_request(&mut r) {
        Ok(Some(req)) => handler(&req),
        Ok(None) => return,
        Err(e) => Response::error(400, &format!("malformed request: {e}")),
    };
    let mut w = stream;
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(&resp.body);
    let _ = w.flush();
}

fn read_request<R: BufRead>(r: &mut R) -> std::io::Result<Option<Request>> {
    let line = match read_line(r) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request line"));
    };
    let headers = read_headers(r)?;
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse::<usize>())
        .transpose()
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "Content-Length"))?
        .unwrap_or(0);
    if len > 1024 * 1024 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "body too large"));
    }
    // Bodies are not used by any route; read them so the connection stays in sync.
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let received = SystemTime::now();
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        received,
    }))
}

/// Decodes `%XX` escapes and `+` (as a space, in queries).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Encodes a path segment or query value (unreserved characters kept).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://node-3:9400/metrics").unwrap();
        assert_eq!(u.authority, "node-3:9400");
        assert_eq!(u.path, "/metrics");
        assert_eq!(Url::parse("http://h").unwrap().authority, "h:80");
        assert_eq!(Url::parse("http://[::1]:9").unwrap().authority, "[::1]:9");
        assert!(matches!(Url::parse("https://h/"), Err(Error::Url { .. })));
        assert!(Url::parse("http:///x").is_err());
    }

    #[test]
    fn percent_roundtrip() {
        let s = "run 1/ä&b=c%";
        assert_eq!(percent_decode(&percent_encode(s)), s);
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn tokens_compare_by_value_only() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cres", "s3cret"));
        assert!(!token_matches("", "s3cret"));
        assert!(!token_matches("s3cret-longer", "s3cret"));
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"4\r\nab\ncd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        // "ab\ncd" is 5 bytes: a malformed chunk must error, not panic.
        assert!(read_chunked(&mut r).is_err());
        let raw = b"5\r\nab\ncd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        assert_eq!(read_chunked(&mut r).unwrap(), b"ab\ncdefg");
    }
}
