//! Is this delivery really from GitHub? HMAC over the raw body.
//!
//! GitHub signs every delivery with the webhook secret: `X-Hub-Signature-256:
//! sha256=<hex>` (and, for old hooks, `X-Hub-Signature: sha1=<hex>`). The
//! comparison is constant-time (`Mac::verify_slice`), so response timing says
//! nothing about how much of a forged signature was right. SHA-1 is accepted
//! only when SHA-256 is absent and the operator allowed it explicitly.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::config::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header (set a secret on the GitHub webhook)")]
    Missing,
    #[error("malformed {header} header: expected {prefix}= followed by {hex_len} hex digits")]
    Malformed {
        header: &'static str,
        prefix: &'static str,
        hex_len: usize,
    },
    #[error("signature does not match (is the webhook secret the same on both sides?)")]
    Mismatch,
    #[error(
        "only an SHA-1 X-Hub-Signature was sent; it is not accepted unless github.allow_sha1_signatures is set"
    )]
    Sha1NotAllowed,
}

#[derive(Debug, Clone)]
pub struct Verifier {
    secret: Secret,
    allow_sha1: bool,
}

impl Verifier {
    pub fn new(secret: Secret, allow_sha1: bool) -> Verifier {
        Verifier { secret, allow_sha1 }
    }

    /// Checks the two signature headers' values against `body`.
    pub fn verify(
        &self,
        sha256: Option<&[u8]>,
        sha1: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let mut check = self.begin(sha256, sha1)?;
        check.update(body);
        check.finish()
    }

    /// Starts checking from the headers alone, so a delivery without a
    /// usable signature is refused before its body is read, and a signed one
    /// is hashed chunk by chunk as it arrives ([`Check::update`]).
    pub fn begin(
        &self,
        sha256: Option<&[u8]>,
        sha1: Option<&[u8]>,
    ) -> Result<Check, SignatureError> {
        let key = self.secret.expose().as_bytes();
        if let Some(value) = sha256 {
            let tag = parse(value, "X-Hub-Signature-256", "sha256", 64)?;
            let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .map_err(|_| SignatureError::Mismatch)?;
            return Ok(Check {
                mac: Running::Sha256(mac),
                tag,
            });
        }
        match sha1 {
            None => Err(SignatureError::Missing),
            Some(_) if !self.allow_sha1 => Err(SignatureError::Sha1NotAllowed),
            Some(value) => {
                let tag = parse(value, "X-Hub-Signature", "sha1", 40)?;
                let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key)
                    .map_err(|_| SignatureError::Mismatch)?;
                Ok(Check {
                    mac: Running::Sha1(mac),
                    tag,
                })
            }
        }
    }
}

enum Running {
    Sha256(Hmac<Sha256>),
    Sha1(Hmac<Sha1>),
}

/// A signature check in progress: feed it the body, then [`Check::finish`].
pub struct Check {
    mac: Running,
    tag: Vec<u8>,
}

impl Check {
    pub fn update(&mut self, chunk: &[u8]) {
        match &mut self.mac {
            Running::Sha256(m) => m.update(chunk),
            Running::Sha1(m) => m.update(chunk),
        }
    }

    /// Constant-time comparison with the header's tag.
    pub fn finish(self) -> Result<(), SignatureError> {
        let checked = match self.mac {
            Running::Sha256(m) => m.verify_slice(&self.tag),
            Running::Sha1(m) => m.verify_slice(&self.tag),
        };
        checked.map_err(|_| SignatureError::Mismatch)
    }
}

fn parse(
    value: &[u8],
    header: &'static str,
    prefix: &'static str,
    hex_len: usize,
) -> Result<Vec<u8>, SignatureError> {
    let malformed = SignatureError::Malformed {
        header,
        prefix,
        hex_len,
    };
    let value = std::str::from_utf8(value)
        .map_err(|_| malformed.clone())?
        .trim();
    let (algo, hex_part) = value.split_once('=').ok_or_else(|| malformed.clone())?;
    if !algo.eq_ignore_ascii_case(prefix) || hex_part.len() != hex_len {
        return Err(malformed);
    }
    hex::decode(hex_part).map_err(|_| malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn v(allow_sha1: bool) -> Verifier {
        Verifier::new(Secret::new("It's a Secret to Everybody"), allow_sha1)
    }

    #[test]
    fn githubs_documented_vector_passes() {
        assert_eq!(
            v(false).verify(Some(VECTOR.as_bytes()), None, b"Hello, World!"),
            Ok(())
        );
    }

    #[test]
    fn any_change_fails() {
        assert_eq!(
            v(false).verify(Some(VECTOR.as_bytes()), None, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        let wrong = VECTOR.replace("757", "758");
        assert_eq!(
            v(false).verify(Some(wrong.as_bytes()), None, b"Hello, World!"),
            Err(SignatureError::Mismatch)
        );
        let other = Verifier::new(Secret::new("other"), false);
        assert_eq!(
            other.verify(Some(VECTOR.as_bytes()), None, b"Hello, World!"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn chunked_equals_whole() {
        let mut check = v(false).begin(Some(VECTOR.as_bytes()), None).unwrap();
        for chunk in [&b"Hello"[..], b", ", b"World!"] {
            check.update(chunk);
        }
        assert_eq!(check.finish(), Ok(()));
    }

    #[test]
    fn malformed_and_missing() {
        assert!(matches!(
            v(false).verify(Some(b"sha256=xyz"), None, b""),
            Err(SignatureError::Malformed { .. })
        ));
        assert!(matches!(
            v(false).verify(Some(b"757107ea"), None, b""),
            Err(SignatureError::Malformed { .. })
        ));
        assert!(matches!(
            v(false).verify(Some(&[0xff, 0xfe]), None, b""),
            Err(SignatureError::Malformed { .. })
        ));
        assert_eq!(
            v(false).verify(None, None, b""),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn sha1_only_when_allowed_and_sha256_absent() {
        // HMAC-SHA1("It's a Secret to Everybody", "Hello, World!")
        let sha1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";
        assert_eq!(
            v(false).verify(None, Some(sha1.as_bytes()), b"Hello, World!"),
            Err(SignatureError::Sha1NotAllowed)
        );
        assert_eq!(
            v(true).verify(None, Some(sha1.as_bytes()), b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            v(true).verify(None, Some(sha1.as_bytes()), b"tampered"),
            Err(SignatureError::Mismatch)
        );
        // A bad SHA-256 is not rescued by a good SHA-1.
        let bad256 = VECTOR.replace("757", "000");
        assert_eq!(
            v(true).verify(
                Some(bad256.as_bytes()),
                Some(sha1.as_bytes()),
                b"Hello, World!"
            ),
            Err(SignatureError::Mismatch)
        );
    }
}
