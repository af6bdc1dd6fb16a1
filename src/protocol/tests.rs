//! Property tests: any split of a valid stream decodes to the same messages, and
//! arbitrary bytes never panic and never make the decoder ask for more than allowed;
//! and the replies of resp and memcache, their limits and their errors.

use super::memcache::MapStore;
use super::*;
use crate::rng::XorShift;
use proptest::prelude::*;

/// The protocols that are decoded (raw is not).
fn framed() -> impl Iterator<Item = Protocol> {
    Protocol::ALL
        .iter()
        .copied()
        .filter(|&p| p != Protocol::Raw)
}

/// Bytes an incomplete message may hold beyond the frame limit: its framing.
fn slack(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Raw | Protocol::Line | Protocol::Tlv => TLV_HEADER,
        // Every length line of the most strings a command may have.
        Protocol::Resp => (resp::MAX_ARGS as usize + 1) * 23,
        Protocol::Memcache => memcache::MAX_LINE + CRLF.len(),
    }
}

/// Decodes a stream fed in pieces, as a server reading from a socket would, and
/// answers it (memcache on a fresh store).
fn decode_in_pieces(
    protocol: Protocol,
    stream: &[u8],
    cuts: &[usize],
    max: usize,
) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let store = MapStore::new(usize::MAX);
    let mut pending = Vec::new();
    let mut replies = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut from = 0;
    for to in points {
        pending.extend_from_slice(&stream[from..to]);
        from = to;
        let mut used = 0;
        while let Some((frame, len)) = decode(protocol, &pending[used..], max)? {
            let mut out = Vec::new();
            reply(&frame, &store, &mut out);
            replies.push(out);
            used += len;
        }
        pending.drain(..used);
        assert!(
            pending.len() <= max + slack(protocol),
            "buffered {} bytes",
            pending.len()
        );
    }
    Ok(replies)
}

fn tlv_stream(frames: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut s = Vec::new();
    for (kind, value) in frames {
        tlv_header(*kind, value.len(), &mut s);
        s.extend_from_slice(value);
    }
    s
}

fn resp_stream(commands: &[&[&[u8]]]) -> Vec<u8> {
    let mut s = Vec::new();
    for strings in commands {
        s.put(b"*");
        s.put_number(strings.len() as u64);
        s.put(CRLF);
        for string in *strings {
            resp::bulk_head(string.len(), &mut s);
            s.put(string);
            s.put(CRLF);
        }
    }
    s
}

/// What Redis answers, written out here rather than taken from `resp::reply`.
fn redis_answer(strings: &[&[u8]]) -> Vec<u8> {
    let name = String::from_utf8_lossy(strings[0]).to_ascii_uppercase();
    let bulk = |x: &[u8]| [format!("${}\r\n", x.len()).as_bytes(), x, b"\r\n"].concat();
    match (name.as_str(), strings.len()) {
        ("ECHO" | "PING", 2) => bulk(strings[1]),
        ("PING", 1) => b"+PONG\r\n".to_vec(),
        ("ECHO" | "PING", _) => format!(
            "-ERR wrong number of arguments for '{}' command\r\n",
            name.to_ascii_lowercase()
        )
        .into_bytes(),
        _ => b"-ERR unknown command".to_vec(),
    }
}

/// Checks every split point of `stream`, one cut at a time: each gives the replies
/// the whole stream gives.
fn every_split_point(protocol: Protocol, stream: &[u8], max: usize) -> Vec<Vec<u8>> {
    let whole = decode_in_pieces(protocol, stream, &[], max).unwrap();
    for cut in 0..=stream.len() {
        let split = decode_in_pieces(protocol, stream, &[cut], max).unwrap();
        assert_eq!(split, whole, "{protocol} cut at {cut}");
    }
    whole
}

