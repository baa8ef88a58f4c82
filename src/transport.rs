//! All glue to the WebSocket transport (`actix-web-actors`) lives here, so the hub and
//! the protocol never see it and the transport can change in one place.
//!
//! It owns: the upgrade with its frame-size limit, reassembly of fragmented messages into
//! whole [`Incoming`] messages, the mapping of transport failures to close codes, and a
//! [`SocketCloser`] that can shut a jammed connection's socket from outside its actor.

use std::{sync::Mutex, time::Duration};

use actix::Actor;
use actix_http::ws::Item;
use actix_web::{dev::Extensions, web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode as WireCloseCode, CloseReason, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

pub use actix_web_actors::ws::WebsocketContext as WsContext;

/// What a WebSocket stream yields to a connection actor.
pub type WsFrame = Result<ws::Message, ProtocolError>;

/// A close code the server sends (temporary shim until the transport split lands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const POLICY: CloseCode = CloseCode(close_code::POLICY);
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(close_code::TRY_AGAIN_LATER);
}

/// Close codes (RFC 6455 section 7.4) the server sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Why a request to a WebSocket endpoint was not upgraded (RFC 6455 section 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// Not a GET: 405.
    MethodNotAllowed,
    /// No `Upgrade: websocket`, or a version other than 13: 426, with
    /// `Sec-WebSocket-Version: 13` so the client knows what we speak.
    UpgradeRequired,
    /// A missing or malformed `Sec-WebSocket-Key`: 400.
    BadKey,
}

/// Checks the upgrade request strictly: version 13 only and a well-formed key
/// (actix-web-actors alone also accepts versions 7 and 8 and any key).
pub fn check_handshake(req: &HttpRequest) -> Result<(), HandshakeRefusal> {
    use actix_http::ws::HandshakeError as E;
    actix_http::ws::verify_handshake(req.head()).map_err(|err| match err {
        E::GetMethodRequired => HandshakeRefusal::MethodNotAllowed,
        E::BadWebsocketKey => HandshakeRefusal::BadKey,
        E::NoWebsocketUpgrade
        | E::NoConnectionUpgrade
        | E::NoVersionHeader
        | E::UnsupportedVersion => HandshakeRefusal::UpgradeRequired,
    })
}

/// Starts `actor` on the upgraded connection (after [`check_handshake`]). A frame
/// whose header declares more than `max_frame_bytes` is refused as soon as the header
/// arrives, before any of its payload is buffered.
pub fn upgrade<A>(
    actor: A,
    req: &HttpRequest,
    payload: web::Payload,
    max_frame_bytes: usize,
) -> Result<HttpResponse, actix_web::Error>
where
    A: Actor<Context = WsContext<A>> + actix::StreamHandler<WsFrame>,
{
    let guarded = FrameSizeGuard::new(payload, max_frame_bytes as u64);
    ws::WsResponseBuilder::new(actor, req, guarded)
        .frame_size(max_frame_bytes)
        .start()
}

/// Watches the client's raw bytes frame by frame and fails the stream as soon as a frame
/// header declares a payload over the limit. The actix decoder checks the size only
/// once the whole frame is buffered, which lets a client make the server buffer
/// whatever it declares.
struct FrameSizeGuard<S> {
    inner: S,
    max_payload: u64,
    /// Bytes of the frame header read so far (at most 14: 2 + 8 length + 4 mask).
    header: [u8; 14],
    header_len: usize,
    /// Payload bytes of the current frame still to pass through.
    payload_left: u64,
    failed: bool,
}

impl<S> FrameSizeGuard<S> {
    fn new(inner: S, max_payload: u64) -> Self {
        Self {
            inner,
            max_payload,
            header: [0; 14],
            header_len: 0,
            payload_left: 0,
            failed: false,
        }
    }

