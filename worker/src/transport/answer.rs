//! What a final answer means to the caller: a success decodes into the response type,
//! any other status is a refusal (`Rejected`), which changed nothing.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use taskswarm_api::ErrorBody;

use crate::error::ClientError;

/// Longest piece of an unparsable error body quoted in a `Rejected` message.
const BODY_QUOTE_CHARS_MAX: usize = 200;

/// An answer that ends a call: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn decode<Resp: DeserializeOwned>(&self) -> Result<Resp, ClientError> {
        if self.status.is_success() {
            return serde_json::from_slice(&self.body)
                .map_err(|e| ClientError::Protocol(format!("undecodable answer: {e}")));
        }
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(e) => Err(ClientError::Rejected {
                status: self.status.as_u16(),
                code: e.error.code,
                message: e.error.message,
            }),
            Err(_) => Err(ClientError::Rejected {
                status: self.status.as_u16(),
                code: "http_error".into(),
                message: String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(BODY_QUOTE_CHARS_MAX)
                    .collect(),
            }),
        }
    }
}

/// The `code` of an error body, or `""` when the body is not one.
pub(crate) fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.error.code)
        .unwrap_or_default()
}

/// The leader's address a follower names in a redirect's body, if it does.
pub(crate) fn leader_addr(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|e| e.error.leader_addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// `Ok`, or the error's kind and code.
    type Expected = Result<(), (&'static str, &'static str)>;

    #[test]
    fn classifies_answers() {
        // (status, body, expected)
        let cases: &[(u16, &str, Expected)] = &[
            (200, r#"{"a":1}"#, Ok(())),
            (201, "{}", Ok(())),
            (200, "not json", Err(("protocol", ""))),
            (
                409,
                r#"{"error":{"code":"lease_lost","message":"gone"}}"#,
                Err(("rejected", "lease_lost")),
            ),
            (400, "<html>bad</html>", Err(("rejected", "http_error"))),
            (
                500,
                r#"{"error":{"code":"internal","message":"x"}}"#,
                Err(("rejected", "internal")),
            ),
        ];
        for (status, body, expected) in cases {
            let got = answer(*status, body).decode::<Value>();
            match (expected, got) {
                (Ok(()), Ok(_)) => {}
                (Err(("protocol", _)), Err(ClientError::Protocol(_))) => {}
                (
                    Err(("rejected", code)),
                    Err(ClientError::Rejected {
                        status: s, code: c, ..
                    }),
                ) => {
                    assert_eq!((s, c.as_str()), (*status, *code), "{status} {body}");
                }
                (expected, got) => panic!("{status} {body}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn quotes_at_most_a_prefix_of_an_unparsable_body() {
        let long = "x".repeat(BODY_QUOTE_CHARS_MAX * 3);
        let Err(ClientError::Rejected { message, .. }) = answer(502, &long).decode::<Value>()
        else {
            panic!("a 502 is a rejection");
        };
        assert_eq!(message.chars().count(), BODY_QUOTE_CHARS_MAX);
    }

    #[test]
    fn reads_codes_and_leader_addresses() {
        let body = br#"{"error":{"code":"not_leader","message":"m","leader_addr":"http://l:1"}}"#;
        assert_eq!(error_code(body), "not_leader");
        assert_eq!(leader_addr(body).as_deref(), Some("http://l:1"));
        assert_eq!(error_code(b"garbage"), "");
        assert_eq!(leader_addr(b"garbage"), None);
    }
}