proptest! {
    #[test]
    fn line_splits_do_not_matter(lines in prop::collection::vec("[a-z ]{0,40}", 0..20), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let stream: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        let whole = decode_in_pieces(Protocol::Line, &stream, &[], 64).unwrap();
        let split = decode_in_pieces(Protocol::Line, &stream, &cuts, 64).unwrap();
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole.concat(), stream);
    }

    #[test]
    fn tlv_splits_do_not_matter(frames in prop::collection::vec((1u16..=3, prop::collection::vec(any::<u8>(), 0..100)), 0..20), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let stream = tlv_stream(&frames);
        let whole = decode_in_pieces(Protocol::Tlv, &stream, &[], 128).unwrap();
        let split = decode_in_pieces(Protocol::Tlv, &stream, &cuts, 128).unwrap();
        prop_assert_eq!(&whole, &split);
        // Requests get a response with the same value; notices and responses nothing.
        let expected: Vec<Vec<u8>> = frames.iter().map(|(kind, value)| {
            if *kind == TLV_REQUEST { tlv_stream(&[(TLV_RESPONSE, value.clone())]) } else { Vec::new() }
        }).collect();
        prop_assert_eq!(whole, expected);
    }

    #[test]
    fn resp_splits_do_not_matter(
        commands in prop::collection::vec(
            (prop::sample::select(vec!["ECHO", "echo", "Ping", "PING", "GET", "x\r\ny"]),
             prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..3)),
            1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let commands: Vec<Vec<&[u8]>> = commands
            .iter()
            .map(|(name, args)| {
                std::iter::once(name.as_bytes()).chain(args.iter().map(Vec::as_slice)).collect()
            })
            .collect();
        let refs: Vec<&[&[u8]]> = commands.iter().map(Vec::as_slice).collect();
        let stream = resp_stream(&refs);
        let whole = decode_in_pieces(Protocol::Resp, &stream, &[], 256).unwrap();
        let split = decode_in_pieces(Protocol::Resp, &stream, &cuts, 256).unwrap();
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole.len(), commands.len());
        for (got, strings) in whole.iter().zip(&commands) {
            let expected = redis_answer(strings);
            prop_assert!(got.starts_with(&expected), "{:?} answered {:?}", strings, got);
            if expected.starts_with(b"-ERR unknown") {
                // One line, whatever bytes the name held.
                prop_assert_eq!(got.iter().position(|&b| b == b'\n'), Some(got.len() - 1));
            } else {
                prop_assert_eq!(got, &expected);
            }
        }
    }

    #[test]
    fn memcache_splits_do_not_matter(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let key = format!("k{i}");
            memcache::set_head(key.as_bytes(), i as u32, value.len(), &mut stream);
            stream.put(value);
            stream.put(CRLF);
            expected.push(b"STORED\r\n".to_vec());
            memcache::get_line(key.as_bytes(), &mut stream);
            expected.push([
                format!("VALUE {key} {i} {}\r\n", value.len()).as_bytes(),
                value,
                b"\r\nEND\r\n",
            ].concat());
        }
        let whole = decode_in_pieces(Protocol::Memcache, &stream, &[], 128).unwrap();
        let split = decode_in_pieces(Protocol::Memcache, &stream, &cuts, 128).unwrap();
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        for protocol in framed() {
            let _ = decode_in_pieces(protocol, &bytes, &cuts, 100);
        }
    }
}

#[test]
fn limits_and_garbage_are_errors() {
    let long = [b'x'; 65];
    assert_eq!(
        decode(Protocol::Line, &long, 64),
        Err(ProtocolError::LineTooLong { limit: 64 })
    );
    assert_eq!(decode(Protocol::Line, b"short", 64), Ok(None));
    let mut big = Vec::new();
    tlv_header(TLV_REQUEST, 1 << 30, &mut big);
    assert_eq!(
        decode(Protocol::Tlv, &big, 1 << 20),
        Err(ProtocolError::FrameTooLong {
            length: 1 << 30,
            limit: 1 << 20
        })
    );
    assert_eq!(
        decode(Protocol::Tlv, &[0, 9, 0], 64),
        Err(ProtocolError::UnknownType(9))
    );
    assert_eq!(decode(Protocol::Tlv, &[0, 1, 0, 0], 64), Ok(None));
}