    /// Advances the frame tracking over `chunk`; `false` if a header is over the limit.
    fn scan(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(chunk.len() as u64);
                self.payload_left -= skip;
                chunk = &chunk[skip as usize..];
                continue;
            }
            // The usual case, a whole header in the chunk: read it in place.
            if self.header_len == 0 && chunk.len() >= self.header.len() {
                let Some((header_bytes, length)) = parse_header(chunk) else {
                    unreachable!("14 bytes always hold a frame header")
                };
                if length > self.max_payload {
                    return false;
                }
                self.payload_left = length;
                chunk = &chunk[header_bytes..];
                continue;
            }
            self.header[self.header_len] = chunk[0];
            self.header_len += 1;
            chunk = &chunk[1..];
            // Refused as soon as the length is known, before the mask arrives.
            if let Some(length) = declared_length(&self.header[..self.header_len]) {
                if length > self.max_payload {
                    return false;
                }
            }
            if let Some((_, length)) = parse_header(&self.header[..self.header_len]) {
                self.payload_left = length;
                self.header_len = 0;
            }
        }
        true
    }
}

/// The payload length a frame header declares, once its length bytes are in `header`.
fn declared_length(header: &[u8]) -> Option<u64> {
    let short_length = *header.get(1)? & 0x7f;
    match short_length {
        126 => Some(u64::from(u16::from_be_bytes(
            header.get(2..4)?.try_into().ok()?,
        ))),
        127 => Some(u64::from_be_bytes(header.get(2..10)?.try_into().ok()?)),
        short => Some(u64::from(short)),
    }
}

/// `(header size, payload length)` once `bytes` hold a whole frame header (2 to 14
/// bytes: the length's extension and the mask included).
fn parse_header(bytes: &[u8]) -> Option<(usize, u64)> {
    let length = declared_length(bytes)?;
    let extended = match bytes[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if bytes[1] & 0x80 != 0 { 4 } else { 0 };
    let size = 2 + extended + mask;
    (bytes.len() >= size).then_some((size, length))
}

impl<S> futures_core::Stream for FrameSizeGuard<S>
where
    S: futures_core::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.failed {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.scan(&chunk) {
                    Poll::Ready(Some(Ok(chunk)))
                } else {
                    self.failed = true;
                    Poll::Ready(Some(Err(actix_web::error::PayloadError::Overflow)))
                }
            }
            other => other,
        }
    }
}

/// A whole message from the client, fragments already joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// The client's close frame; its code is already checked.
    Close(Option<CloseReason>),
    /// The client's answer to a close we sent: the handshake is complete.
    CloseAcknowledged,
}

/// Why a connection must be closed; each maps to one close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A message over the size limit (1009).
    TooBig,
    /// Text that is not UTF-8 (1007).
    InvalidUtf8,
    /// Anything else RFC 6455 forbids (1002).
    Protocol(String),
    /// The connection broke (TCP closed without a close frame): nothing to send.
    ConnectionLost(String),
}

impl Violation {
    /// The close code to send, or `None` when the peer is already gone.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Violation::TooBig => Some(close_code::TOO_BIG),
            Violation::InvalidUtf8 => Some(close_code::INVALID_PAYLOAD),
            Violation::Protocol(_) => Some(close_code::PROTOCOL_ERROR),
            Violation::ConnectionLost(_) => None,
        }
    }

    pub fn description(&self) -> String {
        match self {
            Violation::TooBig => "message too big".into(),
            Violation::InvalidUtf8 => "text is not valid UTF-8".into(),
            Violation::Protocol(detail) | Violation::ConnectionLost(detail) => detail.clone(),
        }
    }
}

/// The incoming half of a connection: joins continuation frames into whole messages,
/// enforcing the size limit on the whole message (the decoder enforces it per frame),
/// and, once the server has sent a close, discards everything until the client's close.
#[derive(Debug)]
pub struct Reassembler {
    max_message_bytes: usize,
    /// How long to wait for the client's close after sending ours.
    close_timeout: Duration,
    /// The server has sent its close frame.
    closing: bool,
    /// The message being assembled: `Some(true)` text, `Some(false)` binary.
    in_progress: Option<bool>,
    buffer: BytesMut,
    /// How much of a text message's buffer is known to be valid UTF-8, so each fragment
    /// is checked once and bad text fails at the fragment that breaks it.
    valid_utf8_up_to: usize,
}

