//! From an HTTP body to the JSON payload: GitHub's two content types.
//!
//! `application/json` is the payload itself. `application/x-www-form-urlencoded`
//! (the Ruby prpr's only format) carries it in a `payload=` field. The signature
//! covers the raw body either way, so decoding happens after verification.

use std::borrow::Cow;

/// The two encodings GitHub offers for a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Form,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "unsupported Content-Type {0:?}: send application/json or application/x-www-form-urlencoded"
    )]
    UnsupportedType(String),
    #[error("missing Content-Type: send application/json or application/x-www-form-urlencoded")]
    MissingType,
    #[error("form body has no payload field")]
    NoPayload,
    #[error("form body is not valid URL encoding")]
    BadForm,
}

/// Reads the media type of a `Content-Type` value (parameters ignored).
pub fn encoding(content_type: Option<&[u8]>) -> Result<Encoding, DecodeError> {
    let raw = content_type.ok_or(DecodeError::MissingType)?;
    let value = String::from_utf8_lossy(raw);
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(Encoding::Json),
        "application/x-www-form-urlencoded" => Ok(Encoding::Form),
        "" => Err(DecodeError::MissingType),
        _ => Err(DecodeError::UnsupportedType(
            value.chars().take(100).collect(),
        )),
    }
}

/// The JSON payload inside `body`.
pub fn payload(encoding: Encoding, body: &[u8]) -> Result<Cow<'_, [u8]>, DecodeError> {
    match encoding {
        Encoding::Json => Ok(Cow::Borrowed(body)),
        Encoding::Form => {
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|_| DecodeError::BadForm)?;
            fields
                .into_iter()
                .find(|(k, _)| k == "payload")
                .map(|(_, v)| Cow::Owned(v.into_bytes()))
                .ok_or(DecodeError::NoPayload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(encoding(Some(b"application/json")), Ok(Encoding::Json));
        assert_eq!(
            encoding(Some(b"Application/JSON; charset=utf-8")),
            Ok(Encoding::Json)
        );
        assert_eq!(
            encoding(Some(b"application/x-www-form-urlencoded")),
            Ok(Encoding::Form)
        );
        assert_eq!(encoding(None), Err(DecodeError::MissingType));
        assert_eq!(
            encoding(Some(b"text/plain")),
            Err(DecodeError::UnsupportedType("text/plain".into()))
        );
    }

    #[test]
    fn form_payload() {
        let body = b"foo=1&payload=%7B%22zen%22%3A%22a+b%22%7D";
        assert_eq!(
            payload(Encoding::Form, body).unwrap().as_ref(),
            br#"{"zen":"a b"}"#
        );
        assert_eq!(
            payload(Encoding::Form, b"foo=1"),
            Err(DecodeError::NoPayload)
        );
        assert_eq!(payload(Encoding::Json, b"{}").unwrap().as_ref(), b"{}");
    }
}
