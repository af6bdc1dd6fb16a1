//! Property tests: any split of a valid stream decodes to the same messages, and
//! arbitrary bytes never panic and never make the decoder ask for more than allowed.

use super::*;
use crate::rng::XorShift;
use proptest::prelude::*;

/// Decodes a stream fed in pieces, as a server reading from a socket would.
fn decode_in_pieces(
    protocol: Protocol,
    stream: &[u8],
    cuts: &[usize],
    max: usize,
) -> Result<Vec<Vec<u8>>, ProtocolError> {
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
            echo_reply(&frame, &mut out);
            replies.push(out);
            used += len;
        }
        pending.drain(..used);
        assert!(
            pending.len() <= max + TLV_HEADER,
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
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        for protocol in [Protocol::Line, Protocol::Tlv] {
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
    ];
    let mut runs = 0u64;
    while std::time::Instant::now() < deadline {
        let mut s = seeds[rand(2)].clone();
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
        for protocol in [Protocol::Line, Protocol::Tlv] {
            let _ = decode_in_pieces(protocol, &s, &cuts, 64);
        }
        runs += 1;
    }
    assert!(runs > 1000, "only {runs} runs");
}
