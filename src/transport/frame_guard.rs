//! The frame-size guard: watches the client's raw bytes frame header by frame header and
//! fails the stream at the first header over the limit. It does not decode frames (the
//! actix decoder does) or limit whole messages (the reassembler does).

use bytes::Bytes;

/// Watches the client's raw bytes frame by frame and fails the stream as soon as a frame
/// header declares a payload over the limit. The actix decoder checks the size only
/// once the whole frame is buffered, which lets a client make the server buffer
/// whatever it declares. Its verdict is [`PayloadError::Overflow`], which reaches the actor
/// as an I/O error carrying that error's text (see `violation`).
///
/// [`PayloadError::Overflow`]: actix_web::error::PayloadError::Overflow
pub(super) struct FrameSizeGuard<S> {
    inner: S,
    max_payload: u64,
    /// Bytes of the frame header read so far (at most 14: 2 + 8 length + 4 mask).
    header: [u8; 14],
    header_len: usize,
    /// Payload bytes of the current frame still to pass through.
    payload_left: u64,
    /// A header was over the limit: the stream has ended.
    failed: bool,
}

impl<S> FrameSizeGuard<S> {
    pub(super) fn new(inner: S, max_payload: u64) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