impl Reassembler {
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            close_timeout: Duration::from_secs(1),
            closing: false,
            in_progress: None,
            buffer: BytesMut::new(),
            valid_utf8_up_to: 0,
        }
    }

    /// How long a close we send waits for the client's close (default one second).
    pub fn with_close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }

    /// Feeds one frame from the transport; `Ok(None)` means "part of a message, keep going".
    pub fn push(&mut self, frame: WsFrame) -> Result<Option<Incoming>, Violation> {
        let message = frame.map_err(violation_of)?;
        if self.closing {
            // Whatever the client was still sending when our close went out is dropped.
            return Ok(
                matches!(message, ws::Message::Close(_)).then_some(Incoming::CloseAcknowledged)
            );
        }
        match message {
            ws::Message::Text(text) => {
                self.no_fragment_open()?;
                Ok(Some(Incoming::Text(text)))
            }
            ws::Message::Binary(data) => {
                self.no_fragment_open()?;
                Ok(Some(Incoming::Binary(data)))
            }
            ws::Message::Ping(data) => Ok(Some(Incoming::Ping(data))),
            ws::Message::Pong(_) => Ok(Some(Incoming::Pong)),
            ws::Message::Close(reason) => {
                if let Some(reason) = &reason {
                    if !is_valid_close_code(u16::from(reason.code)) {
                        return Err(Violation::Protocol("invalid close code".into()));
                    }
                }
                Ok(Some(Incoming::Close(reason)))
            }
            ws::Message::Nop => Ok(None),
            ws::Message::Continuation(item) => self.continuation(item),
        }
    }

    fn continuation(&mut self, item: Item) -> Result<Option<Incoming>, Violation> {
        match item {
            Item::FirstText(data) => self.start(true, data),
            Item::FirstBinary(data) => self.start(false, data),
            Item::Continue(data) => {
                self.append(data)?;
                Ok(None)
            }
            Item::Last(data) => {
                self.append(data)?;
                let is_text = self.in_progress.take().unwrap_or(false);
                let whole = self.buffer.split().freeze();
                if is_text {
                    ByteString::try_from(whole)
                        .map(|text| Some(Incoming::Text(text)))
                        .map_err(|_| Violation::InvalidUtf8)
                } else {
                    Ok(Some(Incoming::Binary(whole)))
                }
            }
        }
    }

    fn start(&mut self, is_text: bool, data: Bytes) -> Result<Option<Incoming>, Violation> {
        self.no_fragment_open()?;
        self.in_progress = Some(is_text);
        self.buffer.clear();
        self.valid_utf8_up_to = 0;
        self.append(data)?;
        Ok(None)
    }

    fn append(&mut self, data: Bytes) -> Result<(), Violation> {
        if self.in_progress.is_none() {
            return Err(Violation::Protocol(
                "continuation frame without a message to continue".into(),
            ));
        }
        if self.buffer.len() + data.len() > self.max_message_bytes {
            return Err(Violation::TooBig);
        }
        self.buffer.extend_from_slice(&data);
        if self.in_progress == Some(true) {
            self.check_utf8_so_far()?;
        }
        Ok(())
    }

    /// Fails as soon as the text so far cannot be the start of valid UTF-8; a character
    /// cut off at the end of a fragment is fine (the next fragment may complete it).
    fn check_utf8_so_far(&mut self) -> Result<(), Violation> {
        match std::str::from_utf8(&self.buffer[self.valid_utf8_up_to..]) {
            Ok(_) => {
                self.valid_utf8_up_to = self.buffer.len();
                Ok(())
            }
            Err(err) if err.error_len().is_none() => {
                self.valid_utf8_up_to += err.valid_up_to();
                Ok(())
            }
            Err(_) => Err(Violation::InvalidUtf8),
        }
    }

    fn no_fragment_open(&self) -> Result<(), Violation> {
        match self.in_progress {
            Some(_) => Err(Violation::Protocol(
                "new data frame while a fragmented message is open".into(),
            )),
            None => Ok(()),
        }
    }
}

fn violation_of(err: ProtocolError) -> Violation {
    match err {
        ProtocolError::Overflow => Violation::TooBig,
        // The FrameSizeGuard's verdict, carried through the decoder as an I/O error.
        ProtocolError::Io(io)
            if io.to_string() == actix_web::error::PayloadError::Overflow.to_string() =>
        {
            Violation::TooBig
        }
        // Framing the decoder rejects (e.g. reserved bits set) arrives as invalid data.
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Violation::Protocol(io.to_string())
        }
        // The decoder reports text that is not UTF-8 as an I/O error naming UTF-8.
        ProtocolError::Io(io) if io.to_string().to_ascii_lowercase().contains("utf-8") => {
            Violation::InvalidUtf8
        }
        ProtocolError::Io(io) => Violation::ConnectionLost(io.to_string()),
        other => Violation::Protocol(other.to_string()),
    }
}

