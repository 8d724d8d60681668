//! A loopback HTTP/1.1 server for the tests, written on `std::net`: it records every request
//! and answers with what the test's handler returns (JSON, an error status, a delay, or a
//! stream of server-sent events with delays between them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// One request the server received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Value,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to answer.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Json(Value),
    Status(u16, String, Vec<(String, String)>),
    /// Sleep, then answer.
    After(Duration, Box<Reply>),
    /// Server-sent events: (pause before the event, its data).
    Sse(Vec<(Duration, String)>),
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

pub(crate) struct TestServer {
    pub(crate) url: String,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Starts a server whose handler gets each request and its 0-based arrival number.
    pub(crate) fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s2, st2) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, s) = (Arc::clone(&handler), Arc::clone(&s2));
                std::thread::spawn(move || serve_conn(conn, &*h, &s));
            }
        });
        Self { url, seen, stop }
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn serve_conn(conn: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut buf = vec![0u8; len];
        if reader.read_exact(&mut buf).is_err() {
            return;
        }
        let body = serde_json::from_slice(&buf).unwrap_or(Value::Null);
        let req = Seen { path, headers, body };
        let n = {
            let mut g = seen.lock().unwrap();
            g.push(req.clone());
            g.len() - 1
        };
        if !write_reply(&mut out, handler(&req, n)) {
            return;
        }
    }
}

/// Writes a reply; returns whether the connection may be reused.
fn write_reply(out: &mut TcpStream, reply: Reply) -> bool {
    match reply {
        Reply::After(d, r) => {
            std::thread::sleep(d);
            write_reply(out, *r)
        }
        Reply::Json(v) => {
            let b = v.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                b.len()
            );
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(b.as_bytes())).is_ok()
        }
        Reply::Status(code, b, extra) => {
            let mut head = format!(
                "HTTP/1.1 {code} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes()).and_then(|_| out.write_all(b.as_bytes())).is_ok()
        }
        Reply::Sse(events) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            if out.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for (d, data) in events {
                std::thread::sleep(d);
                let ev = format!("data: {data}\n\n");
                let chunk = format!("{:x}\r\n{ev}\r\n", ev.len());
                if out.write_all(chunk.as_bytes()).and_then(|_| out.flush()).is_err() {
                    return false;
                }
            }
            out.write_all(b"0\r\n\r\n").is_ok()
        }
    }
}
