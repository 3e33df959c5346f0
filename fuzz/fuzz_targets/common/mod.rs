//! Whole-session fuzzing: one real store (redb, in a temp dir made once per process) with
//! user `alice` (password `secret`), a few messages in INBOX and `Work`; each input is
//! written to the real connection driver (`imap::server::handle`, `pop3::server::handle`)
//! over a Unix socket pair, then EOF; the reply is read to the end.
//!
//! After every input the store is put back as it was when its state drifted: a changed
//! mailbox list recreates the user, changed messages are replaced by the fixture ones.
//! So each input meets (nearly) the same store and the store never grows.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use nestbox::auth::{Authenticator, hash_password};
use nestbox::config::{Argon2Config, Config, Plaintext, ThrottleConfig};
use nestbox::contracts::{NoHooks, Target, UserId};
use nestbox::delivery::{Incoming, Pipeline};
use nestbox::net::limits::ConnLimits;
use nestbox::net::stream::{Peer, Stream};
use nestbox::net::{Context, Shutdown, Tracker};
use nestbox::store::{Store, SystemFlags};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::UnixStream;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";

/// Fixture messages: (mailbox, raw). Plain, multipart with an attachment, encoded words
/// and folded headers, a nested message/rfc822.
const MESSAGES: &[(&str, &[u8])] = &[
    (
        "INBOX",
        b"From: Bob <bob@example.org>\r\nTo: alice@test.example\r\nSubject: hello\r\n\
Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@example.org>\r\n\r\nHi Alice,\r\n\
.\r\n..dots\r\nbye\r\n",
    ),
    (
        "INBOX",
        b"From: carol@example.org\r\nTo: alice@test.example, Dave <dave@example.org>\r\n\
Cc: \"Eve, E.\" <eve@example.org>\r\nSubject: =?UTF-8?Q?caf=C3=A9?= report\r\n\
 continued\r\nDate: Tue, 1 Mar 2022 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=C3=A9 numbers=0D=0A\r\n--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECAwQFBgcICQ==\r\n--b1--\r\nepilogue\r\n",
    ),
    (
        "INBOX",
        b"From: dave@example.org\r\nTo: alice@test.example\r\nSubject: fwd\r\n\
Date: Wed, 2 Mar 2022 11:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n\
<p>hi</p>\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nFrom: zed@example.org\r\n\
Subject: inner\r\n\r\ninner body\r\n--x--\r\n",
    ),
    (
        "INBOX",
        b"Subject: no from, long line\r\n\r\n\
xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
    ),
    (
        "Work",
        b"From: boss@example.org\r\nTo: alice@test.example\r\nSubject: work 1\r\n\r\nplease\r\n",
    ),
    (
        "Work",
        b"From: boss@example.org\r\nTo: alice@test.example\r\nSubject: work 2\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n",
    ),
];

/// What a mailbox looks like when the store is as set up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MailboxShape {
    name: String,
    subscribed: bool,
    special_use: String,
}

pub struct Fixture {
    pub ctx: Context,
    pub shared: Arc<nestbox::imap::session::Shared>,
    /// Keeps shutdown from beginning.
    _stop: smol::channel::Sender<()>,
    _dir: tempfile::TempDir,
    user: std::sync::Mutex<UserId>,
    shape: Vec<MailboxShape>,
}

fn argon2() -> Argon2Config {
    // The smallest parameters the config accepts (memory_kib >= 8 x parallelism).
    Argon2Config {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    }
}

async fn deliver(pipeline: &Pipeline, user: UserId) {
    let items = MESSAGES
        .iter()
        .enumerate()
        .map(|(i, (mailbox, raw))| {
            let incoming = Incoming {
                raw: raw.to_vec(),
                mail_from: Some("bob@example.org".into()),
                trace: None,
                internal_date: Some(1_650_000_000 + i as i64 * 86_400),
            };
            let target = Target {
                mailbox: Some((*mailbox).into()),
                create_mailbox: true,
                ..Target::new(user, USER.into(), format!("{USER}@test.example"))
            };
            (incoming, vec![target])
        })
        .collect();
    for out in pipeline.deliver_batch(items).await {
        assert!(
            matches!(out.as_slice(), [nestbox::delivery::Outcome::Stored(_)]),
            "fixture delivery: {out:?}"
        );
    }
}

async fn make_user(store: &Store, pipeline: &Pipeline) -> UserId {
    let hash = hash_password(PASSWORD, &argon2()).expect("hash");
    let id = store.add_user(USER, hash).await.expect("add user");
    deliver(pipeline, id).await;
    id
}

