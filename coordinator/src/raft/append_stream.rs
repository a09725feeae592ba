//! The AppendEntries stream: one long-lived connection per follower that carries
//! AppendEntries as length-prefixed frames instead of one HTTP request each.
//!
//! Why: AppendEntries is the RPC sent most, and per request HTTP cost the leader ~11 % of
//! its CPU in `reqwest` (framing, headers, the pool, and a wake-up of hyper's connection
//! task each way) and each follower 12–15 % in hyper and axum (bench/README.md, "CPU by
//! layer"). A frame is one `write` and one `read` on each side.
//!
//! How: the leader opens the stream with an HTTP/1.1 upgrade on the node's one port
//! (`GET` [`STREAM_PATH`], `Upgrade:` [`UPGRADE_PROTOCOL`]), so deployments keep one port
//! and the secret and cluster id are checked once, by the same rules as every Raft RPC
//! (`rpc_server.rs`). After `101`, each request is `[u32 length, big-endian][body]` where
//! the body is exactly an `/raft/append` POST body (`wire.rs`: a version byte, then
//! bincode), and each answer is `[u32 length][status byte][body]` (`Status`). One request
//! is in flight per stream: openraft 0.9 replicates to a follower one RPC at a time.
//!
//! A peer that does not answer `101` (a build from before the stream, during a rolling
//! upgrade), or does not answer the upgrade within the call's deadline, gets plain POSTs;
//! the leader asks again after [`UPGRADE_RETRY_MS`]. A stream that fails, times out, or
//! whose call was dropped half-way is closed, never reused: the next call opens a new
//! one ([`StreamSlot`]). A follower closes a stream that carried no frame for
//! [`STREAM_IDLE_MS`] (its leader vanished without closing it).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::HeaderValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::behaviour::BEHAVIOUR_MAX_HEADER;
use super::wire::{self, RPC_BODY_BYTES_MAX};

/// The path a leader asks to upgrade on.
pub const STREAM_PATH: &str = "/raft/append/stream";
/// The protocol named in `Upgrade:`; a new frame format gets a new name.
pub const UPGRADE_PROTOCOL: &str = "taskswarm-raft-append/1";
/// After a peer refused the upgrade, the leader sends it plain POSTs this long before it
/// asks again (the peer may have been upgraded meanwhile).
pub const UPGRADE_RETRY_MS: u64 = 10_000;
/// Longest answer head to a leader's upgrade request.
pub const HANDSHAKE_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Longest answer frame a leader reads: an AppendEntries answer is a few dozen bytes, and
/// the length comes from a peer before anything of it is checked.
pub const ANSWER_BYTES_MAX: usize = 64 * 1024;
/// The length prefix of every frame.
pub const FRAME_LEN_BYTES: usize = 4;
/// A follower closes a stream without a frame for this long. A leader sends at least a
/// heartbeat every `--heartbeat-ms`; one that is gone without closing the connection
/// (its machine died, a partition) would otherwise hold the task and socket forever.
pub const STREAM_IDLE_MS: u64 = 60_000;
/// Headers read from that head at most.
const HANDSHAKE_HEADERS_MAX: usize = 32;
/// Connecting to a peer gives up after this long (the POSTs' HTTP client uses it too).
pub const CONNECT_TIMEOUT_MS: u64 = 500;

/// AppendEntries a node answered, by how they came: for `/metrics`, and for tests that
/// check which way a leader sent them.
#[derive(Debug, Default)]
pub struct AppendsReceived {
    pub streamed: AtomicU64,
    pub posted: AtomicU64,
}

/// The first byte of an answer frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The body is what the `/raft/append` POST would have answered with `200`.
    Answered = 0,
    /// The request frame was longer than [`RPC_BODY_BYTES_MAX`]; the server closes the
    /// stream after this (as a POST's `413`).
    TooLarge = 1,
    /// The request frame did not decode; the body is the reason in UTF-8, and the server
    /// closes the stream.
    Refused = 2,
}

impl Status {
    fn from_byte(byte: u8) -> Option<Status> {
        [Status::Answered, Status::TooLarge, Status::Refused]
            .into_iter()
            .find(|s| *s as u8 == byte)
    }
}

