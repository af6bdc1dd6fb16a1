//! Line and TLV on every backend: verified pipelined load, and garbage that closes
//! only the connection that sent it (resp and memcache: tests/real_protocols.rs;
//! random bytes: every framed protocol).

mod common;

use common::*;
use iobench::backend::Backend;
use iobench::load::LoadReport;
use iobench::protocol::Protocol;
use iobench::server::Model;
use iobench::sys::Stat;
use std::io::{Read, Write};
use std::net::TcpStream;

/// `iobench load` (the shared Protocol layer builds and checks frames) against
/// `iobench serve`, pipelined, every byte verified.
#[test]
fn line_and_tlv_load_is_echoed_exactly_on_every_backend() {
    for protocol in [Protocol::Line, Protocol::Tlv] {
        for &backend in Backend::ALL {
            let server =
                Server::start(&["--backend", backend.name(), "--protocol", protocol.name()]);
            let target = server.addr.to_string();
            let r: LoadReport = iobench_json(&[
                "load",
                "--target",
                &target,
                "--protocol",
                protocol.name(),
                "--connections",
                "20",
                "--pipeline",
                "4",
                "--payload",
                "300",
                "--requests",
                "4000",
                "--warmup",
                "0s",
                "--json",
            ]);
            let ctx = format!("{protocol}/{backend}");
            assert_eq!(r.requests_total, 4000, "{ctx}: {r:?}");
            let (stats, _) = server.stop();
            assert_eq!(counter(&stats, Stat::ProtocolErrors), 0, "{ctx}");
            let wire = r.wire_size as u64;
            assert_eq!(counter(&stats, Stat::BytesOut), 4000 * wire, "{ctx}");
        }
    }
}

fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut f = kind.to_be_bytes().to_vec();
    f.extend_from_slice(&(value.len() as u32).to_be_bytes());
    f.extend_from_slice(value);
    f
}

/// Reads until the server closes; what it sent before.
fn until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // a reset also ends it
    got
}

#[test]
fn garbage_closes_only_its_own_connection() {
    for (b, m) in combinations_with_models() {
        let backend = &format!("{b}/{m}");
        // TLV: an oversized length, an unknown type, a truncated frame.
        let server = Server::start(&[
            "--backend",
            b.name(),
            "--model",
            m.name(),
            "--protocol",
            Protocol::Tlv.name(),
            "--max-frame",
            "1K",
        ]);
        let mut good = server.connect();
        let request = tlv(1, b"12345678 hello");
        good.write_all(&request).unwrap();
        let mut reply = vec![0; request.len()];
        good.read_exact(&mut reply).unwrap();
        assert_eq!(reply, tlv(2, b"12345678 hello"));

        let mut huge = server.connect();
        huge.write_all(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).unwrap(); // 2 GiB declared
        assert!(until_closed(huge).is_empty(), "{backend}");
        let mut odd = server.connect();
        odd.write_all(&tlv(9, b"?")).unwrap();
        assert!(until_closed(odd).is_empty(), "{backend}");
        let mut cut = server.connect();
        cut.write_all(&tlv(1, b"12345678 cut short")[..10]).unwrap();
        cut.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(until_closed(cut).is_empty(), "{backend}");
        // A notice gets no reply; the request after it does.
        good.write_all(&tlv(3, b"notice")).unwrap();
        good.write_all(&request).unwrap();
        good.read_exact(&mut reply).unwrap();
        assert_eq!(reply, tlv(2, b"12345678 hello"), "{backend}");
        assert!(finish(good).is_empty());
        let (stats, _) = server.stop();
        assert_eq!(
            counter(&stats, Stat::ProtocolErrors),
            3,
            "{backend}: {stats:?}"
        );

        // Line: one error line, then closed; others served on.
        let server = Server::start(&[
            "--backend",
            b.name(),
            "--model",
            m.name(),
            "--protocol",
            Protocol::Line.name(),
            "--max-frame",
            "64",
        ]);
        let mut good = server.connect();
        let mut long = server.connect();
        long.write_all(&[b'x'; 200]).unwrap();
        let said = String::from_utf8(until_closed(long)).unwrap();
        assert_eq!(
            said, "ERR line longer than the 64-byte limit (--max-frame)\n",
            "{backend}"
        );
        good.write_all(b"still here\n").unwrap();
        let mut line = [0u8; 11];
        good.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"still here\n");
        assert!(finish(good).is_empty());
        let (stats, _) = server.stop();
        assert_eq!(
            counter(&stats, Stat::ProtocolErrors),
            1,
            "{backend}: {stats:?}"
        );
    }
}

/// Random bytes from 300 connections (bounded): the server closes the bad ones,
/// never panics, and a well-behaved client is served afterwards.
#[test]
fn random_bytes_never_take_the_server_down() {
    let mut rng = iobench::rng::XorShift::new(0x2545_F491_4F6C_DD1D);
    let protocols = [
        Protocol::Line,
        Protocol::Tlv,
        Protocol::Resp,
        Protocol::Memcache,
    ];
    for (protocol, model) in protocols
        .iter()
        .flat_map(|&p| Model::ALL.iter().map(move |&m| (p, m)))
    {
        let server = Server::start(&[
            "--backend",
            Backend::EpollEt.name(),
            "--model",
            model.name(),
            "--protocol",
            protocol.name(),
            "--max-frame",
            "256",
        ]);
        for _ in 0..150 {
            let mut s = server.connect();
            let junk: Vec<u8> = (0..(rng.next_u64() % 2000))
                .map(|_| rng.next_u64() as u8)
                .collect();
            let _ = s.write_all(&junk);
        }
        let mut good = server.connect();
        let (request, reply) = match protocol {
            Protocol::Line => (b"ok\n".to_vec(), b"ok\n".to_vec()),
            Protocol::Resp => (b"*1\r\n$4\r\nPING\r\n".to_vec(), b"+PONG\r\n".to_vec()),
            Protocol::Memcache => (b"get nothing\r\n".to_vec(), b"END\r\n".to_vec()),
            _ => (tlv(1, b"12345678"), tlv(2, b"12345678")),
        };
        good.write_all(&request).unwrap();
        let mut got = vec![0; reply.len()];
        good.read_exact(&mut got).unwrap();
        assert_eq!(got, reply, "{protocol}");
        let (_, err) = server.stop();
        assert!(!err.contains("panicked"), "{protocol}/{model}: {err}");
    }
}

/// Frames larger than the output bound (--max-pending, 64 KiB) on edge-triggered
/// epoll: a server that paused reading on a half-received frame would wait forever.
#[test]
fn frames_larger_than_the_output_bound_get_through() {
    for &model in Model::ALL {
        let server = Server::start(&[
            "--backend",
            Backend::EpollEt.name(),
            "--model",
            model.name(),
            "--protocol",
            Protocol::Tlv.name(),
        ]);
        let target = server.addr.to_string();
        let r: LoadReport = iobench_json(&[
            "load",
            "--target",
            &target,
            "--protocol",
            Protocol::Tlv.name(),
            "--payload",
            "200K",
            "--connections",
            "6",
            "--pipeline",
            "2",
            "--requests",
            "120",
            "--warmup",
            "0s",
            "--json",
        ]);
        assert_eq!(r.requests_total, 120, "{model}: {r:?}");
        server.stop();
    }
}