/// A mutation fuzzer run for a bounded time: valid streams with bits flipped, bytes
/// cut, repeated and spliced, fed in random pieces. It must never panic and never
/// buffer past the limit. (cargo-fuzz needs a nightly toolchain, which CI does not
/// have; this runs on stable, within the test suite.)
#[test]
fn fuzz_decoders_for_a_bounded_time() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
    let mut rand = move |n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
    let seeds = [
        tlv_stream(&[(1, b"12345678abc".to_vec()), (3, vec![]), (2, vec![7; 40])]),
        b"hello\nworld\n\n".to_vec(),
        resp_stream(&[
            &[b"ECHO", b"hi\r\nthere"],
            &[b"PING"],
            &[b"SET", b"k", b"v"],
        ]),
        b"set k 1 0 5\r\nab\r\nc\r\nget k j\r\nget\r\nflush_all\r\n".to_vec(),
    ];
    let mut runs = 0u64;
    while std::time::Instant::now() < deadline {
        let mut s = seeds[rand(seeds.len())].clone();
        for _ in 0..rand(6) {
            let len = s.len().max(1);
            match rand(4) {
                0 if !s.is_empty() => {
                    let i = rand(len).min(s.len() - 1);
                    s[i] ^= 1 << rand(8);
                }
                1 => s.truncate(rand(len)),
                2 => {
                    let i = rand(len).min(s.len());
                    let piece = s[i..].to_vec();
                    s.extend_from_slice(&piece);
                }
                _ => s.insert(rand(len).min(s.len()), rand(256) as u8),
            }
        }
        let cuts: Vec<usize> = (0..rand(5)).map(|_| rand(s.len() + 1)).collect();
        for protocol in framed() {
            let _ = decode_in_pieces(protocol, &s, &cuts, 64);
        }
        runs += 1;
    }
    assert!(runs > 1000, "only {runs} runs");
}

#[test]
fn resp_and_memcache_decode_alike_at_every_split_point() {
    let stream = resp_stream(&[
        &[b"ECHO", b"hello\r\n$5\r\n"],
        &[b"ping"],
        &[b"PING", b""],
        &[b"CONFIG", b"GET", b"save"],
        &[b"echo"],
    ]);
    let replies = every_split_point(Protocol::Resp, &stream, 64);
    assert_eq!(
        replies,
        [
            &b"$11\r\nhello\r\n$5\r\n\r\n"[..],
            b"+PONG\r\n",
            b"$0\r\n\r\n",
            b"-ERR unknown command 'CONFIG', with args beginning with: 'GET' 'save' \r\n",
            b"-ERR wrong number of arguments for 'echo' command\r\n",
        ]
    );
    let stream = b"set a 7 0 4 noreply\r\n\r\nab\r\nset b 0 -1 0\r\n\r\nget a  b c\r\nget c\nGET a\r\nget\r\n";
    let replies = every_split_point(Protocol::Memcache, stream, 64);
    assert_eq!(
        replies,
        [
            &b""[..],
            b"STORED\r\n",
            b"VALUE a 7 4\r\n\r\nab\r\nVALUE b 0 0\r\n\r\nEND\r\n",
            b"END\r\n",
            b"ERROR\r\n",
            b"ERROR\r\n",
        ]
    );
}

