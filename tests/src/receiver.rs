//! A webhook receiver on loopback: a small HTTP/1.1 server on a thread that answers each
//! POST with the next status of its script (then with its default), and keeps every
//! request it got, headers and body, for the test to read.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The largest body the receiver reads.
const MAX_BODY: usize = 1 << 20;

/// One request the receiver got, and the status it answered.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub answered: u16,
    pub at: Instant,
}

impl Delivered {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics (showing it) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the delivery's body is not JSON: {e}\n{}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<u16>>,
    default: Mutex<u16>,
    got: Mutex<Vec<Delivered>>,
    stop: AtomicBool,
}

/// The receiver; stopped when dropped.
pub struct Receiver {
    shared: Arc<Shared>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `127.0.0.1` on a free port, answering `default` to every request.
    pub fn start(default: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("its address").port();
        let shared = Arc::new(Shared::default());
        *shared.default.lock().expect("lock") = default;
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || serve(&listener, &shared))
        };
        Self {
            shared,
            port,
            thread: Some(thread),
        }
    }

    /// The next requests get these statuses, in order (then the default again).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared
            .script
            .lock()
            .expect("lock")
            .extend(statuses.iter().copied());
    }

    /// From now on, requests past the script get `status`.
    pub fn answer_by_default(&self, status: u16) {
        *self.shared.default.lock().expect("lock") = status;
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Delivered> {
        self.shared.got.lock().expect("lock").clone()
    }

    /// Waits until at least `count` requests came (at most `timeout`); returns them all.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Delivered> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests within {timeout:?}, not {count}: {got:#?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // One connection at a time: the server sends one try at a time per
                // delivery, and the tests wait for each.
                let _ = handle(stream, shared);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn handle(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let answered = shared
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| *shared.default.lock().expect("lock"));
    shared.got.lock().expect("lock").push(Delivered {
        method,
        path,
        headers,
        body,
        answered,
        at: Instant::now(),
    });
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {answered} Scripted\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\nok"
    )?;
    stream.flush()
}