/// A frame: the length of what follows as a big-endian u32, then `head` and `body`.
fn frame(head: &[u8], body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![0; FRAME_LEN_BYTES];
    out.extend_from_slice(head);
    body(&mut out);
    let len = u32::try_from(out.len() - FRAME_LEN_BYTES)
        .expect("a frame is bounded by RPC_BODY_BYTES_MAX");
    out[..FRAME_LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    out
}

/// The length of what follows a frame's prefix.
pub fn frame_body_len(frame: &[u8]) -> usize {
    frame.len() - FRAME_LEN_BYTES
}

/// A request frame: the POST body of the same request.
pub fn request_frame<T: Serialize>(req: &T) -> Vec<u8> {
    frame(&[], |out| wire::encode_into(out, req))
}

/// An answer frame.
pub fn answer_frame(status: Status, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    frame(&[status as u8], body)
}

/// Reads one frame's length and body; `None` at a clean end of the stream.
async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    len_max: usize,
) -> std::io::Result<Option<Result<Vec<u8>, usize>>> {
    let mut len = [0u8; FRAME_LEN_BYTES];
    match io.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > len_max {
        return Ok(Some(Err(len)));
    }
    let mut body = vec![0; len];
    io.read_exact(&mut body).await?;
    Ok(Some(Ok(body)))
}

/// What a leader's upgrade request came back with.
#[derive(Debug)]
pub enum Opened {
    Stream(ClientStream),
    /// The peer answered the upgrade with this status: it does not serve the stream (or
    /// refused the secret or cluster id, which a POST will report in its own words).
    Refused(u16),
}

/// The leader's end of one stream.
#[derive(Debug)]
pub struct ClientStream {
    io: BufReader<TcpStream>,
    /// The peer's behaviour header from its `101`: the same on every answer of one
    /// process, so each answer on the stream reports it (`behaviour.rs`).
    behaviour_max: Option<Vec<u8>>,
}

/// What one request on a stream got.
#[derive(Debug)]
pub enum Answer<T> {
    Answered(T),
    TooLarge,
    Refused(String),
}

/// Why a stream failed; either way it is closed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("append stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("append stream: {0}")]
    Protocol(String),
}

/// The upgrade request. `None` if a value cannot travel in a header (the caller then
/// uses POSTs, which report the same problem through the HTTP client).
pub fn upgrade_request(
    host: &str,
    secret: &str,
    cluster_id: Option<&HeaderValue>,
) -> Option<String> {
    // A header value cannot hold CR or LF, so neither value can end the head early.
    let valid = |v: &str| HeaderValue::from_str(v).is_ok();
    if !valid(host) || !valid(secret) {
        return None;
    }
    let mut head = format!(
        "GET {STREAM_PATH} HTTP/1.1\r\nhost: {host}\r\nconnection: upgrade\r\nupgrade: {UPGRADE_PROTOCOL}\r\n{}: {secret}\r\n",
        wire::CLUSTER_SECRET_HEADER
    );
    if let Some(id) = cluster_id {
        head.push_str(super::cluster_id::CLUSTER_ID_HEADER);
        head.push_str(": ");
        head.push_str(id.to_str().ok()?);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    Some(head)
}

/// Parses the answer head to an upgrade request: `Ok(status, behaviour header)`.
pub fn parse_answer_head(head: &[u8]) -> Result<(u16, Option<Vec<u8>>), String> {
    let mut headers = [httparse::EMPTY_HEADER; HANDSHAKE_HEADERS_MAX];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete answer head".to_owned()),
        Err(e) => return Err(format!("unreadable answer head: {e}")),
    }
    let status = answer.code.ok_or("answer without a status")?;
    let behaviour = answer
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(BEHAVIOUR_MAX_HEADER))
        .map(|h| h.value.to_vec());
    Ok((status, behaviour))
}