#[test]
fn resp_limits_and_malformed_frames_are_errors() {
    let too_long = ProtocolError::FrameTooLong {
        length: 65,
        limit: 64,
    };
    // One string past the limit, or all of them together; known from the header.
    assert_eq!(
        decode(Protocol::Resp, b"*2\r\n$4\r\nECHO\r\n$61\r\n", 64),
        Err(too_long.clone())
    );
    assert_eq!(decode(Protocol::Resp, b"*1\r\n$65\r\n", 64), Err(too_long));
    assert!(matches!(
        decode(Protocol::Resp, b"*1025\r\n", 1 << 20),
        Err(ProtocolError::Malformed(_))
    ));
    for garbage in [
        &b"PING\r\n"[..],
        b"*0\r\n",
        b"*-1\r\n",
        b"*1\r\n:1\r\n",
        b"*1\r\n$3\r\nabcX\r\n",
        b"*x\r\n",
        b"*1\rX",
        b"*1\r\n$-1\r\n",
        b"*12345678901234567890",
        b"*1\r\n$\r\n",
    ] {
        let got = decode(Protocol::Resp, garbage, 64);
        assert!(
            matches!(got, Err(ProtocolError::Malformed(_))),
            "{garbage:?}: {got:?}"
        );
    }
    // Incomplete, not wrong.
    for partial in [
        &b"*"[..],
        b"*1",
        b"*1\r",
        b"*1\r\n$3\r\nab",
        b"*1\r\n$3\r\nabc\r",
    ] {
        assert_eq!(decode(Protocol::Resp, partial, 64), Ok(None), "{partial:?}");
    }
    let err = decode(Protocol::Resp, b"+PING\r\n", 64).unwrap_err();
    let line = error_reply(Protocol::Resp, &err).unwrap();
    assert!(line.starts_with("-ERR Protocol error: expected '*'") && line.ends_with("\r\n"));
}

#[test]
fn memcache_limits_and_malformed_frames_are_errors() {
    assert_eq!(
        decode(Protocol::Memcache, b"set k 0 0 65\r\n", 64),
        Err(ProtocolError::FrameTooLong {
            length: 65,
            limit: 64
        })
    );
    let endless = vec![b'g'; memcache::MAX_LINE];
    assert!(matches!(
        decode(Protocol::Memcache, &endless, 1 << 20),
        Err(ProtocolError::Malformed(_))
    ));
    assert_eq!(decode(Protocol::Memcache, &endless[1..], 1 << 20), Ok(None));
    let err = decode(Protocol::Memcache, b"set k 0 0 1\r\nab\r\n", 64).unwrap_err();
    let line = error_reply(Protocol::Memcache, &err).unwrap();
    assert!(line.starts_with("CLIENT_ERROR bad data chunk") && line.ends_with("\r\n"));
    // Lines memcached refuses and serves on after: only the line is consumed.
    for (line, command) in [
        (&b"set k 0 0\r\n"[..], memcache::Command::Unknown),
        (b"set k x 0 1\r\n", memcache::Command::Invalid),
        (b"set k 4294967296 0 1\r\n", memcache::Command::Invalid),
        (b"set k 0 soon 1\r\n", memcache::Command::Invalid),
        (b"set k 0 0 -1\r\n", memcache::Command::Invalid),
    ] {
        let got = decode(Protocol::Memcache, line, 64);
        assert_eq!(
            got,
            Ok(Some((Frame::Memcache(command), line.len()))),
            "{line:?}"
        );
    }
    let (frame, _) = decode(Protocol::Memcache, b"set k 0 0 1 yes\r\nx\r\n", 64)
        .unwrap()
        .unwrap();
    assert!(matches!(
        frame,
        Frame::Memcache(memcache::Command::Set { noreply: false, .. })
    ));
}

/// A bad key and a full store are answered, and the connection goes on (a set's
/// value after a key memcached refuses is taken for a command, as memcached takes it).
#[test]
fn memcache_answers_bad_keys_and_a_full_store() {
    let long = "k".repeat(memcache::MAX_KEY + 1);
    let stream = format!(
        "set {long} 0 0 1\r\nx\r\nget {long}\r\nset a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\nset a 0 0 1\r\nz\r\nget b a\r\n"
    );
    let store = MapStore::new(1);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((frame, used)) =
        decode(Protocol::Memcache, &stream.as_bytes()[at..], 64).unwrap()
    {
        reply(&frame, &store, &mut out);
        at += used;
    }
    assert_eq!(at, stream.len());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "CLIENT_ERROR bad command line format\r\n\
         ERROR\r\n\
         CLIENT_ERROR bad command line format\r\n\
         STORED\r\n\
         SERVER_ERROR out of memory storing object\r\n\
         STORED\r\n\
         VALUE a 0 1\r\nz\r\nEND\r\n"
    );
}
