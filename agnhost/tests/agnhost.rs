//! agnhost's subcommands run as a pod would run them, against loopback: netexec's HTTP and UDP endpoints,
//! serve-hostname's three modes, connect's exit codes and messages, pause's signals.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AGNHOST: &str = env!("CARGO_BIN_EXE_agnhost");

/// A child killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), sig).unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(args: &[&str]) -> Proc {
    Proc(Command::new(AGNHOST).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap())
}

/// A GET over a fresh connection: (status, headers, body, local address of the connection).
fn get(port: u16, path: &str) -> (u16, String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connecting to 127.0.0.1:{port}: {e}"),
        }
    };
    let local = conn.local_addr().unwrap().to_string();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: test\r\nX-Test: yes\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string(), local)
}

fn hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

fn udp_ask(port: u16, message: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..30 {
        socket.send_to(message.as_bytes(), ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    panic!("no UDP answer from port {port} to {message:?}");
}

fn netexec() -> (Proc, u16, u16) {
    let (http, udp) = (free_port(), free_udp_port());
    let p = start(&["netexec", &format!("--http-port={http}"), "--udp-port", &udp.to_string()]);
    (p, http, udp)
}

#[test]
fn netexec_http_endpoints() {
    let (_p, http, udp) = netexec();
    let (status, _, body, _) = get(http, "/hostname");
    assert_eq!((status, body), (200, hostname()));
    let (_, _, body, local) = get(http, "/clientip");
    assert_eq!(body, local, "/clientip answers the client's ip:port");
    assert_eq!(get(http, "/echo?msg=hello%20there").2, "hello there");
    let (status, _, body, _) = get(http, "/echo?msg=gone&code=404");
    assert_eq!((status, body.as_str()), (404, "gone"));
    assert_eq!(get(http, "/header?key=X-Test").2, "yes");
    let all: serde_json::Value = serde_json::from_str(&get(http, "/header").2).unwrap();
    assert_eq!(all["X-Test"], serde_json::json!(["yes"]));
    assert!(get(http, "/anything/else").2.starts_with("NOW: "), "unknown paths get the root handler");
    let (status, _, body, _) = get(http, "/shell?cmd=echo%20hi%3B%20exit%203");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"error": "exit status 3", "output": "hi\n"})
    );
    // Healthy once the UDP server is up.
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(http, "/healthz").0 != 200 {
        assert!(Instant::now() < deadline, "/healthz never became 200");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(http, "/readyz").2, "ok");
    let _ = udp;
}

#[test]
fn netexec_dial() {
    let (_p, http, udp) = netexec();
    let closed = free_port();
    let (status, _, body, _) =
        get(http, &format!("/dial?request=hostname&protocol=http&host=127.0.0.1&port={http}&tries=2"));
    assert_eq!(status, 200);
    assert_eq!(body, format!(r#"{{"responses":["{0}","{0}"]}}"#, hostname()));
    let (_, _, body, _) = get(http, &format!("/dial?request=echo%20Hi&protocol=udp&host=127.0.0.1&port={udp}"));
    assert_eq!(body, r#"{"responses":["hi"]}"#);
    let (status, _, body, _) = get(http, &format!("/dial?request=hostname&host=127.0.0.1&port={closed}"));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let err = v["errors"][0].as_str().unwrap();
    assert!(err.contains("connect: connection refused"), "{err}");
    assert!(v.get("responses").is_none());
    let (status, _, body, _) = get(http, &format!("/dial?host=127.0.0.1&port={http}"));
    assert_eq!((status, body.as_str()), (400, "request parameter not specified. <nil>\n"));
    let (status, _, body, _) = get(http, &format!("/dial?request=x&protocol=sctpx&host=127.0.0.1&port={http}"));
    assert_eq!((status, body.as_str()), (400, "unsupported protocol. sctpx\n"));
    let (status, _, _, _) = get(http, &format!("/dial?request=x&tries=many&host=127.0.0.1&port={http}"));
    assert_eq!(status, 400);
}

#[test]
fn netexec_udp_commands() {
    let (_p, _http, udp) = netexec();
    assert_eq!(udp_ask(udp, "hostname"), hostname());
    assert_eq!(udp_ask(udp, "echo Hello"), "hello");
    assert!(udp_ask(udp, "clientip").starts_with("127.0.0.1:"));
}

#[test]
fn netexec_exit_and_sigterm() {
    let (mut p, http, _) = netexec();
    get(http, "/hostname");
    // /exit with no timeout exits at once with the code, without answering.
    let mut conn = TcpStream::connect(("127.0.0.1", http)).unwrap();
    write!(conn, "GET /exit?code=7 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(7));

    let (mut p, http, _) = netexec();
    get(http, "/hostname");
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(0));

    // A graceful /exit answers, then exits with the code.
    let (mut p, http, _) = netexec();
    let (status, _, _, _) = get(http, "/exit?code=5&timeout=2s");
    assert_eq!(status, 200);
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(5));
}

#[test]
fn serve_hostname_modes() {
    let port = free_port();
    let _http = start(&["serve-hostname", "--port", &port.to_string(), "--close"]);
    let (status, head, body, _) = get(port, "/whatever");
    assert_eq!((status, body), (200, hostname()));
    assert!(head.to_lowercase().contains("connection: close"), "{head}");

    let port = free_port();
    let _tcp = start(&["serve-hostname", "--port", &port.to_string(), "--tcp", "--http=false"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    };
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, hostname());

    let port = free_udp_port();
    let _udp = start(&["serve-hostname", "--port", &port.to_string(), "--udp", "--http=false"]);
    assert_eq!(udp_ask(port, "x"), hostname());

    // HTTP and TCP together is refused, as upstream.
    let out = Command::new(AGNHOST).args(["serve-hostname", "--tcp"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Can't serve TCP/UDP mode and HTTP mode at the same time"));
}

fn connect(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(AGNHOST).arg("connect").args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn connect_exit_codes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    assert_eq!(connect(&[&open, "--timeout=2s"]), (Some(0), String::new()));
    let closed = format!("127.0.0.1:{}", free_port());
    assert_eq!(connect(&[&closed]), (Some(1), "REFUSED\n".to_string()));
    let (code, err) = connect(&["127.0.0.1"]);
    assert_eq!((code, err.as_str()), (Some(1), "UNKNOWN: address 127.0.0.1: missing port in address\n"));
    let (code, err) = connect(&["no-such-host.invalid:80"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("DNS: "), "{err}");

    // UDP: a server that answers, one that never answers (TIMEOUT), a closed port (REFUSED).
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hostname\n");
        server.send_to(b"me", peer).unwrap();
        server
    });
    assert_eq!(connect(&[&addr, "--protocol=udp", "--timeout=2s"]).0, Some(0));
    let silent = echo.join().unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let (code, err) = connect(&[&silent_addr, "--protocol=udp", "--timeout=300ms"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("TIMEOUT: "), "{err}");
    let closed_udp = format!("127.0.0.1:{}", free_udp_port());
    let (code, err) = connect(&[&closed_udp, "--protocol=udp", "--timeout=2s"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("REFUSED: "), "{err}");
}

#[test]
fn pause_exits_on_signals() {
    for (sig, code) in [(nix::sys::signal::Signal::SIGTERM, 2), (nix::sys::signal::Signal::SIGINT, 1)] {
        let mut p = start(&["pause"]);
        let mut line = [0u8; 7];
        p.0.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
        assert_eq!(&line, b"Paused\n");
        p.signal(sig);
        assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(code), "{sig}");
    }
}
