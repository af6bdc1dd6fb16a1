//! resp and memcache, the protocols of Redis and memcached: our server on every
//! backend and model, the real redis-server and memcached (started here, on a free
//! loopback port), answered the same, every reply byte checked by `iobench load`;
//! and a server that gets one byte wrong makes `load` fail.

mod common;

use common::*;
use iobench::load::LoadReport;
use iobench::protocol::{self, Protocol};
use iobench::server::Store;
use iobench::sys::Stat;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 200;
const CONNECTIONS: u64 = 6;
const REQUESTS: u64 = 1200;

/// `iobench load --protocol P` against `target`, pipelined; `iobench` itself must
/// succeed, which it does only when every reply byte was right.
fn load(target: SocketAddr, protocol: Protocol) -> LoadReport {
    iobench_json(&[
        "load",
        "--target",
        &target.to_string(),
        "--protocol",
        protocol.name(),
        "--connections",
        &CONNECTIONS.to_string(),
        "--pipeline",
        "4",
        "--payload",
        &PAYLOAD.to_string(),
        "--requests",
        &REQUESTS.to_string(),
        "--warmup",
        "0s",
        "--timeout",
        "30s",
        "--json",
    ])
}

/// The bytes of every reply the run gets, from the protocols' documentation
/// rather than from our code: RESP's bulk string for each ECHO; memcache's STORED
/// for each connection's set, then a VALUE block for each get (the keys are all
/// `iobench:` and 16 hex digits long, the flags 12648430).
fn reply_bytes(protocol: Protocol) -> u64 {
    let value = PAYLOAD as u64;
    match protocol {
        Protocol::Resp => REQUESTS * (format!("${PAYLOAD}\r\n").len() as u64 + value + 2),
        Protocol::Memcache => {
            let head = format!("VALUE iobench:{:016x} 12648430 {PAYLOAD}\r\n", 0).len() as u64;
            let get = head + value + b"\r\nEND\r\n".len() as u64;
            CONNECTIONS * b"STORED\r\n".len() as u64 + (REQUESTS - CONNECTIONS) * get
        }
        _ => unreachable!("only resp and memcache"),
    }
}

fn assert_all_verified(r: &LoadReport, protocol: Protocol, ctx: &str) {
    assert_eq!(r.requests_total, REQUESTS, "{ctx}: {r:?}");
    assert_eq!(r.errors(), 0, "{ctx}: {r:?}");
    assert_eq!(r.bytes_in, reply_bytes(protocol), "{ctx}: {r:?}");
}

#[test]
fn resp_and_memcache_are_verified_against_our_server_on_every_backend_and_model() {
    for (b, m) in combinations_with_models() {
        for protocol in [Protocol::Resp, Protocol::Memcache] {
            let ctx = format!("{protocol} on {b}/{m}");
            let mut args = model_args(b, m);
            args.extend(["--protocol".into(), protocol.name().into()]);
            let server = Server::start(&strs(&args));
            let r = load(server.addr, protocol);
            assert_all_verified(&r, protocol, &ctx);
            let (stats, _) = server.stop();
            assert_eq!(counter(&stats, Stat::ProtocolErrors), 0, "{ctx}");
            assert_eq!(counter(&stats, Stat::BytesOut), r.bytes_in, "{ctx}");
        }
    }
}

/// A redis-server or memcached of the test's own, in its own process group, on a
/// free loopback port; dropping it kills the group and reaps the process.
struct RealServer {
    /// Held for its drop, which ends the server.
    _process: Reaped,
    addr: SocketAddr,
}

impl RealServer {
    fn redis() -> RealServer {
        RealServer::start("redis-server", "redis-server", |port| {
            [
                "--port",
                port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ]
            .map(String::from)
            .to_vec()
        })
    }

