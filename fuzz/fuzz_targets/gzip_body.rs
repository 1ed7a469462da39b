//! Request bodies as the server decodes them: any bytes labelled gzip
//! either decode within the limit or are refused; nothing larger than the
//! limit ever comes out.
#![no_main]

use bytes::Bytes;
use http_input::{BodyError, decode_body};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|raw: &[u8]| {
    match decode_body(Bytes::copy_from_slice(raw), Some("gzip"), LIMIT) {
        Ok(out) => assert!(out.len() <= LIMIT),
        Err(BodyError::TooLarge { limit }) => assert_eq!(limit, LIMIT),
        Err(BodyError::InvalidGzip(_)) => {}
        Err(e @ BodyError::UnsupportedEncoding(_)) => panic!("gzip refused as {e}"),
    }
    // Uncompressed bodies pass through unchanged.
    let plain = decode_body(Bytes::copy_from_slice(raw), None, LIMIT);
    assert_eq!(plain.as_deref().ok(), (raw.len() <= LIMIT).then_some(raw));
});