/// Ends a connection for a [`Violation`]: failed at once for broken framing, closed
/// with a handshake for an oversize message, just stopped when the peer is gone.
pub fn close_for<A>(ctx: &mut WsContext<A>, incoming: &mut Reassembler, violation: &Violation)
where
    A: Actor<Context = WsContext<A>>,
{
    match violation {
        // RFC 6455 section 7.1.7, "Fail the WebSocket Connection": a peer that broke the
        // framing rules gets its close code, and TCP is closed at once.
        Violation::Protocol(_) | Violation::InvalidUtf8 => {
            ctx.close(Some(CloseReason {
                code: WireCloseCode::from(
                    violation.close_code().unwrap_or(close_code::PROTOCOL_ERROR),
                ),
                description: Some(violation.description()),
            }));
            actix::ActorContext::stop(ctx);
        }
        // A well-formed but unwanted message: the normal closing handshake.
        Violation::TooBig => close(ctx, incoming, close_code::TOO_BIG, violation.description()),
        Violation::ConnectionLost(_) => actix::ActorContext::stop(ctx),
    }
}

/// Close codes a peer may send (RFC 6455 section 7.4): the defined ones that are not
/// reserved for local use, and the registered and private ranges.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// The server is shutting down: close 1001, the same for every kind of connection.
pub fn close_going_away<A>(ctx: &mut WsContext<A>, incoming: &mut Reassembler)
where
    A: Actor<Context = WsContext<A>>,
{
    close(
        ctx,
        incoming,
        close_code::GOING_AWAY,
        "server shutting down",
    );
}

/// Starts the closing handshake: sends a close frame with `code` and a short
/// description, then waits (up to `CLOSE_TIMEOUT_MS`) for the client's close before the
/// actor stops and TCP is closed. Stopping at once would close TCP while the client may
/// still be sending, and the resulting reset can destroy the close frame in flight.
pub fn close<A>(
    ctx: &mut WsContext<A>,
    incoming: &mut Reassembler,
    code: u16,
    description: impl Into<String>,
) where
    A: Actor<Context = WsContext<A>>,
{
    use actix::{ActorContext, AsyncContext};
    if incoming.closing {
        return;
    }
    incoming.closing = true;
    ctx.close(Some(CloseReason {
        code: WireCloseCode::from(code),
        description: Some(description.into()),
    }));
    ctx.run_later(incoming.close_timeout, |_, ctx| ctx.stop());
}

/// When the client was last heard from, kept at heartbeat resolution: a frame only sets
/// a flag (no clock read on the per-frame path); the heartbeat turns the flag into a time.
/// A silent client is therefore dropped between `timeout` and `timeout + interval`.
#[derive(Debug)]
pub struct Liveness {
    last_heard: std::time::Instant,
    heard_since_tick: bool,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            last_heard: std::time::Instant::now(),
            heard_since_tick: false,
        }
    }
}

impl Liveness {
    /// Anything arrived from the client.
    pub fn heard(&mut self) {
        self.heard_since_tick = true;
    }

    /// Called by the heartbeat: how long the client has been silent.
    pub fn silent_for(&mut self) -> Duration {
        let now = std::time::Instant::now();
        if std::mem::take(&mut self.heard_since_tick) {
            self.last_heard = now;
        }
        now.saturating_duration_since(self.last_heard)
    }
}

// ---------------------------------------------------------------------------------------
// Socket access, for tearing down connections whose actor is jammed
// ---------------------------------------------------------------------------------------

/// The connection's raw socket and its two addresses, recorded when it is accepted.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
}

