//! The `message` resource: the copy being delivered, as the plugin sees it.
//!
//! One [`MessageView`] per delivered copy is shared by every filter plugin that sees it,
//! so headers and text are decoded at most once. What the plugin reads is the message
//! as it will be stored: the per-delivery trace headers followed by the message.

use std::sync::{Arc, OnceLock};

use wasmtime::component::Resource;

use super::engine::State;
use crate::mime::header::{decoded as decode_value, header_fields};

/// Most bytes one `read` call returns (the WIT promises at most 1 MiB).
pub const MAX_READ: u32 = 1 << 20;

/// The message behind the resource handle.
pub struct MessageView {
    /// Trace headers added for this recipient (may be empty).
    prefix: Vec<u8>,
    raw: Arc<Vec<u8>>,
    headers: OnceLock<Vec<(String, String)>>,
    text: OnceLock<Option<String>>,
}

/// What the resource table holds: a shared view.
pub struct MessageRes(pub Arc<MessageView>);

impl std::ops::Deref for MessageRes {
    type Target = MessageView;
    fn deref(&self) -> &MessageView {
        &self.0
    }
}

/// Runs `call` with `view` in the store's resource table, as the borrowed handle a hook
/// takes, and takes it out again afterwards: what `call` returns, once the table is
/// clean.
pub(crate) fn lend<T>(
    store: &mut wasmtime::Store<State>,
    view: &Arc<MessageView>,
    call: impl FnOnce(&mut wasmtime::Store<State>, Resource<MessageRes>) -> T,
) -> wasmtime::Result<T> {
    let handle = store.data_mut().table.push(MessageRes(view.clone()))?;
    let borrowed = Resource::<MessageRes>::new_borrow(handle.rep());
    let returned = call(store, borrowed);
    store.data_mut().table.delete(handle)?;
    Ok(returned)
}

impl MessageView {
    pub fn new(prefix: Vec<u8>, raw: Arc<Vec<u8>>) -> MessageView {
        MessageView {
            prefix,
            raw,
            headers: OnceLock::new(),
            text: OnceLock::new(),
        }
    }

    pub fn size(&self) -> u64 {
        (self.prefix.len() + self.raw.len()) as u64
    }

    /// All top-level header fields, values unfolded and RFC 2047-decoded.
    pub fn headers(&self) -> &[(String, String)] {
        self.headers.get_or_init(|| {
            let block = crate::mime::header_block(&self.raw);
            let mut out = Vec::new();
            for source in [self.prefix.as_slice(), block] {
                for f in header_fields(source) {
                    out.push((
                        String::from_utf8_lossy(f.name).into_owned(),
                        decode_value(f.value),
                    ));
                }
            }
            out
        })
    }

    /// Every value of the header `name` (ASCII case-insensitive), in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Raw octets `[offset, offset + len)`, clipped to the end and to [`MAX_READ`].
    pub fn read(&self, offset: u64, len: u32) -> Vec<u8> {
        let len = len.min(MAX_READ) as usize;
        let Ok(mut offset) = usize::try_from(offset) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(len.min(self.size() as usize));
        for part in [self.prefix.as_slice(), self.raw.as_slice()] {
            if out.len() >= len {
                break;
            }
            if offset >= part.len() {
                offset -= part.len();
                continue;
            }
            let want = len - out.len();
            let end = offset.saturating_add(want).min(part.len());
            out.extend_from_slice(part.get(offset..end).unwrap_or(&[]));
            offset = 0;
        }
        out
    }

    /// The first text part (or HTML converted to text), decoded, cut at `max` bytes on a
    /// character boundary.
    pub fn text(&self, max: u32) -> Option<String> {
        let text = self.text.get_or_init(|| {
            let msg = mail_parser::MessageParser::default().parse(self.raw.as_slice())?;
            let has_text = !msg.text_body.is_empty() || !msg.html_body.is_empty();
            if !has_text {
                return None;
            }
            msg.body_text(0).map(|t| t.into_owned())
        });
        let text = text.as_ref()?;
        let mut end = text.len().min(max as usize);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(text.get(..end).unwrap_or("").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> MessageView {
        MessageView::new(
            b"Delivered-To: a@b\r\n".to_vec(),
            Arc::new(
                b"Subject: =?utf-8?q?caf=C3=A9?=\r\n and more\r\nX-Spam-Flag: YES\r\n\r\nhello\r\n"
                    .to_vec(),
            ),
        )
    }

    #[test]
    fn headers_include_trace_and_decode() {
        let v = view();
        assert_eq!(v.header("delivered-to"), vec!["a@b".to_string()]);
        assert_eq!(v.header("SUBJECT"), vec!["café and more".to_string()]);
        assert_eq!(v.header("x-spam-flag"), vec!["YES".to_string()]);
        assert!(v.header("nope").is_empty());
        assert_eq!(v.headers().len(), 3);
    }

    #[test]
    fn read_spans_prefix_and_body() {
        let v = view();
        let all = v.read(0, u32::MAX);
        assert_eq!(all.len() as u64, v.size());
        assert_eq!(v.read(14, 8), b"a@b\r\nSub");
        assert!(v.read(v.size(), 10).is_empty());
        assert!(v.read(u64::MAX, 10).is_empty());
    }

    #[test]
    fn text_is_cut_on_char_boundary() {
        let v = MessageView::new(
            Vec::new(),
            Arc::new(b"Content-Type: text/plain; charset=utf-8\r\n\r\nh\xc3\xa9llo\r\n".to_vec()),
        );
        assert_eq!(v.text(2).as_deref(), Some("h"));
        assert!(v.text(100).unwrap().starts_with("h\u{e9}llo"));
    }
}
