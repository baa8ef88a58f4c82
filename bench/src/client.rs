//! Connections to the server under test: WebSocket clients with the read and write
//! settings the measurements rely on, the URLs each mode connects to, and a minimal
//! HTTP GET for the JSON API (the load generator needs no HTTP client library for one
//! request).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use tokio_tungstenite::{
    tungstenite::{protocol::WebSocketConfig, Message},
    MaybeTlsStream, WebSocketStream,
};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connect (TCP plus upgrade) may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply that must come may take before it counts as lost.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close handshake the client started may take.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server under test: `scheme://host:port`, without a path.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    authority: String,
}

impl Target {
    /// Accepts `ws://host:port`, `http://host:port`, with or without a path (ignored).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = ["ws://", "http://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| format!("--url must start with ws:// or http://, got {url:?}"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(format!("--url has no host: {url:?}"));
        }
        Ok(Self {
            authority: authority.to_string(),
        })
    }

    /// A WebSocket URL for `path_and_query` (which starts with `/`).
    pub fn ws(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.authority)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }

    /// `GET path`; returns the status and the body. One request per connection
    /// (`Connection: close`), chunked bodies decoded.
    pub async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let exchange = async {
            let mut stream = TcpStream::connect(&self.authority)
                .await
                .map_err(|err| format!("GET {}: {err}", self.http(path)))?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n\r\n",
                self.authority
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|err| format!("GET {}: {err}", self.http(path)))?;
            let mut response = Vec::new();
            stream
                .read_to_end(&mut response)
                .await
                .map_err(|err| format!("GET {}: {err}", self.http(path)))?;
            parse_http_response(&response).map_err(|err| format!("GET {}: {err}", self.http(path)))
        };
        timeout(REPLY_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {}: no answer in {REPLY_TIMEOUT:?}", self.http(path)))?
    }
}

/// The client settings every mode uses. tungstenite 0.24 reads through a fixed 4 KiB
/// chunk allocated once per connection (later versions zero-fill a configurable
/// `read_buffer_size`, 128 KiB by default, before every read; there the load generator
/// would want it at 4 KiB). Writes are buffered until `flush`, so a batch of messages
/// goes out in one system call.
pub fn config() -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(16 << 20),
        max_frame_size: Some(16 << 20),
        ..WebSocketConfig::default()
    }
}

/// Opens a WebSocket with Nagle off (the load generator's small frames must not wait).
pub async fn connect(url: &str) -> Result<Ws, String> {
    match timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config()), true),
    )
    .await
    {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(err)) => Err(format!("connect {url}: {err}")),
        Err(_) => Err(format!("connect {url}: no upgrade in {CONNECT_TIMEOUT:?}")),
    }
}

/// The next text message, skipping pings and pongs; anything else is an error.
pub async fn next_text(ws: &mut Ws, within: Duration) -> Result<String, String> {
    loop {
        match timeout(within, ws.next()).await {
            Err(_) => return Err(format!("nothing arrived in {within:?}")),
            Ok(item) => match classify(item)? {
                Some(text) => return Ok(text),
                None => continue,
            },
        }
    }
}

/// Sorts one item of a WebSocket stream: `Ok(Some(text))`, `Ok(None)` for a control
/// frame to ignore, `Err` for anything that means the connection did not behave.
pub fn classify(
    item: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Option<String>, String> {
    match item {
        Some(Ok(Message::Text(text))) => Ok(Some(text)),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(None),
        Some(Ok(Message::Binary(data))) => {
            Err(format!("unexpected binary message of {} bytes", data.len()))
        }
        Some(Ok(Message::Close(frame))) => Err(match frame {
            Some(frame) => format!("closed by the server: {} {:?}", frame.code, frame.reason),
            None => "closed by the server without a code".into(),
        }),
        Some(Err(err)) => Err(format!("connection dropped: {err}")),
        None => Err("connection dropped: the stream ended".into()),
    }
}

/// Closes from the client side and waits for the server's close; an error if the
/// server does not answer it (or sends anything but control frames meanwhile when
/// `strict`).
pub async fn close(mut ws: Ws, strict: bool) -> Result<(), String> {
    if let Err(err) = ws.close(None).await {
        return Err(format!("sending close: {err}"));
    }
    let answered = async {
        loop {
            match ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(Message::Text(text))) if strict => {
                    return Err(format!("a message after our close: {}", shorten(&text)))
                }
                Some(Ok(_)) => continue,
                // A reset after the close frames crossed is the server hanging up first.
                Some(Err(_)) => return Ok(()),
            }
        }
    };
    match timeout(CLOSE_TIMEOUT, answered).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the server did not answer our close in {CLOSE_TIMEOUT:?}"
        )),
    }
}

/// Sends one text message and flushes it.
pub async fn send_text(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::Text(text))
        .await
        .map_err(|err| format!("sending: {err}"))
}

/// At most 160 characters of a frame, for error messages.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(160) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

fn parse_http_response(raw: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("a response without a header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("a response without a status: {}", shorten(head)))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        decode_chunked(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn decode_chunked(mut body: &str) -> Result<String, String> {
    let mut decoded = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").ok_or("a cut-off chunked body")?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("a bad chunk size {size_line:?}"))?;
        if size == 0 {
            return Ok(decoded);
        }
        let chunk = rest.get(..size).ok_or("a cut-off chunk")?;
        decoded.push_str(chunk);
        body = rest.get(size + 2..).ok_or("a cut-off chunk end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keeps_only_the_authority() {
        let target = Target::parse("ws://127.0.0.1:8080/ws?name=x").unwrap();
        assert_eq!(target.ws("/echo"), "ws://127.0.0.1:8080/echo");
        assert_eq!(target.http("/api/rooms"), "http://127.0.0.1:8080/api/rooms");
        assert!(Target::parse("127.0.0.1:8080").is_err());
    }

    #[test]
    fn http_bodies_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_http_response(plain).unwrap(), (200, "{}".into()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_http_response(chunked).unwrap(),
            (200, "{\"a\":1}".into())
        );
    }
}
