//! HTTP that holds under abuse: half-open connections are closed within the header
//! timeout while normal requests are served, a slow but steady upload completes, a
//! stalled one is cut off, the connection cap answers 503 and recovers, and anonymous
//! clients are rate limited with `Retry-After`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sandscribe_e2e::{Form, Server, ServerOptions, poll_until, sine, wav};

fn with_http(options: ServerOptions, http: &str) -> ServerOptions {
    options.extra_toml(&format!("[http]\n{http}\n"))
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.authority()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// Reads what the server sends until it closes the connection.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn half_open_connections_are_closed_within_the_header_timeout_while_others_are_served() {
    let server = Server::start(with_http(
        ServerOptions::new(),
        "header_timeout_seconds = 2",
    ));
    let opened = Instant::now();
    let mut half_open: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = connect(&server);
            stream
                .write_all(b"GET /healthz HTT")
                .expect("half a request line");
            stream
        })
        .collect();
    // Meanwhile the server answers whole requests at once.
    assert_eq!(server.get("/healthz").status, 200);
    for stream in &mut half_open {
        read_to_close(stream);
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(1_500) && took < Duration::from_secs(6),
        "200 half-open connections closed after {took:?} (timeout 2 s)"
    );

    // A keep-alive connection that had its answer and then sends nothing is closed too.
    let mut idle = connect(&server);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.authority()
    );
    idle.write_all(request.as_bytes()).expect("a whole request");
    let answered = Instant::now();
    let answer = read_to_close(&mut idle);
    let idle_for = answered.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        idle_for >= Duration::from_millis(1_500) && idle_for < Duration::from_secs(6),
        "an idle keep-alive connection was closed after {idle_for:?} (timeout 2 s)"
    );
    server.assert_serves_echo_job();
}

/// A job submission whose body is sent in `chunk`-byte pieces `every` apart; stops after
/// `stop_after` bytes if given. Returns the server's answer.
fn trickle_upload(
    server: &Server,
    chunk: usize,
    every: Duration,
    stop_after: Option<usize>,
) -> String {
    let audio = wav(&sine(6_000, 16_000, 0.3), 16_000);
    let form = Form::new()
        .text("plugin", "echo")
        .file("file", "slow.wav", "audio/wav", &audio);
    let (content_type, body) = form.encode();
    let mut stream = connect(server);
    let head = format!(
        "POST /api/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.authority(),
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    let end = stop_after.unwrap_or(body.len()).min(body.len());
    for piece in body[..end].chunks(chunk) {
        if stream.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(every);
    }
    read_to_close(&mut stream)
}

#[test]
fn a_slow_but_steady_upload_completes_and_a_stalled_one_is_cut_off() {
    let server = Server::start(with_http(
        ServerOptions::new(),
        "body_stall_seconds = 2\nbody_min_bytes_per_second = 4096",
    ));
    // 192 KB at about 16 KB/s: 12 s, past the 10 s grace, above the minimum rate.
    let started = Instant::now();
    let answer = trickle_upload(&server, 4_096, Duration::from_millis(250), None);
    assert!(
        started.elapsed() > Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    let stalled_at = Instant::now();
    let answer = trickle_upload(&server, 8_192, Duration::from_millis(50), Some(40_000));
    let took = stalled_at.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("upload_too_slow"), "{answer}");
    assert!(
        took < Duration::from_secs(8),
        "cut off after {took:?} (stall 2 s)"
    );
    // Nothing is left of it: no job, and the server goes on.
    assert_eq!(
        server.get("/api/jobs").expect(200).json()["jobs"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    server.assert_serves_echo_job();
}

#[test]
fn beyond_the_connection_cap_a_new_connection_gets_503_and_the_server_recovers() {
    let server = Server::start(with_http(ServerOptions::new(), "max_connections = 16"));
    let idle: Vec<TcpStream> = (0..16).map(|_| connect(&server)).collect();
    let mut held_up = Vec::new();
    poll_until(Duration::from_secs(5), "the cap to be reached", || {
        let mut extra = connect(&server);
        let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = read_to_close(&mut extra);
        held_up.push(answer.clone());
        answer.starts_with("HTTP/1.1 503")
    });
    let busy = held_up.last().expect("an answer");
    assert!(busy.contains("retry-after: 1"), "{busy}");
    assert!(busy.contains(r#""code":"busy""#), "{busy}");
    drop(idle);
    poll_until(
        Duration::from_secs(5),
        "the server to take connections again",
        || server.get("/healthz").status == 200,
    );
    server.assert_serves_echo_job();
}

#[test]
fn anonymous_clients_are_rate_limited_with_retry_after_and_key_holders_are_not() {
    let server = Server::start(with_http(
        ServerOptions::new().api_key("ann-key", "ann", "user"),
        "anonymous_requests_per_minute = 5",
    ));
    for _ in 0..5 {
        assert_eq!(server.get("/login").status, 200);
    }
    let limited = server.get("/login");
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(limited.error_code(), "rate_limited");
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=13).contains(&wait), "{wait}");
    assert_eq!(
        server.get("/healthz").status,
        200,
        "health checks are exempt"
    );
    server.use_key(Some("ann-key"));
    assert_eq!(
        server.get("/api/results").status,
        200,
        "a key holder is not limited"
    );
}
