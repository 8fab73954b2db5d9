//! HTTP/1.1 written by hand, for the requests a client library will not send: a `Host`
//! naming another server (as a DNS-rebinding page's browser sends it), or a body far
//! larger than the test's own memory, streamed from a small buffer.
//!
//! Every request asks for `Connection: close` and reads the answer to the end of the
//! connection; a chunked body is decoded.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use super::{Reply, Server};

/// How long a hand-written request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One request, headers as given (a `Host` among them replaces the server's own).
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        }
    }

    /// Adds a header (`Host` overrides the default, the server's own address).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and its content type.
    pub fn body(mut self, content_type: &str, body: &[u8]) -> Self {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body.to_vec();
        self
    }

    /// Sends it to `server` and reads the whole answer.
    pub fn send(&self, server: &Server) -> Reply {
        let mut stream = connect(server);
        let head = self.head(server, self.body.len() as u64);
        stream
            .write_all(head.as_bytes())
            .expect("write the request head");
        stream
            .write_all(&self.body)
            .expect("write the request body");
        let answer = read_to_end(&mut stream);
        parse(&answer).unwrap_or_else(|| {
            panic!(
                "{} {}: not an HTTP answer: {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&answer)
            )
        })
    }

    /// Sends `prefix`, then `filler_bytes` bytes of `filler`, then `suffix` as the body,
    /// writing from one small buffer while the answer is read, so the server may answer
    /// (and close) before the body is through. Returns the answer, if one arrived, and
    /// how many body bytes the server took before it stopped reading.
    pub fn send_streamed(
        &self,
        server: &Server,
        prefix: &[u8],
        filler: u8,
        filler_bytes: u64,
        suffix: &[u8],
    ) -> (Option<Reply>, u64) {
        let mut stream = connect(server);
        let total = prefix.len() as u64 + filler_bytes + suffix.len() as u64;
        let head = self.head(server, total);
        let mut writer = stream.try_clone().expect("clone the connection");
        let (prefix, suffix) = (prefix.to_vec(), suffix.to_vec());
        let sender = std::thread::spawn(move || {
            if writer.write_all(head.as_bytes()).is_err() {
                return 0;
            }
            let chunk = [filler; 64 * 1024];
            let mut sent = 0u64;
            let mut write = |bytes: &[u8]| -> bool {
                let ok = writer.write_all(bytes).is_ok();
                if ok {
                    sent += bytes.len() as u64;
                }
                ok
            };
            let mut left = filler_bytes;
            let mut ok = write(&prefix);
            while ok && left > 0 {
                let n = left.min(chunk.len() as u64);
                ok = write(&chunk[..n as usize]);
                left -= n;
            }
            if ok {
                write(&suffix);
            }
            let _ = writer.shutdown(Shutdown::Write);
            sent
        });
        let answer = read_to_end(&mut stream);
        let _ = stream.shutdown(Shutdown::Both);
        let sent = sender.join().expect("the sending thread");
        (parse(&answer), sent)
    }

    fn head(&self, server: &Server, length: u64) -> String {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            head.push_str(&format!("Host: {}\r\n", server.authority()));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {length}\r\nConnection: close\r\n\r\n"
        ));
        head
    }
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.authority())
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", server.authority()));
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// Everything the server sends until it closes (or resets) the connection.
fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Status, headers and body of an answer (the body de-chunked).
fn parse(answer: &[u8]) -> Option<Reply> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let rest = &answer[end + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            return body;
        };
        let start = line_end + 2;
        let Some(chunk) = rest.get(start..start + size) else {
            body.extend_from_slice(&rest[start.min(rest.len())..]);
            return body;
        };
        body.extend_from_slice(chunk);
        rest = rest.get(start + size + 2..).unwrap_or_default();
    }
}