    fn memcached() -> RealServer {
        RealServer::start("memcached", "memcached", |port| {
            let mut args: Vec<String> = ["-p", port, "-l", "127.0.0.1", "-U", "0", "-t", "1"]
                .map(String::from)
                .to_vec();
            // memcached refuses to run as root unless told which user to be.
            // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                args.extend(["-u".into(), "root".into()]);
            }
            args
        })
    }

    /// Starts `program` (from the Debian package `package`) with `args(port)`, and
    /// waits until it accepts. A port another test took meanwhile makes it exit:
    /// then another port is tried.
    fn start(program: &str, package: &str, args: impl Fn(&str) -> Vec<String>) -> RealServer {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let child = Command::new(program)
                .args(args(&port.to_string()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn();
            let child = match child {
                Ok(child) => child,
                Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                    "{program} is not installed, and this test drives the real one: \
                     apt-get install {package}"
                ),
                Err(e) => panic!("cannot start {program}: {e}"),
            };
            let mut process = Reaped::group(child);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(addr).is_ok() {
                    return RealServer {
                        _process: process,
                        addr,
                    };
                }
                if process.try_wait().is_some() {
                    let out = process.wait_with_output();
                    eprintln!(
                        "{program} on port {port} exited: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{program} does not accept on {addr}"
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("{program} did not start on any of 5 free ports");
    }
}

/// A real server that is not installed fails its test with the line that installs it.
#[test]
fn a_missing_server_names_the_package_to_install() {
    let started = std::panic::catch_unwind(|| {
        RealServer::start("iobench-no-such-server", "no-such-package", |_| Vec::new())
    });
    let why = started
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(why.contains("apt-get install no-such-package"), "{why:?}");
}

#[test]
fn load_verifies_every_reply_of_the_real_redis_and_memcached() {
    let redis = RealServer::redis();
    let r = load(redis.addr, Protocol::Resp);
    assert_all_verified(&r, Protocol::Resp, "redis-server");
    let memcached = RealServer::memcached();
    let r = load(memcached.addr, Protocol::Memcache);
    assert_all_verified(&r, Protocol::Memcache, "memcached");
}

/// Sends `script` in one write, then `sentinel`'s request, and reads until the
/// sentinel's reply ends what came back (it must be a reply that no reply of the
/// script can end with); returns what came before it.
fn answers(addr: SocketAddr, script: &[u8], sentinel: (&[u8], &[u8])) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&[script, sentinel.0].concat()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(sentinel.1) {
        let n = s.read(&mut buf).expect("the replies");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got.truncate(got.len() - sentinel.1.len());
    let _ = s.shutdown(Shutdown::Both);
    got
}

fn resp_command(strings: &[&[u8]]) -> Vec<u8> {
    let mut c = format!("*{}\r\n", strings.len()).into_bytes();
    for s in strings {
        c.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
        c.extend_from_slice(s);
        c.extend_from_slice(b"\r\n");
    }
    c
}

/// The same bytes to the real server and to ours get the same bytes back: the
/// commands we model, their wrong uses and commands we do not know.
#[test]
fn our_server_answers_as_redis_and_memcached_do() {
    let resp_script: Vec<u8> = [
        &[&b"PING"[..]][..],
        &[b"ping", b"hello"],
        &[b"ECHO", b""],
        &[b"eChO", b"two\r\nlines"],
        &[b"echo"],
        &[b"ECHO", b"a", b"b"],
        &[b"PING", b"a", b"b"],
        &[b"FOOBAR", b"x", b"y"],
        &[b"NOPE"],
        &[&[b'N'; 200], &[b'a'; 60], &[b'b'; 60], b"c\r\n", &[b'd'; 9]],
    ]
    .iter()
    .flat_map(|c| resp_command(c))
    .collect();
    let sentinel = (resp_command(&[b"ECHO", b"end"]), b"$3\r\nend\r\n".to_vec());
    let long_key = "k".repeat(251);
    // The long key first: memcached drops the replies queued before its error.
    let memcache_script = format!(
        "get {long_key}\r\nset a 5 0 3\r\nabc\r\nget a\r\nget a b\r\nset b 0 0 0 noreply\r\n\r\n\
         get b a\r\nget zzz\r\nbogus\r\nget\r\nGET a\r\nset {long_key} 0 0 1\r\nx\r\n\
         set c 0 0 x\r\nset c 0 0\r\nset c 1 2 3 yes\r\nxyz\r\n\
         set a 6 0 2\r\nxy\r\nget a c\r\n"
    );
    // A reply no earlier one can end with (a bare END could be a get's).
    let memcache_sentinel = (
        &b"set zz-end 0 0 3\r\nend\r\nget zz-end\r\n"[..],
        &b"STORED\r\nVALUE zz-end 0 3\r\nend\r\nEND\r\n"[..],
    );
    let redis = RealServer::redis();
    let theirs = answers(redis.addr, &resp_script, (&sentinel.0, &sentinel.1));
    drop(redis);
    let server = Server::start(&["--protocol", Protocol::Resp.name()]);
    let ours = answers(server.addr, &resp_script, (&sentinel.0, &sentinel.1));
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "resp"
    );
    let (stats, _) = server.stop();
    assert_eq!(counter(&stats, Stat::ProtocolErrors), 0);

    let memcached = RealServer::memcached();
    let theirs = answers(
        memcached.addr,
        memcache_script.as_bytes(),
        memcache_sentinel,
    );
    drop(memcached);
    let server = Server::start(&["--protocol", Protocol::Memcache.name()]);
    let ours = answers(server.addr, memcache_script.as_bytes(), memcache_sentinel);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "memcache"
    );
    server.stop();
}

