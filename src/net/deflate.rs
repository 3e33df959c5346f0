//! A raw DEFLATE (RFC 1951, no zlib header) layer over a byte stream, both directions:
//! IMAP COMPRESS=DEFLATE (RFC 4978). It sits where STARTTLS puts TLS, in
//! [`super::stream::Stream`], so protocol code never sees compressed bytes; over TLS it is
//! inside it (RFC 4978 §3: compress first, then encrypt).
//!
//! Output is deflated as it is written and pushed out with a *sync flush*
//! (`Z_SYNC_FLUSH`, RFC 4978 §4) whenever the connection flushes, so every response
//! reaches the client at once, whole, without ending the stream. Input is inflated as it
//! is read.
//!
//! Memory: the inflater lives as long as compression does (the client's DEFLATE stream
//! may reach 32 KiB back). The deflater is most of the state (about 315 KB with
//! miniz_oxide); once the connection has written nothing for [`SHED_AFTER`] and all it
//! wrote is flushed, it is dropped, and a new one is made for the next response. That is
//! still valid DEFLATE: a sync flush leaves the stream byte-aligned and not final, and a
//! new compressor only starts new blocks that do not refer back to older output. The byte
//! buffers are emptied and let go once used, like [`super::conn::Conn`]'s. See
//! docs/decisions.md ("COMPRESS=DEFLATE and UNAUTHENTICATE") for the measured cost.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use smol::Timer;
use smol::io::{AsyncRead, AsyncWrite};

/// Compression level of our output. Level 1 (the fastest) already finds the repetition
/// in mail text and IMAP responses; higher levels cost CPU on small boards for a few
/// per cent (docs/decisions.md).
pub const LEVEL: u32 = 1;

/// How long a connection writes nothing before its deflater is dropped.
pub const SHED_AFTER: Duration = Duration::from_secs(5);

/// Size of one raw read from the inner stream.
const READ_CHUNK: usize = 8 * 1024;

/// Compressed output held before a write drains it to the inner stream first: bounds the
/// buffer when one large reply is written in many pieces without a flush.
const HIGH_WATER: usize = 64 * 1024;

/// The most compressed output the deflater holds back before a flush (miniz_oxide's
/// code and output buffers, with room to spare).
const MAX_HELD: usize = 192 * 1024;

/// Capacity a byte buffer keeps once emptied; a larger one is freed.
const KEEP: usize = 16 * 1024;

fn release_if_large(v: &mut Vec<u8>) {
    if v.capacity() > KEEP {
        *v = Vec::new();
    }
}

fn bad_data(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

/// `inner` with DEFLATE both ways.
pub struct Deflate<S> {
    inner: S,
    /// `None` while idle ([`SHED_AFTER`]); made again by the next write.
    deflater: Option<Compress>,
    /// Runs while a read waits and the deflater is idle: when it fires, the deflater goes.
    shed: Option<Timer>,
    /// [`SHED_AFTER`] (shorter in tests).
    shed_after: Duration,
    inflater: Decompress,
    /// Compressed bytes read from `inner` and not yet inflated: `input[in_pos..]`.
    input: Vec<u8>,
    in_pos: usize,
    /// Compressed bytes not yet written to `inner`: `output[out_pos..]`.
    output: Vec<u8>,
    out_pos: usize,
    /// Bytes were deflated since the last sync flush.
    unflushed: bool,
    /// The deflater's `total_in` at the end of the last sync flush.
    flushed_in: u64,
    /// The client ended its DEFLATE stream (a final block): nothing more can be read.
    ended: bool,
    /// The last inflate filled the caller's buffer, so more output may be waiting.
    more_out: bool,
}

impl<S> Deflate<S> {
    /// Starts compressing over `inner`; `early` is input that already arrived after the
    /// command that started compression (compressed by the client, RFC 4978 §3).
    pub fn new(inner: S, early: &[u8]) -> Deflate<S> {
        Deflate {
            inner,
            deflater: None,
            shed: None,
            shed_after: SHED_AFTER,
            inflater: Decompress::new(false),
            input: early.to_vec(),
            in_pos: 0,
            output: Vec::new(),
            out_pos: 0,
            unflushed: false,
            flushed_in: 0,
            ended: false,
            more_out: false,
        }
    }

    /// The stream under the compression layer. Compressed output not yet written and
    /// compressed input not yet inflated are dropped: call `flush` first.
    pub fn into_inner(self) -> S {
        self.inner
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Whether the deflater is there (tests: it is dropped when idle).
    pub fn has_deflater(&self) -> bool {
        self.deflater.is_some()
    }

    /// Deflates `data` (all of it) onto `output`, with `flush` at the end.
    fn deflate(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        self.shed = None;
        let deflater = self
            .deflater
            .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false));
        let sync = matches!(flush, FlushCompress::Sync);
        let start = self.output.len();
        let mut rest = data;
        loop {
            let room = if sync {
                // Room for what the deflater may still hold, as stored blocks at worst
                // (~5 bytes per 16 KiB), and the marker, so that the flush fits in one
                // call: miniz_oxide does not finish a sync flush that ran out of room on
                // the next call, only on a call after that (the marker check below). It
                // holds at most its buffers' worth (64 KiB of codes, ~85 KB of output),
                // however much was written since the last flush.
                let held = usize::try_from(deflater.total_in().saturating_sub(self.flushed_in))
                    .unwrap_or(usize::MAX)
                    .min(MAX_HELD);
                held + held / 8 + 256
            } else {
                rest.len() / 2 + 64
            };
            self.output.reserve(room);
            let (before_in, before_out) = (deflater.total_in(), deflater.total_out());
            deflater
                .compress_vec(rest, &mut self.output, flush)
                .map_err(bad_data)?;
            let used = usize::try_from(deflater.total_in().saturating_sub(before_in))
                .unwrap_or(rest.len());
            rest = rest.get(used..).unwrap_or(&[]);
            // Done when the input is taken, the output did not fill up (a full output
            // may hold back part of the flush), and a sync flush ends with its marker,
            // the empty stored block `00 00 FF FF` (RFC 1951 §3.2.4): the client can
            // only inflate the reply whole once that has arrived (RFC 4978 §4).
            let flushed = !sync
                || self
                    .output
                    .get(start..)
                    .is_some_and(|o| o.ends_with(&[0, 0, 0xff, 0xff]));
            if rest.is_empty() && self.output.len() < self.output.capacity() && flushed {
                if sync {
                    self.flushed_in = deflater.total_in();
                }
                return Ok(());
            }
            if used == 0 && deflater.total_out() == before_out {
                // Not a state flate2 leaves a stream in; better an error than a loop.
                return Err(bad_data("no progress"));
            }
        }
    }
}