async fn shape(store: &Store, user: UserId) -> Vec<MailboxShape> {
    store
        .mailboxes(user)
        .await
        .expect("mailboxes")
        .into_iter()
        .map(|m| MailboxShape {
            name: m.name,
            subscribed: m.subscribed,
            special_use: format!("{:?}", m.special_use),
        })
        .collect()
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // tmpfs when there is one: every store write is an fsync.
        let base = std::path::Path::new("/dev/shm");
        let dir = if base.is_dir() {
            tempfile::Builder::new().prefix("nbfuzz").tempdir_in(base)
        } else {
            tempfile::Builder::new().prefix("nbfuzz").tempdir()
        }
        .expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            hostname: "test.example".into(),
            ..Config::default()
        };
        config.auth.argon2 = argon2();
        config.auth.plaintext = Plaintext::Always;
        // Failed logins answer at once and never ban.
        config.auth.throttle = ThrottleConfig {
            base_delay_ms: 0,
            max_delay_ms: 0,
            ban_after: 0,
            ban_secs: 0,
        };
        config.limits.max_message_size = 64 * 1024;
        config.imap.max_line = 2048;
        config.pop3.max_line = 255;
        config.pop3.login_delay_secs = None;
        let store = Store::open(dir.path(), &config.store).expect("open store");
        let (stop, shutdown) = Shutdown::pair();
        let pipeline = Pipeline::new(
            store.clone(),
            &config.hostname,
            config.limits.max_message_size,
            Arc::new(NoHooks),
        );
        let ctx = Context {
            auth: Authenticator::from_config(store.clone(), &config.hostname, &config.auth),
            pipeline: pipeline.clone(),
            shutdown,
            tracker: Tracker::default(),
            tls: nestbox::tls::TlsManager::load(&config).expect("tls"),
            limits: ConnLimits::new(&config.connections, config.lmtp.max_connections),
            acme: None,
            config: Arc::new(config),
        };
        let (user, shape) = smol::block_on(async {
            let user = make_user(&store, &pipeline).await;
            (user, shape(&store, user).await)
        });
        Fixture {
            ctx,
            shared: Arc::new(nestbox::imap::session::Shared::new()),
            _stop: stop,
            _dir: dir,
            user: std::sync::Mutex::new(user),
            shape,
        }
    })
}

impl Fixture {
    fn store(&self) -> &Store {
        &self.ctx.pipeline.store
    }

    /// Whether the user's mailboxes and messages are as set up (flags and keywords
    /// included; UIDs may differ).
    async fn pristine(&self, user: UserId) -> bool {
        if shape(self.store(), user).await != self.shape {
            return false;
        }
        for mb in self.store().mailboxes(user).await.expect("mailboxes") {
            let msgs = self.store().messages(mb.id).await.expect("messages");
            let want = MESSAGES.iter().filter(|(n, _)| *n == mb.name).count();
            if msgs.len() != want
                || msgs
                    .iter()
                    .any(|m| m.flags != SystemFlags::default() || !m.keywords.is_empty())
            {
                return false;
            }
        }
        true
    }

    /// Puts the store back as set up (a new `alice`), if the last input changed it.
    async fn reset(&self) {
        let mut user = self.user.lock().expect("user lock");
        if self.pristine(*user).await {
            return;
        }
        self.store().delete_user(USER).await.expect("delete user");
        *user = make_user(self.store(), &self.ctx.pipeline).await;
        assert!(
            self.pristine(*user).await,
            "reset did not restore the fixture"
        );
    }

    /// Writes `input` to a fresh connection served by `serve`, then EOF; returns the
    /// whole reply.
    pub fn session<F, Fut>(&self, input: &[u8], serve: F) -> Vec<u8>
    where
        F: FnOnce(Context, Stream, Peer) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (server, mut client) = UnixStream::pair().expect("socket pair");
        let peer = Peer {
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            tls: false,
        };
        let reply = smol::block_on(async {
            let server = serve(self.ctx.clone(), Stream::Unix(server), peer);
            let mut reader = client.clone();
            let write = async {
                // The server may close first (LOGOUT): a broken pipe is fine.
                let _ = client.write_all(input).await;
                let _ = client.flush().await;
                let _ = client.shutdown(std::net::Shutdown::Write);
            };
            let read = async {
                let mut reply = Vec::new();
                let _ = reader.read_to_end(&mut reply).await;
                reply
            };
            let ((_, ()), reply) = smol::future::zip(smol::future::zip(server, write), read).await;
            self.reset().await;
            reply
        });
        reply
    }
}