/// The replies the library's own processor gives `script` read whole, on a fresh
/// store.
fn whole_answer(protocol: Protocol, script: &[u8]) -> Vec<u8> {
    let (store, mut out, mut at) = (Store::new(1 << 20), Vec::new(), 0);
    while let Some((frame, used)) = protocol::decode(protocol, &script[at..], 1 << 20).unwrap() {
        protocol::reply(&frame, &store, &mut out);
        at += used;
    }
    assert_eq!(at, script.len(), "a script of whole commands");
    out
}

/// Commands that arrive a few bytes at a time, split at every kind of place (in a
/// length, in a value, between `\r` and `\n`), are answered as if they came whole:
/// the server keeps what is incomplete, on every backend and model.
#[test]
fn trickled_commands_are_answered_as_whole_ones_on_every_backend_and_model() {
    let value = [b'v'; 300];
    let resp: Vec<u8> = [
        resp_command(&[b"ECHO", &value]),
        resp_command(&[b"ping"]),
        resp_command(&[b"NOPE", b"x"]),
        resp_command(&[b"PING", b"\r\n"]),
    ]
    .concat();
    let memcache = [
        &b"set k 7 0 300\r\n"[..],
        &value,
        b"\r\nget k nothing\r\nbogus\r\nget k\n",
    ]
    .concat();
    for (b, m) in combinations_with_models() {
        for (protocol, script) in [(Protocol::Resp, &resp), (Protocol::Memcache, &memcache)] {
            let ctx = format!("{protocol} on {b}/{m}");
            let mut args = model_args(b, m);
            args.extend(["--protocol".into(), protocol.name().into()]);
            let server = Server::start(&strs(&args));
            let mut c = server.connect();
            c.set_nodelay(true).unwrap();
            for (i, piece) in script.chunks(7).enumerate() {
                c.write_all(piece).unwrap();
                if i % 4 == 0 {
                    // Often enough that the server reads many pieces apart.
                    thread::sleep(Duration::from_millis(1));
                }
            }
            let expected = whole_answer(protocol, script);
            let mut got = vec![0; expected.len()];
            c.read_exact(&mut got).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{ctx}"
            );
            assert!(finish(c).is_empty(), "{ctx}");
            let (stats, _) = server.stop();
            assert_eq!(counter(&stats, Stat::ProtocolErrors), 0, "{ctx}");
        }
    }
}

/// Reads until the server closes; what it sent before.
fn until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // a reset also ends it
    got
}

