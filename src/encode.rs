//! One-shot compression of small answers whose length is known.
//!
//! Through tower-http's compression layer every answer gets fresh encoder
//! state sized for a stream of unknown length: for a 2.4 KB JSON answer,
//! zstd and brotli spent most of their time allocating and zeroing tables
//! (`docs/performance.md`, "Compression"). An answer with a known length
//! of at most [`ONE_SHOT`] bytes is read whole and compressed in one call
//! instead, on the fast path (`h1::exchange::compress::copy_encoded`) and
//! in a site's stack (`site::Handler`): zstd with a context reused per
//! thread and sized to the input, brotli with its window sized to the
//! input, gzip and deflate as before. Longer answers still stream through the layer.
//! The choice of encoding and the levels are the layer's (tower-http 0.6):
//! the tests hold [`negotiate`] to it.

use std::cell::RefCell;
use std::io::Write;

/// Largest answer compressed in one call; longer or unknown lengths
/// stream through the compression layer.
pub const ONE_SHOT: u64 = 256 * 1024;

/// tower-http's default levels: flate2's default for gzip and deflate,
/// 4 for brotli (as nginx's brotli module), zstd's default.
const FLATE_LEVEL: u32 = 6;
const BROTLI_QUALITY: i32 = 4;
const ZSTD_LEVEL: i32 = zstd::DEFAULT_COMPRESSION_LEVEL;

