//! A small server-sent-events reader: bytes in, (event, data, id) out.

use futures::{Stream, StreamExt};

use crate::error::ClientError;

/// Longest SSE line accepted; a longer one means a broken stream, not a big event.
pub const SSE_LINE_BYTES_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// Turns a response body into its events. Comments (keep-alives) are skipped.
pub fn events(resp: reqwest::Response) -> impl Stream<Item = Result<SseEvent, ClientError>> {
    let body = resp.bytes_stream();
    futures::stream::unfold(
        (body, String::new(), SseEvent::default(), false),
        |(mut body, mut buf, mut current, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = buf.find('\n') {
                    let line: String = buf.drain(..=end).collect();
                    let line = line.trim_end_matches(['\n', '\r']);
                    if line.is_empty() {
                        if !current.data.is_empty() || !current.event.is_empty() {
                            let event = std::mem::take(&mut current);
                            return Some((Ok(event), (body, buf, current, false)));
                        }
                        continue;
                    }
                    if line.starts_with(':') {
                        continue;
                    }
                    let (field, value) = line
                        .split_once(':')
                        .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
                    match field {
                        "event" => current.event = value.to_owned(),
                        "data" => {
                            if !current.data.is_empty() {
                                current.data.push('\n');
                            }
                            current.data.push_str(value);
                        }
                        "id" => current.id = Some(value.to_owned()),
                        _ => {}
                    }
                    continue;
                }
                if buf.len() > SSE_LINE_BYTES_MAX {
                    return Some((
                        Err(ClientError::Protocol(
                            "an event stream line is too long".into(),
                        )),
                        (body, buf, current, true),
                    ));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.push_str(&String::from_utf8_lossy(&chunk)),
                    Some(Err(e)) => {
                        return Some((
                            Err(ClientError::Indeterminate(format!(
                                "event stream broke: {e}"
                            ))),
                            (body, buf, current, true),
                        ))
                    }
                    None => return None,
                }
            }
        },
    )
}