impl ClientStream {
    /// Connects to `addr` (host:port) and asks for the stream with `request`.
    pub async fn open(addr: &str, request: &str) -> Result<Opened, StreamError> {
        let tcp = tokio::time::timeout(
            Duration::from_millis(CONNECT_TIMEOUT_MS),
            TcpStream::connect(addr),
        )
        .await
        .map_err(|_| StreamError::Connect(std::io::ErrorKind::TimedOut.into()))?
        .map_err(StreamError::Connect)?;
        tcp.set_nodelay(true)?;
        let mut io = BufReader::new(tcp);
        io.write_all(request.as_bytes()).await?;
        // The head ends with an empty line; no frame comes before the first request.
        let mut head = Vec::new();
        loop {
            let before = head.len();
            let read = (&mut io)
                .take((HANDSHAKE_HEAD_BYTES_MAX - before) as u64)
                .read_until(b'\n', &mut head)
                .await?;
            if read == 0 {
                return Err(StreamError::Protocol(
                    "the peer closed the connection during the upgrade".to_owned(),
                ));
            }
            if head[before..] == *b"\r\n" || head[before..] == *b"\n" {
                break;
            }
            if head.len() >= HANDSHAKE_HEAD_BYTES_MAX {
                return Err(StreamError::Protocol(
                    "upgrade answer head too long".to_owned(),
                ));
            }
        }
        let (status, behaviour_max) = parse_answer_head(&head).map_err(StreamError::Protocol)?;
        if status != 101 {
            return Ok(Opened::Refused(status));
        }
        Ok(Opened::Stream(ClientStream { io, behaviour_max }))
    }

    /// The peer's behaviour header, to report with each answer.
    pub fn behaviour_max(&self) -> Option<&[u8]> {
        self.behaviour_max.as_deref()
    }

    /// Sends one request frame and reads its answer.
    pub async fn call<Resp: DeserializeOwned>(
        &mut self,
        request: &[u8],
    ) -> Result<Answer<Resp>, StreamError> {
        self.io.write_all(request).await?;
        let body = match read_frame(&mut self.io, ANSWER_BYTES_MAX).await? {
            Some(Ok(body)) => body,
            Some(Err(len)) => {
                return Err(StreamError::Protocol(format!(
                    "answer frame of {len} bytes"
                )))
            }
            None => {
                return Err(StreamError::Protocol(
                    "the peer closed the stream".to_owned(),
                ))
            }
        };
        let (&status, body) = body
            .split_first()
            .ok_or_else(|| StreamError::Protocol("empty answer frame".to_owned()))?;
        match Status::from_byte(status) {
            Some(Status::Answered) => wire::decode(body)
                .map(Answer::Answered)
                .map_err(|e| StreamError::Protocol(e.to_string())),
            Some(Status::TooLarge) => Ok(Answer::TooLarge),
            Some(Status::Refused) => {
                Ok(Answer::Refused(String::from_utf8_lossy(body).into_owned()))
            }
            None => Err(StreamError::Protocol(format!("answer status {status}"))),
        }
    }
}

/// What one call on a [`StreamSlot`] came to.
#[derive(Debug)]
pub enum Called<Resp> {
    Answer(Answer<Resp>),
    /// The peer answered the upgrade with this status instead of `101`.
    UpgradeRefused(u16),
}

/// The leader's stream to one peer: opened by the first call, kept while calls are
/// answered, and taken out for each call so that a call dropped half-way (openraft
/// cancels replication at a step-down) leaves no half-read stream behind.
#[derive(Debug, Default)]
pub struct StreamSlot {
    open: Option<ClientStream>,
}

impl StreamSlot {
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The open stream's peer behaviour header (after an answered call).
    pub fn behaviour_max(&self) -> Option<&[u8]> {
        self.open.as_ref().and_then(ClientStream::behaviour_max)
    }

