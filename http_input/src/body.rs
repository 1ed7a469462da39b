//! Request bodies: `Content-Encoding` undone within a size limit.

use std::io::Read;

use bytes::Bytes;

/// Why a body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit, before or after decompression (413).
    #[error(
        "request body is larger than the maximum of {limit} bytes; split the batch or raise --max-http-request-size"
    )]
    TooLarge { limit: usize },
    /// A gzip body that does not decode (400).
    #[error("invalid gzip request body: {0}")]
    InvalidGzip(String),
    /// A `Content-Encoding` other than gzip or identity (415).
    #[error("unsupported Content-Encoding '{0}': send the body uncompressed or with gzip")]
    UnsupportedEncoding(String),
}

/// The body `raw` (at most `limit` bytes as received) as the handler
/// reads it: decompressed when `content_encoding` is gzip, refused when
/// that yields more than `limit` bytes. Every member of a concatenated
/// gzip stream is read, as `gzip -c a b` makes them.
pub fn decode_body(
    raw: Bytes,
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if raw.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    let encoding = content_encoding.map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(raw),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
            flate2::read::MultiGzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| BodyError::InvalidGzip(e.to_string()))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    #[test]
    fn gzip_members_are_all_read() {
        let mut two = gzip(b"a,b=1 c=1\n");
        two.extend(gzip(b"a,b=2 c=2\n"));
        let out = decode_body(Bytes::from(two), Some(" GZIP "), 1024).expect("decodes");
        assert_eq!(&out[..], b"a,b=1 c=1\na,b=2 c=2\n");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b'x'; 1 << 20]);
        assert!(bomb.len() < 4096);
        assert_eq!(
            decode_body(Bytes::from(bomb), Some("gzip"), 4096),
            Err(BodyError::TooLarge { limit: 4096 })
        );
    }

    #[test]
    fn bad_encodings_are_refused() {
        assert!(matches!(
            decode_body(Bytes::from_static(b"nope"), Some("gzip"), 64),
            Err(BodyError::InvalidGzip(_))
        ));
        assert_eq!(
            decode_body(Bytes::from_static(b"x"), Some("br"), 64),
            Err(BodyError::UnsupportedEncoding("br".into()))
        );
        assert_eq!(
            decode_body(Bytes::from_static(b"x"), Some("identity"), 64),
            Ok(Bytes::from_static(b"x"))
        );
    }
}
