//! Checks of client-supplied fields. Each returns the rejection a client sees.

use crate::limits::{self, NAME_BYTES_MAX};
use crate::outcome::Rejection;

/// Queue names, kinds and broadcast channels: they appear in URLs, metrics labels and
/// logs, so they are short and drawn from `[A-Za-z0-9_.:-]`.
pub fn name(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(Rejection::invalid(field, "must not be empty"));
    }
    if value.len() > NAME_BYTES_MAX {
        return Err(Rejection::invalid(
            field,
            format!("longer than {NAME_BYTES_MAX} bytes"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(Rejection::invalid(
            field,
            format!("character {c:?} is not one of A-Z a-z 0-9 _ . : -"),
        ));
    }
    Ok(())
}

/// Worker ids, idempotency and coalesce keys, group ids: any printable text without
/// control characters, bounded in length.
pub fn key(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(Rejection::invalid(field, "must not be empty"));
    }
    if value.len() > NAME_BYTES_MAX {
        return Err(Rejection::invalid(
            field,
            format!("longer than {NAME_BYTES_MAX} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Rejection::invalid(field, "contains a control character"));
    }
    Ok(())
}

pub fn optional_key(field: &str, value: Option<&str>) -> Result<(), Rejection> {
    value.map_or(Ok(()), |v| key(field, v))
}

/// JSON text carried for a client (payload, result, progress, messages).
pub fn blob(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    if value.len() > max {
        return Err(Rejection::PayloadTooLarge {
            field: field.to_owned(),
            bytes: value.len() as u64,
            max: max as u64,
        });
    }
    Ok(())
}

pub fn payload(field: &str, value: &str) -> Result<(), Rejection> {
    blob(field, value, limits::PAYLOAD_BYTES_MAX)
}

pub fn lease_ms(value: u64) -> Result<(), Rejection> {
    range(
        "lease_ms",
        value,
        limits::LEASE_MS_MIN,
        limits::LEASE_MS_MAX,
    )
}

pub fn duration_ms(field: &str, value: u64) -> Result<(), Rejection> {
    range(field, value, 0, limits::DURATION_MS_MAX)
}

/// Timeouts of zero would fire before anything could happen: at least one millisecond.
pub fn timeout_ms(field: &str, value: Option<u64>) -> Result<(), Rejection> {
    value.map_or(Ok(()), |v| range(field, v, 1, limits::DURATION_MS_MAX))
}

pub fn range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), Rejection> {
    if value < min || value > max {
        return Err(Rejection::invalid(
            field,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(())
}

pub fn batch(what: &str, len: usize, max: usize) -> Result<(), Rejection> {
    if len > max {
        return Err(Rejection::BatchTooLarge {
            what: what.to_owned(),
            len: len as u64,
            max: max as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_charset_and_refuse_the_rest() {
        assert!(name("queue", "emails.high-1:v2_x").is_ok());
        for bad in [
            "",
            "a b",
            "a/b",
            "ünï",
            "a\n",
            &"q".repeat(NAME_BYTES_MAX + 1),
        ] {
            assert_eq!(
                name("queue", bad).unwrap_err().code(),
                "invalid_request",
                "{bad:?}"
            );
        }
        assert!(name("queue", &"q".repeat(NAME_BYTES_MAX)).is_ok());
    }

    #[test]
    fn keys_accept_text_and_refuse_control_characters() {
        assert!(key("idempotency_key", "order 42 / ünïcode").is_ok());
        assert!(key("idempotency_key", "a\u{0}b").is_err());
        assert!(key("idempotency_key", "").is_err());
    }
}
