//! GitHub webhook signatures, computed independently of prpr's own verifier
//! so that tests have an oracle that does not share its bugs.
//!
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>` and the
//! legacy `X-Hub-Signature: sha1=<hex HMAC-SHA1(secret, raw body)>`.

use hmac::{Hmac, KeyInit, Mac};

/// `"sha256=<hex>"`, the value of `X-Hub-Signature-256`.
#[must_use]
pub fn sha256_header(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex(&mac::<Hmac<sha2::Sha256>>(secret, body)))
}

/// `"sha1=<hex>"`, the value of the legacy `X-Hub-Signature`.
#[must_use]
pub fn sha1_header(secret: &[u8], body: &[u8]) -> String {
    format!("sha1={}", hex(&mac::<Hmac<sha1::Sha1>>(secret, body)))
}

fn mac<M: Mac + KeyInit>(secret: &[u8], body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length (longer ones are hashed), so this
    // never fails; an empty key is valid too.
    let Ok(mut m) = <M as KeyInit>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any size")
    };
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector from GitHub's "Validating webhook deliveries" page.
    #[test]
    fn github_documented_vector() {
        assert_eq!(
            sha256_header(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    /// RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (HMAC-SHA256).
    #[test]
    fn rfc_vectors() {
        assert_eq!(
            sha1_header(b"Jefe", b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            sha256_header(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn empty_secret_and_body() {
        // HMAC-SHA256 with empty key over empty message.
        assert_eq!(
            sha256_header(b"", b""),
            "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
        );
    }
}
