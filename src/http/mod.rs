//! The HTTP listener (docs/http.md): client autoconfiguration, `/metrics`, `/healthz`.
//!
//! A deliberately small HTTP/1.1 server (RFC 9112) over the shared accept loop (limits,
//! implicit TLS for `http.tls_listen`): `httparse` parses the request head, this module
//! reads at most `http.max_request` octets within `http.timeout_secs`, answers one
//! request and closes the connection (`Connection: close`, RFC 9112 §9.6). No chunked
//! request bodies (411), no pipelining, no keep-alive: every client this serves
//! (Thunderbird, Outlook, iOS, Prometheus) copes with that.

pub mod clients;
mod handlers;

use std::time::{Duration, Instant};

use smol::Timer;

use crate::net::Context;
use crate::net::accept::{Accepted, Protocol};
use crate::net::conn::Conn;
use crate::net::limits::{LimitError, Service};
use crate::net::stream::{Peer, Stream};

/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 32;

/// An HTTP method this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string (after `?`), undecoded.
    pub query: String,
    pub body: Vec<u8>,
}

/// HTTP status codes this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    ContentTooLarge,
    RequestTimeout,
    ServiceUnavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::LengthRequired => "411 Length Required",
            Status::ContentTooLarge => "413 Content Too Large",
            Status::RequestTimeout => "408 Request Timeout",
            Status::ServiceUnavailable => "503 Service Unavailable",
        }
    }
}

/// One response; always closes the connection.
#[derive(Debug)]
pub struct Response {
    pub status: Status,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// For downloads (`.mobileconfig`): the suggested file name.
    pub attachment: Option<&'static str>,
}

impl Response {
    pub fn text(status: Status, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            attachment: None,
        }
    }

    fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
            self.status.line(),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if let Some(name) = self.attachment {
            out.extend_from_slice(
                format!("Content-Disposition: attachment; filename=\"{name}\"\r\n").as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// What reading a request gave.
#[derive(Debug)]
enum Read {
    Request(Request),
    /// Answer this and close.
    Refuse(Status, &'static str),
    /// The peer went away or the server is stopping: close without a word.
    Gone,
}

/// A parsed request head: the request (body not yet read), the head's length and the
/// body's declared length.
type Head = (Request, usize, usize);

/// Parses the request head in `buf`: `Ok(None)` while incomplete, else the request
/// (without its body) and the head's length and the body's declared length.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, (Status, &'static str)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err((Status::ContentTooLarge, "too many header fields"));
        }
        Err(_) => return Err((Status::BadRequest, "malformed request")),
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut body_len = 0usize;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err((
                Status::LengthRequired,
                "chunked request bodies are not accepted",
            ));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or((Status::BadRequest, "bad Content-Length"))?;
        }
    }
    Ok(Some((
        Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            body: Vec::new(),
        },
        head_len,
        body_len,
    )))
}

/// Reads one request: head and body within `max` octets, before `deadline`.
async fn read_request(conn: &mut Conn<Stream>, max: usize, deadline: Instant) -> Read {
    loop {
        match parse_head(conn.buffered()) {
            Err((status, why)) => return Read::Refuse(status, why),
            Ok(Some((mut req, head_len, body_len))) => {
                if head_len.saturating_add(body_len) > max {
                    return Read::Refuse(Status::ContentTooLarge, "request too large");
                }
                while conn.buffered().len() < head_len + body_len {
                    match conn.fill_or(Timer::at(deadline)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => return Read::Gone,
                        Err(_) => return Read::Refuse(Status::RequestTimeout, "too slow"),
                    }
                }
                req.body = conn
                    .buffered()
                    .get(head_len..head_len + body_len)
                    .unwrap_or(&[])
                    .to_vec();
                return Read::Request(req);
            }
            Ok(None) => {
                if conn.buffered().len() >= max {
                    return Read::Refuse(Status::ContentTooLarge, "request head too large");
                }
                match conn.fill_or(Timer::at(deadline)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Read::Gone,
                    Err(_) => return Read::Refuse(Status::RequestTimeout, "too slow"),
                }
            }
        }
    }
}

/// Serves one connection: one request, one response.
async fn handle(ctx: &Context, stream: Stream, peer: Peer) {
    let timeout = Duration::from_secs(ctx.config.http.timeout_secs);
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::new(stream, timeout, ctx.shutdown.clone());
    let (response, head_only, what) =
        match read_request(&mut conn, ctx.config.http.max_request, deadline).await {
            Read::Gone => return,
            Read::Refuse(status, why) => (Response::text(status, format!("{why}\n")), false, None),
            Read::Request(req) => {
                let head_only = req.method == Method::Head;
                let what = format!("{:?} {}", req.method, req.path);
                (handlers::route(ctx, req).await, head_only, Some(what))
            }
        };
    log::debug!(
        "http: {:?} {} -> {}",
        peer.ip,
        what.as_deref().unwrap_or("-"),
        response.status.line()
    );
    conn.queue(&response.encode(head_only));
    let _ = smol::future::or(async { conn.flush().await.map(|_| ()) }, async {
        Timer::at(deadline + timeout).await;
        Ok(())
    })
    .await;
}

/// HTTP on TCP (`http.listen` plain, `http.tls_listen` with the certificate of the other
/// TLS listeners; both off by default).
#[derive(Debug, Clone, Copy)]
pub struct Http;

impl Protocol for Http {
    const SERVICE: Service = Service::Http;

    /// Over a connection limit: 503 and close.
    fn refusal(_ctx: &Context, why: LimitError) -> Vec<u8> {
        Response::text(Status::ServiceUnavailable, format!("{why}\n")).encode(false)
    }

    async fn serve(self, c: Accepted) {
        handle(&c.ctx, c.stream, c.peer).await;
        drop(c.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_parsed_with_query_and_length() {
        let r = parse_head(b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(r.0.method, Method::Post);
        assert_eq!(r.0.path, "/a/b");
        assert_eq!(r.0.query, "x=1");
        assert_eq!((r.1, r.2), (54, 5));
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
    }

    #[test]
    fn head_refusals() {
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .0,
            Status::LengthRequired
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .0,
            Status::BadRequest
        );
        assert_eq!(
            parse_head(b"\x01\x02 nonsense\r\n\r\n").unwrap_err().0,
            Status::BadRequest
        );
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_head(req.as_bytes()).unwrap_err().0,
            Status::ContentTooLarge
        );
    }
}
