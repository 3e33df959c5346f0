//! THREAD and UID THREAD (RFC 5256 §3, §4) with ORDEREDSUBJECT and REFERENCES: grammar,
//! the two algorithms (pure, over [`HeaderData`]) and the handler.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::super::grammar::{Parser, R, Syntax};
use super::super::response::{ImapError, Status};
use super::super::search::SearchKey;
use super::super::session::{Outcome, Session};
use super::search::search_program;
use super::{HeaderData, HeaderNeed};

/// `thread-alg` (RFC 5256 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    OrderedSubject,
    References,
}

/// A parsed THREAD command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadArgs {
    pub algorithm: Algorithm,
    pub charset: String,
    pub key: SearchKey,
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-charset SP search-program`
/// (RFC 5256 §5): the text after `THREAD `, up to the CRLF.
pub fn thread_args(p: &mut Parser<'_>) -> R<ThreadArgs> {
    let algorithm = match p.atom()?.to_ascii_uppercase().as_slice() {
        b"ORDEREDSUBJECT" => Algorithm::OrderedSubject,
        b"REFERENCES" => Algorithm::References,
        _ => return Err(Syntax::Unknown("threading algorithm")),
    };
    p.sp()?;
    let charset = String::from_utf8_lossy(&p.astring()?).to_ascii_uppercase();
    p.sp()?;
    let key = search_program(p)?;
    Ok(ThreadArgs {
        algorithm,
        charset,
        key,
    })
}

/// One message to thread: its number as answered (sequence number or UID), its sent
/// date (the INTERNALDATE when the Date header is unusable) and its header data.
pub struct Message<'a> {
    pub number: u32,
    pub date: i64,
    pub data: &'a HeaderData,
}

/// A thread tree node: a message (index into the input) or a dummy, with children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub message: Option<usize>,
    pub children: Vec<Node>,
}

/// ORDEREDSUBJECT (RFC 5256 §3): messages sorted by base subject, then sent date;
/// each run of one base subject is a thread whose first message is the parent of the
/// others; threads in the order of their first message's sent date.
pub fn ordered_subject(msgs: &[Message<'_>]) -> Vec<Node> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    let key = |i: usize| {
        msgs.get(i)
            .map(|m| (m.data.subject.as_bytes(), m.date, m.number))
    };
    order.sort_by(|&a, &b| match (key(a), key(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => Ordering::Equal,
    });
    let mut threads: Vec<Node> = Vec::new();
    let mut last_subject: Option<&[u8]> = None;
    for i in order {
        let Some(m) = msgs.get(i) else { continue };
        let subject = m.data.subject.as_bytes();
        let same = last_subject == Some(subject);
        match threads.last_mut() {
            Some(t) if same => t.children.push(Node {
                message: Some(i),
                children: Vec::new(),
            }),
            _ => threads.push(Node {
                message: Some(i),
                children: Vec::new(),
            }),
        }
        last_subject = Some(subject);
    }
    sort_siblings(&mut threads, msgs);
    threads
}

/// The sent date a node sorts by: its message's, or for a dummy its first child's
/// (RFC 5256 §3 REFERENCES step 6; children are sorted first).
fn node_date(n: &Node, msgs: &[Message<'_>]) -> (i64, u32) {
    match n.message.and_then(|i| msgs.get(i)) {
        Some(m) => (m.date, m.number),
        None => n
            .children
            .first()
            .map_or((i64::MAX, u32::MAX), |c| node_date(c, msgs)),
    }
}

/// Sorts every list of siblings by sent date, ties by number (RFC 5256 §3).
fn sort_siblings(nodes: &mut [Node], msgs: &[Message<'_>]) {
    for n in nodes.iter_mut() {
        sort_siblings(&mut n.children, msgs);
    }
    nodes.sort_by_key(|n| node_date(n, msgs));
}

/// REFERENCES (RFC 5256 §3, after Jamie Zawinski's algorithm), steps 1-6.
pub fn references(msgs: &[Message<'_>]) -> Vec<Node> {
    // Containers: message, parent, children (indexes into `c`).
    struct Container {
        message: Option<usize>,
        parent: Option<usize>,
        children: Vec<usize>,
    }
    let mut c: Vec<Container> = Vec::new();
    let mut by_id: HashMap<Vec<u8>, usize> = HashMap::new();
    fn container(c: &mut Vec<Container>, by_id: &mut HashMap<Vec<u8>, usize>, id: &[u8]) -> usize {
        if let Some(&k) = by_id.get(id) {
            return k;
        }
        c.push(Container {
            message: None,
            parent: None,
            children: Vec::new(),
        });
        let k = c.len() - 1;
        by_id.insert(id.to_vec(), k);
        k
    }
    // Whether `anc` is `node` or one of its ancestors.
    fn reaches(c: &[Container], mut node: usize, anc: usize) -> bool {
        let mut steps = 0usize;
        loop {
            if node == anc {
                return true;
            }
            match c.get(node).and_then(|n| n.parent) {
                Some(p) if steps <= c.len() => {
                    node = p;
                    steps += 1;
                }
                _ => return false,
            }
        }
    }
    fn unlink(c: &mut [Container], child: usize) {
        if let Some(p) = c.get(child).and_then(|n| n.parent) {
            if let Some(pc) = c.get_mut(p) {
                pc.children.retain(|&k| k != child);
            }
            if let Some(n) = c.get_mut(child) {
                n.parent = None;
            }
        }
    }
    fn link(c: &mut [Container], parent: usize, child: usize) {
        if let Some(n) = c.get_mut(child) {
            n.parent = Some(parent);
        }
        if let Some(p) = c.get_mut(parent) {
            p.children.push(child);
        }
    }
    // Step 1.
    for (i, m) in msgs.iter().enumerate() {
        // A missing or duplicate Message-ID gets a unique one.
        let ids = m.data.ids.as_ref();
        let id = match ids.and_then(|i| i.message_id.as_ref()) {
            Some(id)
                if by_id
                    .get(id)
                    .is_none_or(|&k| c.get(k).is_some_and(|n| n.message.is_none())) =>
            {
                id.clone()
            }
            _ => format!("\0unique-{i}").into_bytes(),
        };
        let me = container(&mut c, &mut by_id, &id);
        if let Some(n) = c.get_mut(me) {
            n.message = Some(i);
        }
        // 1A: link the references in order, each the parent of the next, unless it
        // has a parent already or that would make a loop.
        let mut prev: Option<usize> = None;
        for r in ids.map(|i| i.references.as_slice()).unwrap_or_default() {
            let k = container(&mut c, &mut by_id, r);
            if let Some(p) = prev
                && c.get(k).is_some_and(|n| n.parent.is_none())
                && !reaches(&c, p, k)
            {
                link(&mut c, p, k);
            }
            prev = Some(k);
        }
        // 1B: the message's parent is the last reference (replacing any), unless
        // that would make a loop.
        unlink(&mut c, me);
        if let Some(p) = prev
            && !reaches(&c, p, me)
        {
            link(&mut c, p, me);
        }
    }
    // Step 2: the root set.
    let roots: Vec<usize> = (0..c.len())
        .filter(|&k| c.get(k).is_some_and(|n| n.parent.is_none()))
        .collect();
    // Build the tree as values (step 3: the table is no longer needed).
    fn build(c: &[Container], k: usize, depth: usize) -> Node {
        let (message, kids) = c
            .get(k)
            .map_or((None, &[][..]), |n| (n.message, n.children.as_slice()));
        Node {
            message,
            children: if depth > 10_000 {
                Vec::new()
            } else {
                kids.iter().map(|&ch| build(c, ch, depth + 1)).collect()
            },
        }
    }
    let mut tree: Vec<Node> = roots.iter().map(|&k| build(&c, k, 0)).collect();
    // Step 4: prune dummies.
    tree = prune(tree, true);
    // Step 5: gather the root set by base subject.
    let tree = gather_by_subject(tree, msgs);
    // Step 6: sort.
    let mut tree = tree;
    sort_siblings(&mut tree, msgs);
    tree
}

/// RFC 5256 §3 REFERENCES step 4: a dummy without children goes; a dummy's children
/// take its place, except at the root when it has more than one.
fn prune(nodes: Vec<Node>, root: bool) -> Vec<Node> {
    let mut out = Vec::with_capacity(nodes.len());
    for mut n in nodes {
        n.children = prune(std::mem::take(&mut n.children), false);
        if n.message.is_some() {
            out.push(n);
        } else if n.children.is_empty() {
            // 4A: dropped.
        } else if root && n.children.len() > 1 {
            out.push(n);
        } else {
            // 4B: promote the children.
            out.extend(n.children);
        }
    }
    out
}

/// The base subject of a root node: its message's, or its first child's for a dummy.
fn root_subject<'m>(n: &Node, msgs: &'m [Message<'_>]) -> Option<&'m HeaderData> {
    match n.message {
        Some(i) => msgs.get(i).map(|m| m.data),
        None => n.children.first().and_then(|c| root_subject(c, msgs)),
    }
}

/// RFC 5256 §3 REFERENCES step 5: roots with the same base subject are merged.
fn gather_by_subject(roots: Vec<Node>, msgs: &[Message<'_>]) -> Vec<Node> {
    // 5B: subject (kept upper-cased) -> the root it names.
    let key = |d: &HeaderData| d.subject.clone();
    let mut table: HashMap<String, usize> = HashMap::new();
    for (i, n) in roots.iter().enumerate() {
        let Some(d) = root_subject(n, msgs) else {
            continue;
        };
        if d.subject.is_empty() {
            continue;
        }
        let k = key(d);
        match table.get(&k).and_then(|&j| roots.get(j)) {
            None => {
                table.insert(k, i);
            }
            Some(old) => {
                // Prefer a dummy; else a non-reply over a reply.
                let old_reply = root_subject(old, msgs).is_some_and(|o| o.reply);
                if (n.message.is_none() && old.message.is_some())
                    || (old.message.is_some() && old_reply && !d.reply)
                {
                    table.insert(k, i);
                }
            }
        }
    }
    // 5C: merge into the chosen root.
    let mut slots: Vec<Option<Node>> = roots.into_iter().map(Some).collect();
    for i in 0..slots.len() {
        let Some(n) = slots.get(i).and_then(Option::as_ref) else {
            continue;
        };
        let Some(d) = root_subject(n, msgs) else {
            continue;
        };
        if d.subject.is_empty() {
            continue;
        }
        let reply = n.message.is_some() && d.reply;
        let Some(&j) = table.get(&key(d)) else {
            continue;
        };
        if j == i {
            continue;
        }
        let Some(this) = slots.get_mut(i).and_then(Option::take) else {
            continue;
        };
        let Some(Some(that)) = slots.get_mut(j) else {
            if let Some(s) = slots.get_mut(i) {
                *s = Some(this);
            }
            continue;
        };
        let that_reply =
            that.message.is_some() && root_subject(that, msgs).is_some_and(|o| o.reply);
        match (this.message.is_none(), that.message.is_none()) {
            // Both dummies: this one's children join that one.
            (true, true) => that.children.extend(this.children),
            // One dummy: the message goes under the dummy.
            (false, true) => that.children.push(this),
            (true, false) => {
                let old = std::mem::replace(that, this);
                that.children.push(old);
            }
            // That is not a reply and this one is: this goes under that.
            (false, false) if reply && !that_reply => that.children.push(this),
            // Otherwise both go under a new dummy.
            (false, false) => {
                let old = std::mem::replace(
                    that,
                    Node {
                        message: None,
                        children: Vec::new(),
                    },
                );
                that.children.push(old);
                that.children.push(this);
            }
        }
    }
    slots.into_iter().flatten().collect()
}

/// Writes one thread (RFC 5256 §4 `thread-list`): a chain of single children as
/// `a b c`, two or more children each in their own parentheses.
fn write_thread(n: &Node, msgs: &[Message<'_>], out: &mut Vec<u8>, depth: usize) {
    out.push(b'(');
    write_members(n, msgs, out, depth);
    out.push(b')');
}

fn write_members(n: &Node, msgs: &[Message<'_>], out: &mut Vec<u8>, depth: usize) {
    let mut node = n;
    let mut first = true;
    let mut depth = depth;
    loop {
        if let Some(m) = node.message.and_then(|i| msgs.get(i)) {
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(m.number.to_string().as_bytes());
            first = false;
        }
        match node.children.as_slice() {
            [] => return,
            [only] if node.message.is_some() => {
                node = only;
            }
            kids => {
                // A dummy, or two or more children: each child is a thread of its own.
                if !first {
                    out.push(b' ');
                }
                if depth > 1000 {
                    return;
                }
                depth += 1;
                for k in kids {
                    write_thread(k, msgs, out, depth);
                }
                return;
            }
        }
    }
}

/// `* THREAD` with every thread.
pub fn write_threads(threads: &[Node], msgs: &[Message<'_>], out: &mut Vec<u8>) {
    out.extend_from_slice(b"* THREAD");
    if !threads.is_empty() {
        out.push(b' ');
    }
    for t in threads {
        write_thread(t, msgs, out, 0);
    }
    out.extend_from_slice(b"\r\n");
}

impl Session {
    /// THREAD / UID THREAD (RFC 5256 §3).
    pub(in super::super) async fn thread(
        &mut self,
        uid: bool,
        mut a: ThreadArgs,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        // THREAD has no RETURN, so no tag is needed.
        let (hits, _) = self.run_program("", &mut a.key, None, &a.charset).await?;
        let need = match a.algorithm {
            Algorithm::OrderedSubject => HeaderNeed::SortKeys,
            Algorithm::References => HeaderNeed::ThreadIds,
        };
        let data = self.header_data(&hits, need).await?;
        let msgs: Vec<Message<'_>> = hits
            .iter()
            .zip(data.iter())
            .map(|(h, d)| Message {
                number: h.number(uid),
                date: d.date.unwrap_or(h.internal_date),
                data: d.as_ref(),
            })
            .collect();
        let threads = match a.algorithm {
            Algorithm::OrderedSubject => ordered_subject(&msgs),
            Algorithm::References => references(&msgs),
        };
        write_threads(&threads, &msgs, out);
        Ok(Outcome::Done(Status::ok("THREAD completed")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::imap::grammar::parse_whole;

    fn data(subject: &str, id: &str, refs: &[&str]) -> HeaderData {
        let (subject, reply) = crate::mime::subject::base_subject(subject);
        let subject = subject.to_ascii_uppercase();
        HeaderData {
            subject,
            reply,
            ids: Some(crate::mime::summary::ThreadIds {
                message_id: (!id.is_empty()).then(|| id.as_bytes().to_vec()),
                references: refs.iter().map(|r| r.as_bytes().to_vec()).collect(),
            }),
            ..HeaderData::default()
        }
    }

    fn run(alg: Algorithm, d: &[(HeaderData, i64)]) -> String {
        let msgs: Vec<Message<'_>> = d
            .iter()
            .enumerate()
            .map(|(i, (data, date))| Message {
                number: i as u32 + 1,
                date: *date,
                data,
            })
            .collect();
        let t = match alg {
            Algorithm::OrderedSubject => ordered_subject(&msgs),
            Algorithm::References => references(&msgs),
        };
        let mut out = Vec::new();
        write_threads(&t, &msgs, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn thread_args_parse() {
        let a = parse_whole(b"references UTF-8 ALL", thread_args).unwrap();
        assert_eq!(a.algorithm, Algorithm::References);
        assert!(parse_whole(b"BOGUS UTF-8 ALL", thread_args).is_err());
        assert!(parse_whole(b"REFERENCES UTF-8", thread_args).is_err());
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let d = vec![
            (data("b", "<1@x>", &[]), 10),
            (data("Re: a", "<2@x>", &[]), 20),
            (data("a", "<3@x>", &[]), 5),
            (data("Re: b", "<4@x>", &[]), 30),
            (data("c", "<5@x>", &[]), 1),
            (data("Re: a", "<6@x>", &[]), 40),
        ];
        assert_eq!(
            run(Algorithm::OrderedSubject, &d),
            "* THREAD (5)(3 (2)(6))(1 4)\r\n"
        );
    }

    #[test]
    fn references_builds_trees_and_merges_subjects() {
        let d = vec![
            (data("hello", "<1@x>", &[]), 10),
            (data("Re: hello", "<2@x>", &["<1@x>"]), 20),
            (data("Re: hello", "<3@x>", &["<1@x>"]), 30),
            (data("Re: hello", "<4@x>", &["<1@x>", "<3@x>"]), 40),
            (data("other", "<5@x>", &[]), 5),
            // Its parent is missing: a dummy, pruned to the message itself, then
            // merged with "hello" by subject (it is a reply, hello is not).
            (data("Re: hello", "<6@x>", &["<gone@x>"]), 50),
            // No Message-ID at all.
            (data("lonely", "", &[]), 60),
        ];
        assert_eq!(
            run(Algorithm::References, &d),
            "* THREAD (5)(1 (2)(3 4)(6))(7)\r\n"
        );
    }

    #[test]
    fn references_survive_loops_and_duplicates() {
        let d = vec![
            (data("a", "<1@x>", &["<2@x>"]), 1),
            (data("b", "<2@x>", &["<1@x>"]), 2),
            (data("c", "<1@x>", &[]), 3),
        ];
        let out = run(Algorithm::References, &d);
        for n in ["1", "2", "3"] {
            assert!(out.contains(n), "{out}");
        }
    }

    #[test]
    fn empty_thread() {
        assert_eq!(run(Algorithm::References, &[]), "* THREAD\r\n");
    }
}
