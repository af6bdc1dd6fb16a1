//! Descriptor limits: select past FD_SETSIZE, and a server out of descriptors.
//! Each server gets its limits in its own process (pre_exec), never in the test's.

mod common;

use common::*;
use iobench::backend::Backend;
use iobench::server::Model;
use iobench::server::ServerStats;
use iobench::sys::Stat;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// A client that expects its echo; false if the server closed or reset it instead.
fn echoes(s: &mut TcpStream, data: &[u8]) -> bool {
    if s.write_all(data).is_err() {
        return false;
    }
    let mut back = vec![0; data.len()];
    match s.read_exact(&mut back) {
        Ok(()) => {
            assert_eq!(back, data, "a served client got wrong bytes");
            true
        }
        Err(_) => false,
    }
}

/// Snapshots until `done` holds for one (at most 10 s) and returns the last.
fn wait_until(server: &mut Server, done: impl Fn(&ServerStats) -> bool) -> ServerStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = server.snapshot();
        if done(&snap) || Instant::now() > deadline {
            return snap;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server starts with descriptors 3..=1010 taken, so its connections soon reach
/// 1024: select refuses those cleanly and keeps serving the others, in every model.
#[test]
fn select_refuses_descriptors_past_fd_setsize_and_keeps_serving() {
    for &model in Model::ALL {
        select_past_fd_setsize(model);
    }
}

fn select_past_fd_setsize(model: Model) {
    let args = model_args(Backend::Select, model);
    let mut server =
        Server::start_with(&strs(&args), |cmd| limit_descriptors(cmd, 4096, Some(1010)));
    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..40 {
        let mut c = server.connect();
        if echoes(&mut c, &pattern(i, 100)) {
            served.push(c);
        } else {
            refused += 1;
        }
    }
    assert!(
        !served.is_empty(),
        "{model}: no client below descriptor 1024 was served"
    );
    assert!(
        refused > 0,
        "{model}: no client reached descriptor 1024 ({} served)",
        served.len()
    );
    // Those already served are still served.
    for (i, c) in served.iter_mut().enumerate() {
        assert!(echoes(c, &pattern(100 + i as u64, 1000)));
    }
    // Free one low descriptor: the next client gets it and is served.
    let closed_before = counter(&server.snapshot(), Stat::Closed);
    drop(served.pop());
    wait_until(&mut server, |s| counter(s, Stat::Closed) > closed_before);
    let mut late = server.connect();
    assert!(echoes(&mut late, b"a freed descriptor is reused"));

    let (stats, err) = server.stop();
    assert_eq!(
        counter(&stats, Stat::RefusedUnwatchable),
        refused,
        "{model}: {stats:?}"
    );
    assert!(err.contains("select cannot watch descriptor 1024"), "{err}");
    assert_eq!(
        err.matches("select cannot watch").count(),
        1,
        "one log line, not one per refusal: {err}"
    );
}

/// RLIMIT_NOFILE of 64: connections past it are accepted into the reserve
/// descriptor and closed at once, the loop does not spin while the flood waits,
/// and service resumes as soon as descriptors are freed.
#[test]
fn out_of_descriptors_no_busy_loop_and_recovery() {
    const CLIENTS: u64 = 100;
    for (backend, model) in combinations_with_models() {
        let args = model_args(backend, model);
        let mut server = Server::start_with(&strs(&args), |cmd| limit_descriptors(cmd, 64, None));
        let mut served = Vec::new();
        let mut refused = 0;
        for i in 0..CLIENTS {
            let mut c = server.connect();
            // Short: with reuseport a client can also wait in the backlog of a
            // reactor that lost its reserve descriptor to the other one.
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            if echoes(&mut c, &pattern(i, 64)) {
                served.push(c);
            } else {
                refused += 1;
            }
        }
        let backend = format!("{backend}/{model}");
        assert!(served.len() > 30, "{backend}: only {} served", served.len());
        assert!(refused > 0, "{backend}: the limit was never reached");

        // While clients sit at the limit, the loop must sleep, not spin.
        let before = server.snapshot();
        thread::sleep(Duration::from_millis(300));
        let after = server.snapshot();
        let waits = counter(&after, Stat::Waits) - counter(&before, Stat::Waits);
        assert!(
            waits < 20,
            "{backend}: {waits} waits in 300 ms while idle at the limit"
        );
        let cpu = |s: &ServerStats| s.process.user_s + s.process.sys_s;
        let busy = cpu(&after) - cpu(&before);
        assert!(
            busy < 0.1,
            "{backend}: {busy:.3} s of CPU in 300 ms while idle at the limit"
        );

        // Free ten descriptors: new clients are served again, once the server has
        // settled every client so far: with reuseport, the ones that timed out in a
        // paused reactor's backlog are accepted (and hold descriptors) only now.
        served.truncate(served.len() - 10);
        let kept = served.len() as u64;
        wait_until(&mut server, |s| {
            let accepted = counter(s, Stat::Accepted);
            accepted + counter(s, Stat::RefusedNoFds) == CLIENTS
                && counter(s, Stat::Closed) == accepted - kept
        });
        for i in 0..5 {
            let mut c = server.connect();
            assert!(
                echoes(&mut c, &pattern(200 + i, 64)),
                "{backend}: not served after recovery"
            );
        }
        let (stats, _) = server.stop();
        let shed = counter(&stats, Stat::RefusedNoFds);
        if model == Model::Reuseport {
            assert!(
                shed > 0 && shed <= refused,
                "{backend}: {shed} of {refused}: {stats:?}"
            );
        } else {
            assert_eq!(shed, refused, "{backend}: {stats:?}");
        }
    }
}