    /// One request frame, on the open stream or a new one to `addr` asked for with
    /// `upgrade`. A stream that was open before this call and fails before an answer (the
    /// peer restarted, or closed it idle) is replaced once: an AppendEntries may be sent
    /// again, Raft ignores what it already has.
    pub async fn call<Resp: DeserializeOwned>(
        &mut self,
        addr: &str,
        upgrade: impl FnOnce() -> String,
        request: &[u8],
    ) -> Result<Called<Resp>, StreamError> {
        let mut upgrade = Some(upgrade);
        let mut reused = self.open.is_some();
        loop {
            let mut stream = match self.open.take() {
                Some(stream) => stream,
                None => {
                    // At most one open per call: only a reused stream is replaced.
                    let upgrade = upgrade.take().expect("one open per call")();
                    match ClientStream::open(addr, &upgrade).await? {
                        Opened::Stream(stream) => stream,
                        Opened::Refused(status) => return Ok(Called::UpgradeRefused(status)),
                    }
                }
            };
            match stream.call(request).await {
                Ok(answer) => {
                    // After any other answer the peer closes the stream.
                    if matches!(answer, Answer::Answered(_)) {
                        self.open = Some(stream);
                    }
                    return Ok(Called::Answer(answer));
                }
                Err(e) if reused => {
                    tracing::debug!(error = %e, "append stream failed; opening another");
                    reused = false;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The follower's end: answers request frames with `answer` until the leader closes
/// the stream, a frame is refused, or none came for [`STREAM_IDLE_MS`].
pub async fn serve<IO, Req, Resp, F, Fut>(io: IO, answer: F)
where
    IO: AsyncRead + AsyncWrite + Unpin,
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    let mut io = BufReader::new(io);
    loop {
        let next = tokio::time::timeout(
            Duration::from_millis(STREAM_IDLE_MS),
            read_frame(&mut io, RPC_BODY_BYTES_MAX),
        );
        let Ok(next) = next.await else {
            tracing::debug!(idle_ms = STREAM_IDLE_MS, "append stream idle; closing");
            return;
        };
        let reply = match next {
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "append stream ended");
                return;
            }
            Ok(Some(Err(len))) => {
                tracing::warn!(len, "append stream: request frame too large; closing");
                let _ = io.write_all(&answer_frame(Status::TooLarge, |_| {})).await;
                return;
            }
            Ok(Some(Ok(body))) => match wire::decode::<Req>(&body) {
                Ok(req) => {
                    let resp = answer(req).await;
                    answer_frame(Status::Answered, |out| wire::encode_into(out, &resp))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "append stream: undecodable request; closing");
                    let why = e.to_string();
                    let _ = io
                        .write_all(&answer_frame(Status::Refused, |out| {
                            out.extend_from_slice(why.as_bytes())
                        }))
                        .await;
                    return;
                }
            },
        };
        if let Err(e) = io.write_all(&reply).await {
            tracing::debug!(error = %e, "append stream: answer not sent");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Saved bytes: the frame layout is a wire format between builds.
    #[test]
    fn frames_keep_their_layout() {
        let req = request_frame(&(7u32, 1u8));
        assert_eq!(req, [0, 0, 0, 6, wire::RPC_FORMAT_VERSION, 7, 0, 0, 0, 1]);
        let answer = answer_frame(Status::Refused, |out| out.extend_from_slice(b"no"));
        assert_eq!(answer, [0, 0, 0, 3, 2, b'n', b'o']);
        assert_eq!(answer_frame(Status::TooLarge, |_| {}), [0, 0, 0, 1, 1]);
        assert_eq!(Status::from_byte(0), Some(Status::Answered));
        assert_eq!(Status::from_byte(3), None);
    }

    #[test]
    fn the_upgrade_request_carries_the_secret_and_id_and_refuses_header_breaks() {
        let id = HeaderValue::from_static("00ff");
        let req = upgrade_request("n1:7000", "s3cret", Some(&id)).unwrap();
        assert_eq!(
            req,
            "GET /raft/append/stream HTTP/1.1\r\nhost: n1:7000\r\nconnection: upgrade\r\n\
             upgrade: taskswarm-raft-append/1\r\nx-taskswarm-cluster-secret: s3cret\r\n\
             x-taskswarm-cluster-id: 00ff\r\n\r\n"
        );
        assert!(upgrade_request("n1:7000", "a\r\nx: y", None).is_none());
        assert!(upgrade_request("n1\n", "s", None).is_none());
    }

    #[test]
    fn answer_heads_give_status_and_behaviour() {
        let (status, behaviour) = parse_answer_head(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nX-Taskswarm-Behaviour-Max: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!((status, behaviour.as_deref()), (101, Some(&b"3"[..])));
        let (status, behaviour) =
            parse_answer_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert_eq!((status, behaviour), (404, None));
        assert!(parse_answer_head(b"HTTP/1.1 101 Switching").is_err());
        assert!(parse_answer_head(b"garbage\r\n\r\n").is_err());
    }

    /// A peer on loopback that answers the upgrade (or refuses it with `refuse`), then
    /// answers `frames_per_connection` frames with the number doubled and closes.
    async fn fake_peer(
        refuse: Option<&'static str>,
        frames_per_connection: usize,
    ) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = tokio::spawn(async move {
            let mut connections = 0;
            while let Ok(Ok((tcp, _))) =
                tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
            {
                connections += 1;
                let mut io = BufReader::new(tcp);
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    io.read_until(b'\n', &mut head).await.unwrap();
                }
                if let Some(answer) = refuse {
                    io.write_all(answer.as_bytes()).await.unwrap();
                    continue;
                }
                io.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nx-taskswarm-behaviour-max: 2\r\n\r\n",
                )
                .await
                .unwrap();
                for _ in 0..frames_per_connection {
                    let body = read_frame(&mut io, 1024).await.unwrap().unwrap().unwrap();
                    let n: u64 = wire::decode(&body).unwrap();
                    let answer =
                        answer_frame(Status::Answered, |out| wire::encode_into(out, &(n * 2)));
                    io.write_all(&answer).await.unwrap();
                }
            }
            connections
        });
        (addr, served)
    }

    fn answered(called: Called<u64>) -> u64 {
        match called {
            Called::Answer(Answer::Answered(n)) => n,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slot_keeps_its_stream_and_replaces_one_the_peer_closed() {
        let (addr, served) = fake_peer(None, 2).await;
        let upgrade = upgrade_request(&addr, "s", None).unwrap();
        let mut slot = StreamSlot::default();
        // Two answers on the first connection, then the peer closes it: the third call
        // finds it dead and opens another within the same call.
        for n in [1u64, 2, 3, 4] {
            let called = slot
                .call::<u64>(&addr, || upgrade.clone(), &request_frame(&n))
                .await
                .unwrap();
            assert_eq!(answered(called), n * 2);
            assert!(slot.is_open());
            assert_eq!(slot.behaviour_max(), Some(&b"2"[..]));
        }
        drop(slot);
        assert_eq!(served.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_fresh_stream_that_fails_is_an_error_and_a_refused_upgrade_says_so() {
        // The peer closes before answering the first frame: no second try on a stream
        // that was never answered.
        let (addr, served) = fake_peer(None, 0).await;
        let upgrade = upgrade_request(&addr, "s", None).unwrap();
        let mut slot = StreamSlot::default();
        let failed = slot
            .call::<u64>(&addr, || upgrade.clone(), &request_frame(&1u64))
            .await;
        assert!(
            matches!(failed, Err(StreamError::Protocol(_) | StreamError::Io(_))),
            "{failed:?}"
        );
        assert!(!slot.is_open());
        assert_eq!(served.await.unwrap(), 1);

        let (addr, _served) = fake_peer(
            Some("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
            0,
        )
        .await;
        let called = slot
            .call::<u64>(&addr, || upgrade.clone(), &request_frame(&1u64))
            .await
            .unwrap();
        assert!(matches!(called, Called::UpgradeRefused(404)), "{called:?}");
        assert!(!slot.is_open());

        // Nobody listening: a connect error, which the caller reports as unreachable.
        drop(_served);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let failed = slot
            .call::<u64>(&addr, || upgrade.clone(), &request_frame(&1u64))
            .await;
        assert!(matches!(failed, Err(StreamError::Connect(_))), "{failed:?}");
    }

    /// Both ends over an in-memory pipe: answers in order, then a clean end; a frame over
    /// the limit is answered `TooLarge` and ends the stream.
    #[tokio::test]
    async fn serve_answers_frames_in_order_and_closes_on_a_bad_one() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve(server, |n: u64| async move { n * 2 }));
        for n in [1u64, 5, 21] {
            client.write_all(&request_frame(&n)).await.unwrap();
            let body = read_frame(&mut client, 1024)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(body[0], Status::Answered as u8);
            assert_eq!(wire::decode::<u64>(&body[1..]).unwrap(), n * 2);
        }
        // An undecodable body: refused, with the reason, and the stream ends.
        client.write_all(&[0, 0, 0, 1, 99]).await.unwrap();
        let body = read_frame(&mut client, 1024)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(body[0], Status::Refused as u8);
        assert!(String::from_utf8_lossy(&body[1..]).contains("version 99"));
        served.await.unwrap();
        assert!(read_frame(&mut client, 1024).await.unwrap().is_none());

        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve(server, |n: u64| async move { n }));
        let too_long = (RPC_BODY_BYTES_MAX as u32 + 1).to_be_bytes();
        client.write_all(&too_long).await.unwrap();
        let body = read_frame(&mut client, 1024)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(body, [Status::TooLarge as u8]);
        served.await.unwrap();
    }
}