impl<S> Deflate<S> {
    /// A read is waiting: once nothing has been written for [`SHED_AFTER`] and all of it
    /// is flushed and sent, drop the deflater. The timer wakes the task, which polls the
    /// read again and gets here.
    fn shed_when_idle(&mut self, cx: &mut Context<'_>) {
        if self.deflater.is_none() || self.unflushed || self.out_pos < self.output.len() {
            return;
        }
        let timer = self
            .shed
            .get_or_insert_with(|| Timer::after(self.shed_after));
        if Pin::new(timer).poll(cx).is_ready() {
            self.deflater = None;
            // The next one counts its input from 0.
            self.flushed_in = 0;
            self.shed = None;
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes `output` to `inner` until it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.output.len() {
            let pending = self.output.get(self.out_pos..).unwrap_or(&[]);
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos = self.out_pos.saturating_add(n);
        }
        self.output.clear();
        self.out_pos = 0;
        release_if_large(&mut self.output);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if this.ended {
                return Poll::Ready(Ok(0));
            }
            // The inflater may hold output from input it already took (the last call
            // filled `buf`): ask for it even when no input is left.
            if this.in_pos < this.input.len() || this.more_out {
                let pending = this.input.get(this.in_pos..).unwrap_or(&[]);
                let (before_in, before_out) = (this.inflater.total_in(), this.inflater.total_out());
                let status = this
                    .inflater
                    .decompress(pending, buf, FlushDecompress::None)
                    .map_err(bad_data)?;
                let used = usize::try_from(this.inflater.total_in().saturating_sub(before_in))
                    .unwrap_or(pending.len());
                let made = usize::try_from(this.inflater.total_out().saturating_sub(before_out))
                    .unwrap_or(0);
                this.more_out = made == buf.len();
                this.in_pos = this.in_pos.saturating_add(used);
                if this.in_pos >= this.input.len() {
                    this.input.clear();
                    this.in_pos = 0;
                    release_if_large(&mut this.input);
                }
                if matches!(status, Status::StreamEnd) {
                    this.ended = true;
                }
                if made > 0 {
                    return Poll::Ready(Ok(made));
                }
                if used > 0 {
                    // A block with no data (a sync flush marker): go on.
                    continue;
                }
            }
            // Everything buffered is inflated (or waits for more bits): read more.
            let mut chunk = [0u8; READ_CHUNK];
            let n = match Pin::new(&mut this.inner).poll_read(cx, &mut chunk) {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    this.shed_when_idle(cx);
                    return Poll::Pending;
                }
            };
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            if this.in_pos > 0 {
                this.input.drain(..this.in_pos);
                this.in_pos = 0;
            }
            this.input.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.output.len().saturating_sub(this.out_pos) >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.deflate(data, FlushCompress::None)?;
        this.unflushed = true;
        Poll::Ready(Ok(data.len()))
    }

