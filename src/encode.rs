//! The encodings mlplat writes, in one place: lowercase hex, sha256 digests and fingerprints, and
//! percent-encoding for URIs.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The sha256 of some bytes, in 64 hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `sha256:<64 hex>` of some bytes, as the lock pins archives and registries name manifests.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Whether `text` is a digest as [`sha256_digest`] writes it: `sha256:` and 64 lowercase hex
/// digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `sha256:` and the first 12 hex digits of the bytes' hash: enough to tell two values apart,
/// useless to recover one. How a secret is shown.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut text = sha256_digest(bytes);
    text.truncate("sha256:".len() + 12);
    text
}

/// Every byte outside RFC 3986's unreserved set `A-Za-z0-9-._~` is encoded.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a user name or password for the userinfo of a URI. Not `quote_plus`:
/// SQLAlchemy 2 reads `+` as a literal plus, so a space must be `%20`.
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_in_lowercase_hex() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_digest(&sha256_digest(b"x")));
        assert!(!is_digest("sha256:ABC"));
        assert_eq!(fingerprint(b""), "sha256:e3b0c44298fc");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 171, 255]), "00abff");
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved() {
        let raw = "a/b@c:d%e+f?g#h&i$j(k)l\"m'n o~p-q.r_s";
        let enc = uri_encode(raw);
        assert_eq!(
            enc,
            "a%2Fb%40c%3Ad%25e%2Bf%3Fg%23h%26i%24j%28k%29l%22m%27n%20o~p-q.r_s"
        );
        let back = percent_encoding::percent_decode_str(&enc)
            .decode_utf8()
            .expect("UTF-8");
        assert_eq!(back, raw);
    }
}