/// An encoding wharf compresses with, from least to most preferred when a
/// client gives several the same weight (tower-http's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encoding {
    Identity,
    Deflate,
    Gzip,
    Brotli,
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` value.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Deflate => "deflate",
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    fn parse(token: &str) -> Option<Encoding> {
        [
            ("gzip", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
            ("deflate", Encoding::Deflate),
            ("br", Encoding::Brotli),
            ("zstd", Encoding::Zstd),
            ("identity", Encoding::Identity),
        ]
        .iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|&(_, encoding)| encoding)
    }
}

/// The encoding for a client's `Accept-Encoding` values, chosen as
/// tower-http's compression layer chooses: the highest weight wins, ties
/// go to the most preferred encoding, a weight of 0 refuses, an item with
/// an invalid weight or an unknown coding is ignored, a value that is not
/// visible ASCII is ignored whole, and `*` means nothing.
pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Encoding {
    values
        .into_iter()
        .filter_map(|value| http::HeaderValue::from_bytes(value).ok())
        .filter_map(|value| value.to_str().ok().map(str::to_string))
        .flat_map(|value| {
            value
                .split(',')
                .filter_map(|item| {
                    let mut parts = item.splitn(2, ';');
                    let encoding = Encoding::parse(parts.next()?.trim())?;
                    let weight = match parts.next() {
                        Some(weight) => parse_weight(weight.trim())?,
                        None => 1000,
                    };
                    Some((encoding, weight))
                })
                .collect::<Vec<_>>()
        })
        .filter(|&(_, weight)| weight > 0)
        .max_by_key(|&(encoding, weight)| (weight, encoding))
        .map_or(Encoding::Identity, |(encoding, _)| encoding)
}

/// A weight `q=0`, `q=1` or `q=0.xyz` (at most three decimals) in
/// thousandths; anything else is `None` (RFC 9110 12.4.2).
fn parse_weight(text: &str) -> Option<u16> {
    let rest = text.strip_prefix(['q', 'Q'])?.strip_prefix('=')?;
    let (whole, fraction) = match rest.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (rest, None),
    };
    let mut value: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    if let Some(fraction) = fraction {
        if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        for (digit, factor) in fraction.bytes().zip([100, 10, 1]) {
            value += u16::from(digit - b'0') * factor;
        }
    }
    (value <= 1000).then_some(value)
}

/// The header changes that come with compressing an answer, as the
/// compression layer makes them: `Vary: Accept-Encoding` (once),
/// `Content-Encoding` set, `Content-Length` and `Accept-Ranges` removed
/// (the length changed, ranges would name the wrong bytes), and a strong
/// `ETag` made weak (RFC 9110 8.8.3).
pub fn mark(headers: &mut http::HeaderMap, encoding: Encoding) {
    use http::header;
    let needle = b"accept-encoding";
    let varies = headers.get_all(header::VARY).iter().any(|value| {
        value
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
    });
    if !varies {
        headers.append(
            header::VARY,
            http::HeaderValue::from_static("accept-encoding"),
        );
    }
    headers.remove(header::ACCEPT_RANGES);
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_ENCODING,
        http::HeaderValue::from_static(encoding.name()),
    );
    crate::site::weaken_etag(headers);
}

thread_local! {
    /// One zstd context per worker thread, reused: creating one and sizing
    /// its tables cost more than compressing a small answer.
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// `data` compressed whole with `encoding` (`Identity` copies it).
pub fn compress(encoding: Encoding, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Identity => Ok(data.to_vec()),
        Encoding::Gzip => {
            let out = Vec::with_capacity(data.len() / 2 + 64);
            let mut encoder =
                flate2::write::GzEncoder::new(out, flate2::Compression::new(FLATE_LEVEL));
            encoder.write_all(data)?;
            encoder.finish()
        }
        Encoding::Deflate => {
            let out = Vec::with_capacity(data.len() / 2 + 64);
            let mut encoder =
                flate2::write::ZlibEncoder::new(out, flate2::Compression::new(FLATE_LEVEL));
            encoder.write_all(data)?;
            encoder.finish()
        }
        Encoding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                // The smallest window that holds the whole answer: the
                // ring buffer and hash tables are sized from it.
                lgwin: window_log(data.len()),
                size_hint: data.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(data.len() / 2 + 64);
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
            Ok(out)
        }
        Encoding::Zstd => ZSTD.with_borrow_mut(|slot| {
            let compressor = match slot {
                Some(compressor) => compressor,
                None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
            };
            compressor.compress(data)
        }),
    }
}

/// log2 of the smallest brotli window (10 to 24 bits) holding `len` bytes.
fn window_log(len: usize) -> i32 {
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    bits.clamp(10, 24) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decompress(encoding: Encoding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Identity => out.extend_from_slice(data),
            Encoding::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .expect("gzip");
            }
            Encoding::Deflate => {
                flate2::read::ZlibDecoder::new(data)
                    .read_to_end(&mut out)
                    .expect("zlib");
            }
            Encoding::Brotli => {
                brotli::Decompressor::new(data, 4096)
                    .read_to_end(&mut out)
                    .expect("brotli");
            }
            Encoding::Zstd => {
                zstd::stream::read::Decoder::new(data)
                    .expect("zstd decoder")
                    .read_to_end(&mut out)
                    .expect("zstd");
            }
        }
        out
    }

    #[test]
    fn every_encoding_round_trips_at_every_size() {
        let text: Vec<u8> = (0..300_000u32)
            .map(|i| b"{\"id\": 1, \"name\": \"wharf\"}\n"[(i % 27) as usize] ^ (i / 5000) as u8)
            .collect();
        for encoding in [
            Encoding::Identity,
            Encoding::Deflate,
            Encoding::Gzip,
            Encoding::Brotli,
            Encoding::Zstd,
        ] {
            // Twice each: the zstd context is reused across sizes.
            for len in [0, 1, 33, 1023, 1024, 1025, 2400, 70_000, 262_144, 33] {
                let data = &text[..len];
                let compressed = compress(encoding, data).expect("compress");
                assert_eq!(
                    decompress(encoding, &compressed),
                    data,
                    "{encoding:?} {len}"
                );
                if len >= 2400 && encoding != Encoding::Identity {
                    assert!(
                        compressed.len() < len / 4,
                        "{encoding:?} {len}: {}",
                        compressed.len()
                    );
                }
            }
        }
    }

    /// The fast path picks the encoding the compression layer picks.
    #[tokio::test]
    async fn negotiation_matches_the_compression_layer() {
        let cases: &[&[&str]] = &[
            &[],
            &[""],
            &["gzip"],
            &["x-gzip"],
            &["GZIP"],
            &["deflate"],
            &["br"],
            &["zstd"],
            &["identity"],
            &["*"],
            &["compress, gzip"],
            &["gzip, deflate, br, zstd"],
            &["gzip, deflate, br"],
            &["gzip;q=0.5, br;q=0.4"],
            &["gzip;q=1.0, br;q=0.999"],
            &["br;q=0, gzip"],
            &["gzip;q=0"],
            &["gzip;q=1.5, br;q=0.1"],
            &["gzip;q=abc, deflate"],
            &["gzip;q=0.1234, deflate;q=0.2"],
            &["zstd;q=0.5, br;q=0.5, gzip;q=0.5"],
            &["identity;q=1, gzip;q=0.5"],
            &[" gzip ; q=0.7 , br ; q=0.8 "],
            &["gzip;level=1, deflate;q=0.1"],
            &["gzip;Q=1., br;q=0."],
            &["gzip;q=0.1", "br;q=0.2"],
            &["br;q=0.9", "gzip\u{e9}"],
        ];
        for values in cases {
            let headers: Vec<http::HeaderValue> = values
                .iter()
                .map(|v| http::HeaderValue::from_bytes(v.as_bytes()).expect("value"))
                .collect();
            let response = http::Response::builder()
                .header("content-type", "text/plain")
                .body(http_body_util::Full::new(bytes::Bytes::from(vec![
                    b'a';
                    100
                ])))
                .expect("response");
            let layer = crate::site::compress(headers.clone(), response)
                .await
                .expect("compressed");
            let chosen = layer
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("ascii").to_string());
            let ours = negotiate(headers.iter().map(http::HeaderValue::as_bytes));
            let ours = (ours != Encoding::Identity).then(|| ours.name().to_string());
            assert_eq!(ours, chosen, "{values:?}");
        }
    }

    #[test]
    fn brotli_windows_hold_the_whole_answer() {
        assert_eq!(window_log(0), 10);
        assert_eq!(window_log(1024), 10);
        assert_eq!(window_log(1025), 11);
        assert_eq!(window_log(256 * 1024), 18);
        assert_eq!(window_log(usize::MAX), 24);
    }

    #[test]
    fn weights_follow_rfc_9110() {
        assert_eq!(parse_weight("q=1"), Some(1000));
        assert_eq!(parse_weight("Q=0.5"), Some(500));
        assert_eq!(parse_weight("q=0.125"), Some(125));
        assert_eq!(parse_weight("q=1.000"), Some(1000));
        assert_eq!(parse_weight("q=1.001"), None);
        assert_eq!(parse_weight("q=0.1234"), None);
        assert_eq!(parse_weight("q=2"), None);
        assert_eq!(parse_weight("q=.5"), None);
        assert_eq!(parse_weight("level=1"), None);
    }
}