    /// RFC 4978 §4: a sync flush, so what was written so far can be inflated whole by
    /// the client now, then the inner stream's flush.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            this.deflate(&[], FlushCompress::Sync)?;
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut *this).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::{AsyncReadExt, AsyncWriteExt, Cursor};

    fn inflate_all(bytes: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(bytes.len() * 20 + 1024);
        d.decompress_vec(bytes, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    /// Each flush makes everything written so far readable, without ending the stream.
    #[test]
    fn flush_makes_each_reply_whole() {
        let mut s = Deflate::new(Cursor::new(Vec::new()), &[]);
        smol::block_on(async {
            s.write_all(b"* OK first\r\n").await.unwrap();
            s.flush().await.unwrap();
            let first = s.inner().get_ref().len();
            assert_eq!(inflate_all(s.inner().get_ref()), b"* OK first\r\n");
            s.write_all(b"a OK second\r\n").await.unwrap();
            s.flush().await.unwrap();
            assert!(s.inner().get_ref().len() > first);
            assert_eq!(
                inflate_all(s.inner().get_ref()),
                b"* OK first\r\na OK second\r\n"
            );
            // A flush with nothing new writes nothing.
            let len = s.inner().get_ref().len();
            s.flush().await.unwrap();
            assert_eq!(s.inner().get_ref().len(), len);
        });
    }

    /// Large replies that compress poorly (base64, as attachments are) arrive whole at
    /// their flush, also when the flush's output is larger than the room the writes
    /// before it left. (The end of such a reply once waited for the next command.)
    #[test]
    fn a_large_reply_is_whole_at_its_flush() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u32 = 12345;
        let mut body = Vec::new();
        for i in 0..64_000usize {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            body.push(alphabet[(x >> 16) as usize % 64]);
            if i % 76 == 75 {
                body.extend_from_slice(b"\r\n");
            }
        }
        for len in (20_000..64_000).step_by(1_000) {
            let part = body.get(..len).unwrap();
            let mut s = Deflate::new(Cursor::new(Vec::new()), &[]);
            smol::block_on(async {
                s.write_all(b"* OK first\r\n").await.unwrap();
                s.flush().await.unwrap();
                s.write_all(part).await.unwrap();
                s.flush().await.unwrap();
            });
            let mut want = b"* OK first\r\n".to_vec();
            want.extend_from_slice(part);
            assert!(inflate_all(s.inner().get_ref()) == want, "{len} bytes");
            assert!(s.inner().get_ref().ends_with(&[0, 0, 0xff, 0xff]));
        }
    }

    /// Input is inflated, including bytes that arrived with the command before the
    /// layer existed, and a large body in one piece.
    #[test]
    fn reads_inflate_early_and_later_input() {
        let body: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        let mut c = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(body.len() + 4096);
        c.compress_vec(b"a NOOP\r\n", &mut wire, FlushCompress::Sync)
            .unwrap();
        // The first 3 bytes arrived together with the command that started compression.
        let all = wire.split_off(3);
        let (early, mut all) = (wire, all);
        all.reserve(body.len() + 4096);
        c.compress_vec(&body, &mut all, FlushCompress::Sync)
            .unwrap();
        let mut s = Deflate::new(Cursor::new(all), &early);
        let got = smol::block_on(async {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        assert_eq!(&got[..8], b"a NOOP\r\n");
        assert_eq!(&got[8..], &body[..]);
    }

    /// An idle deflater is dropped while a read waits, and the next write makes a new
    /// one whose output continues the same stream for the client.
    #[test]
    fn an_idle_deflater_is_dropped_and_made_again() {
        smol::block_on(async {
            let (a, mut b) = smol::net::unix::UnixStream::pair().unwrap();
            let mut s = Deflate::new(a, &[]);
            s.shed_after = Duration::from_millis(50);
            s.write_all(b"* OK one\r\n").await.unwrap();
            s.flush().await.unwrap();
            assert!(s.has_deflater());
            let mut buf = [0u8; 16];
            let read = smol::future::or(async { Some(s.read(&mut buf).await) }, async {
                Timer::after(Duration::from_millis(500)).await;
                None
            })
            .await;
            assert!(read.is_none(), "nothing was sent");
            assert!(!s.has_deflater());
            s.write_all(b"* OK two\r\n").await.unwrap();
            s.flush().await.unwrap();
            assert!(s.has_deflater());
            let mut wire = Vec::new();
            let mut chunk = [0u8; 256];
            while inflate_all(&wire) != b"* OK one\r\n* OK two\r\n" {
                let n = b.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                wire.extend_from_slice(&chunk[..n]);
            }
        });
    }

    /// Corrupt input is an error, not a panic.
    #[test]
    fn corrupt_input_is_an_error() {
        let mut s = Deflate::new(Cursor::new(vec![0xff; 64]), &[]);
        let r = smol::block_on(async {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await
        });
        assert!(r.is_err());
    }
}
