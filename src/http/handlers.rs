//! What each path answers (DESIGN.md "HTTP paths").

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::clients::{MailSettings, autodiscover_address};
use super::{Method, Request, Response, Status};
use crate::metrics::{self, Gauges};
use crate::net::Context;

/// HTTP-01 challenge paths (RFC 8555 §8.3), followed by the token.
const ACME_CHALLENGE: &str = "/.well-known/acme-challenge/";

/// Store sizes are read at most this often; scrapes in between reuse the last figures.
const STORE_GAUGES_EVERY: Duration = Duration::from_secs(30);

/// The last store figures (live, file, free) and when they were read.
static STORE_GAUGES: Mutex<Option<(Instant, [u64; 3])>> = Mutex::new(None);

fn settings(ctx: &Context) -> MailSettings {
    MailSettings::new(&ctx.config, metrics::bound_port)
}

fn xml(body: String) -> Response {
    Response {
        status: Status::Ok,
        content_type: "application/xml; charset=utf-8",
        body: body.into_bytes(),
        attachment: None,
    }
}

/// One decoded query parameter (`application/x-www-form-urlencoded`).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers one request.
pub async fn route(ctx: &Context, req: Request) -> Response {
    let get = matches!(req.method, Method::Get | Method::Head);
    match req.path.as_str() {
        // Thunderbird: https://autoconfig.<domain>/mail/config-v1.1.xml and the
        // well-known path on the domain itself.
        "/mail/config-v1.1.xml" | "/.well-known/autoconfig/mail/config-v1.1.xml" if get => {
            xml(settings(ctx).autoconfig())
        }
        // Outlook's POX Autodiscover: POST with the address in the body. Some clients
        // capitalise the path.
        p if p.eq_ignore_ascii_case("/autodiscover/autodiscover.xml") => {
            if req.method != Method::Post {
                return Response::text(Status::MethodNotAllowed, "POST an Autodiscover request\n");
            }
            let body = String::from_utf8_lossy(&req.body);
            let s = settings(ctx);
            match autodiscover_address(&body).and_then(|a| s.address(&a)) {
                Some(a) => xml(s.autodiscover(&a)),
                None => Response::text(Status::NotFound, "no such address here\n"),
            }
        }
        "/profile.mobileconfig" if get => {
            let s = settings(ctx);
            let profile = query_param(&req.query, "address")
                .and_then(|a| s.address(&a))
                .and_then(|a| s.mobileconfig(&a));
            match profile {
                Some(p) => Response {
                    status: Status::Ok,
                    content_type: "application/x-apple-aspen-config",
                    body: p.into_bytes(),
                    attachment: Some("mail.mobileconfig"),
                },
                None => Response::text(
                    Status::NotFound,
                    "give ?address= with an address of this server's domains\n",
                ),
            }
        }
        "/metrics" if get => {
            let gauges = gauges(ctx).await;
            Response {
                status: Status::Ok,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics::render(&gauges).into_bytes(),
                attachment: None,
            }
        }
        "/healthz" if get => healthz(ctx).await,
        // RFC 8555 §8.3: the key authorization for the token, while its order runs.
        p if get && p.starts_with(ACME_CHALLENGE) => {
            let token = p.get(ACME_CHALLENGE.len()..).unwrap_or("");
            match ctx.acme.as_ref().and_then(|a| a.http01(token)) {
                Some(key_auth) => Response {
                    status: Status::Ok,
                    content_type: "application/octet-stream",
                    body: key_auth.into_bytes(),
                    attachment: None,
                },
                None => Response::text(Status::NotFound, "no such challenge\n"),
            }
        }
        "/mail/config-v1.1.xml"
        | "/.well-known/autoconfig/mail/config-v1.1.xml"
        | "/profile.mobileconfig"
        | "/metrics"
        | "/healthz" => Response::text(Status::MethodNotAllowed, "use GET\n"),
        _ => Response::text(Status::NotFound, "not found\n"),
    }
}

/// The store figures, read through the store at most every [`STORE_GAUGES_EVERY`].
async fn store_gauges(ctx: &Context) -> [u64; 3] {
    let cached = match STORE_GAUGES.lock() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    };
    if let Some((at, v)) = cached
        && at.elapsed() < STORE_GAUGES_EVERY
    {
        return v;
    }
    let v = match ctx.store().stats(None).await {
        Ok(s) => {
            let live: u64 = s.tables.iter().map(|t| t.1).sum();
            [live, s.file_bytes, s.free_bytes]
        }
        Err(e) => {
            log::warn!("metrics: cannot read store figures: {e}");
            [0, ctx.store().file_size(), 0]
        }
    };
    match STORE_GAUGES.lock() {
        Ok(mut g) => *g = Some((Instant::now(), v)),
        Err(p) => *p.into_inner() = Some((Instant::now(), v)),
    }
    v
}

async fn gauges(ctx: &Context) -> Gauges {
    let [store_live, store_file, store_free] = store_gauges(ctx).await;
    Gauges {
        store_live,
        store_file,
        store_free,
        pack_decompressions: ctx.store().codec().packs.decompressed(),
        tls_not_after: ctx.tls.not_after(),
    }
}

/// 200 when the store takes a write and every listener accepts; 503 naming what fails.
async fn healthz(ctx: &Context) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = ctx.store().health_check().await {
        problems.push(format!("store not writable: {e}"));
    }
    // An empty commit still succeeds on a full disk (redb reuses its pages), while the
    // next message would not fit: report that too.
    let max = ctx.config.limits.max_message_size;
    if let Some(free) = ctx.store().disk_free()
        && free < max
    {
        problems.push(format!(
            "store not writable: {free} bytes free on the data dir's file system, \
             less than limits.max_message_size ({max})"
        ));
    }
    for l in metrics::listeners_down() {
        problems.push(format!("listener down: {l}"));
    }
    if problems.is_empty() {
        Response::text(Status::Ok, "ok\n")
    } else {
        Response::text(Status::ServiceUnavailable, problems.join("\n") + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param("x=1&address=alice%40example.org", "address").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(query_param("address", "address").as_deref(), Some(""));
        assert_eq!(query_param("a=%zz+b", "a").as_deref(), Some("%zz b"));
        assert_eq!(query_param("", "address"), None);
    }
}