/// A frame that cannot be decoded is answered with the protocol's error and closes
/// its connection alone (counted); a full store refuses a set and serves on.
#[test]
fn malformed_frames_close_their_connection_and_a_full_store_refuses() {
    for (b, m) in combinations_with_models() {
        let ctx = format!("{b}/{m}");
        let mut args = model_args(b, m);
        args.extend(["--protocol", "resp", "--max-frame", "1K"].map(String::from));
        let server = Server::start(&strs(&args));
        let mut good = server.connect();
        let mut bad = server.connect();
        bad.write_all(b"*1\r\n:12\r\n").unwrap();
        let said = String::from_utf8(until_closed(bad)).unwrap();
        assert!(
            said.starts_with("-ERR Protocol error: expected '$'"),
            "{ctx}: {said}"
        );
        let mut huge = server.connect();
        huge.write_all(b"*2\r\n$4\r\nECHO\r\n$2000\r\n").unwrap();
        let said = String::from_utf8(until_closed(huge)).unwrap();
        assert!(
            said.contains("exceeds the 1024-byte limit"),
            "{ctx}: {said}"
        );
        let ping = resp_command(&[b"PING"]);
        good.write_all(&ping[..7]).unwrap();
        thread::sleep(Duration::from_millis(20));
        good.write_all(&ping[7..]).unwrap();
        let mut pong = [0u8; 7];
        good.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"+PONG\r\n", "{ctx}");
        assert!(finish(good).is_empty(), "{ctx}");
        let (stats, _) = server.stop();
        assert_eq!(counter(&stats, Stat::ProtocolErrors), 2, "{ctx}");

        let mut args = model_args(b, m);
        args.extend(["--protocol", "memcache", "--store-memory", "1K"].map(String::from));
        let server = Server::start(&strs(&args));
        let mut c = server.connect();
        let big = "v".repeat(2000);
        c.write_all(
            format!(
                "set big 0 0 {}\r\n{big}\r\nset small 1 0 2\r\nok\r\n",
                big.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let expected = "SERVER_ERROR out of memory storing object\r\nSTORED\r\n";
        let mut got = vec![0; expected.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), expected, "{ctx}");
        let mut bad = server.connect();
        bad.write_all(b"set k 0 0 1\r\nxy\r\n").unwrap();
        let said = String::from_utf8(until_closed(bad)).unwrap();
        assert!(
            said.starts_with("CLIENT_ERROR bad data chunk"),
            "{ctx}: {said}"
        );
        let expected = "VALUE small 1 2\r\nok\r\nEND\r\n";
        c.write_all(b"get big small\r\n").unwrap();
        let mut got = vec![0; expected.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), expected, "{ctx}");
        assert!(finish(c).is_empty(), "{ctx}");
        let (stats, _) = server.stop();
        assert_eq!(counter(&stats, Stat::ProtocolErrors), 1, "{ctx}");
    }
}

/// A thread-per-connection server that speaks `protocol` with the library's own
/// decoder and processor, and gets one byte of its `wrong`th reply (counted over
/// all connections) wrong. The listener lives until the test process exits.
fn faulty_server(protocol: Protocol, wrong: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let store = Arc::new(Store::new(1 << 20));
    let replies = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let (store, replies) = (Arc::clone(&store), Arc::clone(&replies));
            thread::spawn(move || {
                let (mut pending, mut buf) = (Vec::new(), [0u8; 4096]);
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    pending.extend_from_slice(&buf[..n]);
                    let (mut used, mut out) = (0, Vec::new());
                    while let Ok(Some((frame, len))) =
                        protocol::decode(protocol, &pending[used..], 1 << 20)
                    {
                        let start = out.len();
                        protocol::reply(&frame, &*store, &mut out);
                        if replies.fetch_add(1, Ordering::SeqCst) == wrong {
                            // The last byte of the value (of STORED, should the
                            // reply be a set's), not its framing: only a check of
                            // every byte sees it.
                            let tail = match protocol {
                                Protocol::Memcache => b"\r\nEND\r\n".len(),
                                _ => b"\r\n".len(),
                            };
                            let at = out.len().saturating_sub(tail + 1).max(start);
                            out[at] ^= 0x01;
                        }
                        used += len;
                    }
                    pending.drain(..used);
                    if s.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn iobench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(args)
        .output()
        .expect("run iobench")
}

#[test]
fn one_wrong_byte_in_a_reply_makes_load_fail() {
    for protocol in [Protocol::Resp, Protocol::Memcache] {
        // Past memcache's sets (one per connection), in the gets.
        let addr = faulty_server(protocol, 10).to_string();
        let out = iobench(&[
            "load",
            "--target",
            &addr,
            "--protocol",
            protocol.name(),
            "--connections",
            "2",
            "--pipeline",
            "3",
            "--requests",
            "300",
            "--warmup",
            "0s",
            "--timeout",
            "30s",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{protocol}: load passed: {stdout}");
        assert!(
            stdout.contains("1 mismatched byte,"),
            "{protocol}: {stdout}"
        );
        assert!(stderr.contains("mismatched"), "{protocol}: {stderr}");
    }
}

/// Combinations `load` refuses before it connects, saying what to do.
#[test]
fn payloads_the_protocols_cannot_carry_are_refused_up_front() {
    let out = iobench(&[
        "load",
        "--target",
        "127.0.0.1:9",
        "--protocol",
        "memcache",
        "--payload",
        "2M",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("use a smaller --payload"), "{stderr}");
    assert!(
        !stderr.contains("connect"),
        "checked before connecting: {stderr}"
    );
}