/// `HttpServer::on_connect` hook: turns off Nagle (a chat server sends small frames that
/// must not wait for an ACK) and records the socket for [`SocketCloser::for_request`].
pub fn on_connect(connection: &dyn std::any::Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(err) = stream.set_nodelay(true) {
            log::warn!("could not set TCP_NODELAY: {err}");
        }
        #[cfg(unix)]
        if let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) {
            use std::os::fd::AsRawFd;
            data.insert(ConnectionSocket {
                fd: stream.as_raw_fd(),
                local,
                peer,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = data;
}

/// A handle on a connection's socket, so the hub (or the watchdog) can reset it when the
/// actor serving it can no longer run: a client that stopped reading jams the writer,
/// which stops the actor's timers and mailbox too.
///
/// It holds the raw descriptor, not a duplicate, so a connection costs one descriptor,
/// not two. That is safe because (1) the actor calls [`SocketCloser::release`] when it
/// stops, and actix-http drops a connection's response body (the actor) before its I/O
/// object, so release happens before the descriptor is closed; release and
/// [`SocketCloser::force_close`] exclude each other through the mutex; and (2) as a second
/// guard, `force_close` first checks that the descriptor still has the local and peer
/// addresses recorded at accept time, so a reused descriptor is never touched.
#[derive(Debug)]
pub struct SocketCloser {
    socket: Mutex<Option<ConnectionSocket>>,
}

impl SocketCloser {
    /// The socket of the connection `req` arrived on, if it is known.
    pub fn for_request(req: &HttpRequest) -> Option<Self> {
        let recorded = *req.conn_data::<ConnectionSocket>()?;
        Some(Self {
            socket: Mutex::new(Some(recorded)),
        })
    }

    pub fn is_released(&self) -> bool {
        self.lock().is_none()
    }

    /// The connection ended normally: forget the descriptor before it is closed.
    pub fn release(&self) {
        self.lock().take();
    }

    /// Resets the connection: pending output is discarded and the peer gets an RST, so
    /// the writer that was stuck on it fails and the connection is dropped.
    pub fn force_close(&self) -> bool {
        let mut guard = self.lock();
        let Some(recorded) = guard.take() else {
            return false;
        };
        #[cfg(unix)]
        {
            use std::os::fd::BorrowedFd;
            // SAFETY: the descriptor is open: the connection has not released it (see the
            // type's docs), and we hold the lock that release needs.
            let fd = unsafe { BorrowedFd::borrow_raw(recorded.fd) };
            let socket = socket2::SockRef::from(&fd);
            let same_connection = socket.local_addr().ok().and_then(|a| a.as_socket())
                == Some(recorded.local)
                && socket.peer_addr().ok().and_then(|a| a.as_socket()) == Some(recorded.peer);
            if !same_connection {
                log::warn!("not resetting a socket that no longer is the connection's");
                return false;
            }
            // Linger 0 turns the close into a reset, freeing the unsent buffer at once.
            let _ = socket.set_linger(Some(std::time::Duration::ZERO));
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        drop(guard);
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ConnectionSocket>> {
        // A panic while holding this lock cannot leave the Option half-updated.
        self.socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> WsFrame {
        Ok(ws::Message::Continuation(Item::FirstText(
            Bytes::from_static(s.as_bytes()),
        )))
    }

    #[test]
    fn joins_fragments_into_one_message() {
        let mut reassembler = Reassembler::new(100);
        assert_eq!(reassembler.push(text("hel")), Ok(None));
        let ping = Ok(ws::Message::Ping(Bytes::from_static(b"p")));
        assert_eq!(
            reassembler.push(ping),
            Ok(Some(Incoming::Ping(Bytes::from_static(b"p"))))
        );
        let cont = Ok(ws::Message::Continuation(Item::Continue(
            Bytes::from_static(b"lo "),
        )));
        assert_eq!(reassembler.push(cont), Ok(None));
        let last = Ok(ws::Message::Continuation(Item::Last(Bytes::from_static(
            b"you",
        ))));
        assert_eq!(
            reassembler.push(last),
            Ok(Some(Incoming::Text(ByteString::from_static("hello you"))))
        );
    }

    #[test]
    fn enforces_the_limit_across_fragments() {
        let mut reassembler = Reassembler::new(4);
        assert_eq!(reassembler.push(text("abc")), Ok(None));
        let last = Ok(ws::Message::Continuation(Item::Last(Bytes::from_static(
            b"de",
        ))));
        assert_eq!(reassembler.push(last), Err(Violation::TooBig));
    }

    #[test]
    fn rejects_interleaved_and_orphan_fragments() {
        let mut reassembler = Reassembler::new(100);
        let orphan = Ok(ws::Message::Continuation(Item::Last(Bytes::new())));
        assert!(matches!(
            reassembler.push(orphan),
            Err(Violation::Protocol(_))
        ));
        reassembler.push(text("a")).unwrap();
        let interleaved = Ok(ws::Message::Text(ByteString::from_static("b")));
        assert!(matches!(
            reassembler.push(interleaved),
            Err(Violation::Protocol(_))
        ));
    }

    #[test]
    fn after_our_close_only_the_clients_close_counts() {
        let mut reassembler = Reassembler::new(100);
        reassembler.closing = true;
        let data = Ok(ws::Message::Text(ByteString::from_static("late")));
        assert_eq!(reassembler.push(data), Ok(None));
        let close = Ok(ws::Message::Close(None));
        assert_eq!(
            reassembler.push(close),
            Ok(Some(Incoming::CloseAcknowledged))
        );
    }

    #[test]
    fn the_size_guard_follows_frames_and_stops_at_an_oversize_header() {
        let mut guard = FrameSizeGuard::new((), 200);
        // A masked 100-byte frame, split anywhere, then a 126-length-form 150-byte frame.
        let mut bytes = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
        bytes.extend(std::iter::repeat_n(b'a', 100));
        bytes.extend([0x82, 0x80 | 126, 0, 150, 1, 2, 3, 4]);
        bytes.extend(std::iter::repeat_n(b'b', 150));
        for piece in bytes.chunks(7) {
            assert!(guard.scan(piece));
        }
        assert_eq!(guard.payload_left, 0);
        // Whole chunks (headers read in place) and every split point agree.
        for size in [1, 2, 3, 13, 14, 15, 64, bytes.len()] {
            let mut guard = FrameSizeGuard::new((), 200);
            for piece in bytes.chunks(size) {
                assert!(guard.scan(piece), "chunks of {size}");
            }
            assert_eq!(
                (guard.payload_left, guard.header_len),
                (0, 0),
                "chunks of {size}"
            );
        }
        for split in 0..bytes.len() {
            let mut guard = FrameSizeGuard::new((), 200);
            assert!(guard.scan(&bytes[..split]) && guard.scan(&bytes[split..]));
            assert_eq!(
                (guard.payload_left, guard.header_len),
                (0, 0),
                "split at {split}"
            );
            // A third frame, over the limit, is refused wherever it starts.
            let mut over = vec![0x81, 0x80 | 126, 0, 201, 1, 2, 3, 4];
            over.extend(std::iter::repeat_n(b'c', 20));
            assert!(!guard.scan(&over), "split at {split}");
        }
        // A header declaring 2^63 - 1 bytes is refused before any payload.
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend(0x7fff_ffff_ffff_ffffu64.to_be_bytes());
        assert!(!guard.scan(&huge));
    }

    #[test]
    fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
        let mut reassembler = Reassembler::new(100);
        reassembler.push(text("ok")).unwrap();
        let bad = Ok(ws::Message::Continuation(Item::Continue(
            Bytes::from_static(&[0xff]),
        )));
        assert_eq!(reassembler.push(bad), Err(Violation::InvalidUtf8));
    }

    #[test]
    fn a_character_split_across_fragments_is_fine() {
        let mut reassembler = Reassembler::new(100);
        let snowman = "\u{2603}".as_bytes();
        let first = Ok(ws::Message::Continuation(Item::FirstText(
            Bytes::copy_from_slice(&snowman[..1]),
        )));
        assert_eq!(reassembler.push(first), Ok(None));
        let last = Ok(ws::Message::Continuation(Item::Last(
            Bytes::copy_from_slice(&snowman[1..]),
        )));
        assert_eq!(
            reassembler.push(last),
            Ok(Some(Incoming::Text(ByteString::from_static("\u{2603}"))))
        );
    }

    #[test]
    fn invalid_utf8_across_fragments_is_1007() {
        let mut reassembler = Reassembler::new(100);
        let first = Ok(ws::Message::Continuation(Item::FirstText(
            Bytes::from_static(&[0xce]),
        )));
        reassembler.push(first).unwrap();
        let last = Ok(ws::Message::Continuation(Item::Last(Bytes::from_static(
            &[0xff],
        ))));
        assert_eq!(reassembler.push(last), Err(Violation::InvalidUtf8));
    }
}
