//! SIGTERM behaves like Go's `http.Server.Shutdown`: the listener closes at once, the request in
//! flight still completes, then the process exits 0.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{release, Instance};

#[test]
fn sigterm_lets_the_in_flight_request_finish_then_exits_zero() {
    let instance = Instance::sqlite();
    let mut server = instance.start(release("v1.0.0"));
    let url = server.url("/api/v1/slow?ms=1500");
    let client = server.http.clone();
    let started = Instant::now();
    let request = std::thread::spawn(move || {
        let resp = client.get(url).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    });
    // The handler logs when it begins, so the signal surely lands while the request is held.
    while !server
        .stdout()
        .contains("slow request: holding for 1500 ms")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the slow request never arrived:\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.signal(libc::SIGTERM);

    // New connections are refused while the old request is still running.
    let addr = format!("127.0.0.1:{}", instance.port);
    let refused_at = Instant::now();
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            refused_at.elapsed() < Duration::from_secs(1),
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !request.is_finished(),
        "the slow request ended before the listener closed"
    );

    let (status, body) = request.join().unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("1500"), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let exit = server.wait_exit(Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0), "{}", server.logs());
    assert!(server.stdout().contains("Shutdown complete"));
}
