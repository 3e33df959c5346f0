//! The control socket, and the one place CLI commands are carried out.
//!
//! redb lets one process own the database (DESIGN.md decision 1). While `nestbox serve`
//! runs, CLI commands send a [`Request`] over the Unix socket `control.sock` in the data dir
//! and the server runs [`execute`]; with no server, the CLI opens the store and runs
//! [`execute`] itself. Same function, same behaviour either way.
//!
//! Framing: a 4-byte big-endian length, then a postcard-encoded value. The socket is
//! created with mode 0600, so only the server's own user can use it. Passwords never cross
//! it: the CLI hashes them first.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use smol::io::{AsyncReadExt, AsyncWriteExt};

use crate::contracts::{MailboxId, PluginStatus, Target, Uid, UserId};
use crate::delivery::{Incoming, Outcome, Pipeline, Trace, TraceProtocol};
use crate::mailfmt::ImportedMessage;
use crate::store::backup::{Progress, Summary};
use crate::store::{
    AppPasswordInfo, KeptIds, LayoutReport, MailboxInfo, MailboxLayout, MessageInfo, ScriptInfo,
    SieveError, SieveLimits, Stats, StoreError, UserInfo,
};

/// The socket's file name inside the data dir.
pub const SOCKET: &str = "control.sock";
/// Largest frame accepted (a batch of imported messages, or one exported message).
pub const MAX_FRAME: usize = 1 << 30;

/// One message of an import batch: the message as the file reader gave it, and where it
/// goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportItem {
    pub mailbox: String,
    pub message: ImportedMessage,
    /// UID and POP3 UIDL kept from another server (`import --dovecot`).
    pub kept: Option<KeptIds>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    UserAdd {
        name: String,
        hash: String,
    },
    UserPasswd {
        name: String,
        hash: String,
    },
    UserDel {
        name: String,
    },
    UserList,
    /// `nestbox deliver`: one message, trace headers added like LMTP.
    Deliver {
        user: String,
        mailbox: Option<String>,
        mail_from: Option<String>,
        raw: Vec<u8>,
    },
    Import {
        user: String,
        items: Vec<ImportItem>,
    },
    Mailboxes {
        user: String,
    },
    /// `import --dovecot`, before the messages: the other server's mailboxes
    /// ([`crate::store::Store::import_layout`]).
    ImportLayout {
        user: String,
        mailboxes: Vec<MailboxLayout>,
        other_subscriptions: Vec<String>,
    },
    /// `import --dovecot`, after the messages: the other server's UIDNEXT.
    RaiseUidNext {
        user: String,
        mailbox: String,
        uidnext: u32,
    },
    Messages {
        user: String,
        mailbox: String,
    },
    Message {
        user: String,
        mailbox: String,
        uid: Uid,
    },
    Stats {
        user: Option<String>,
    },
    Compact,
    /// `reindex`: drop and rebuild the full-text index of one user or everyone.
    Reindex {
        user: Option<String>,
    },
    /// `user app-password add`: the CLI generated and hashed the password.
    AppPasswordAdd {
        name: String,
        label: String,
        hash: String,
    },
    AppPasswordList {
        name: String,
    },
    AppPasswordDel {
        name: String,
        label: String,
    },
    /// `nestbox plugin list`: the running server's plugins.
    PluginList,
    /// `nestbox retention run`: one sweep now, for everyone or one user.
    Retention {
        user: Option<String>,
        dry_run: bool,
    },
    /// `nestbox backup`: the server streams the file back as [`Response::BackupChunk`]s
    /// and ends with [`Response::BackedUp`] (see [`serve_conn`]).
    Backup,
    /// `nestbox verify` of the live store.
    Verify,
    /// `nestbox sieve ...`: a user's Sieve scripts. The CLI sends the limits of its
    /// config and has checked the script.
    SieveList {
        user: String,
    },
    SieveGet {
        user: String,
        name: String,
    },
    SievePut {
        user: String,
        name: String,
        text: String,
        limits: SieveLimits,
    },
    SieveActivate {
        user: String,
        name: Option<String>,
    },
    SieveDel {
        user: String,
        name: String,
    },
    /// `nestbox acme renew`: order a new ACME certificate now (running server only).
    AcmeRenew,
}

/// Per-message result of a delivery or import, as the control socket sends it.
pub type Delivered = Outcome<Uid, StoreFailure>;

/// Why the store could not keep a message, for the command line's exit status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreFailure {
    /// Temporary: try again later.
    Temporary(String),
    /// Permanent storage trouble.
    Corrupt(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Done,
    Users(Vec<UserInfo>),
    Mailboxes(Vec<MailboxInfo>),
    Messages(Vec<MessageInfo>),
    Message(Vec<u8>),
    Delivered(Vec<Delivered>),
    Stats(Stats),
    Compacted(bool),
    /// Mailboxes whose full-text index was dropped to be built again.
    Reindexed(u64),
    AppPasswords(Vec<AppPasswordInfo>),
    Plugins(Vec<PluginStatus>),
    Retention(crate::retention::Report),
    /// Part of a backup file, with the progress so far.
    BackupChunk {
        data: Vec<u8>,
        progress: Progress,
    },
    /// The backup is complete (after its last chunk).
    BackedUp(Summary),
    Verified(crate::store::VerifyReport),
    Layout(LayoutReport),
    SieveScripts(Vec<ScriptInfo>),
    SieveScript(String),
    /// A new ACME certificate is served.
    AcmeRenewed(crate::acme::Issued),
    /// A request that cannot be carried out; the text names the problem.
    Error(ErrorKind, String),
}

/// Error classes, so the CLI can choose its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    NoSuchUser,
    NotFound,
    Invalid,
    Temporary,
    Internal,
}

fn error(e: StoreError) -> Response {
    let kind = match &e {
        StoreError::NoSuchUser => ErrorKind::NoSuchUser,
        StoreError::NoSuchMailbox => ErrorKind::NotFound,
        StoreError::UserExists
        | StoreError::MailboxExists
        | StoreError::InvalidName(_)
        | StoreError::HasChildren
        | StoreError::MailboxNotEmpty(_)
        | StoreError::UidNotFree(_) => ErrorKind::Invalid,
        StoreError::Locked | StoreError::DiskFull | StoreError::Storage(_) | StoreError::Closed => {
            ErrorKind::Temporary
        }
        StoreError::Corrupt(_) => ErrorKind::Internal,
    };
    Response::Error(kind, e.to_string())
}

/// `Done` when the store did it; else the error `kind`, saying `why`.
fn done_or(did: bool, kind: ErrorKind, why: impl FnOnce() -> String) -> Response {
    if did {
        Response::Done
    } else {
        Response::Error(kind, why())
    }
}

fn sieve_error(e: SieveError) -> Response {
    let kind = match &e {
        SieveError::NoSuchUser => ErrorKind::NoSuchUser,
        SieveError::NoSuchScript => ErrorKind::NotFound,
        SieveError::AlreadyExists
        | SieveError::Active
        | SieveError::TooLarge { .. }
        | SieveError::TooMany { .. }
        | SieveError::InvalidName(_) => ErrorKind::Invalid,
        SieveError::Store(s) => return error(s.clone()),
    };
    Response::Error(kind, e.to_string())
}

fn delivered(o: Outcome) -> Delivered {
    o.map(
        |a| a.uid,
        |e| match e {
            StoreError::Corrupt(e) => StoreFailure::Corrupt(e),
            e => StoreFailure::Temporary(e.to_string()),
        },
    )
}

async fn user_id(p: &Pipeline, name: &str) -> Result<(UserId, String), Response> {
    match p.store.find_user(name, "").await {
        Ok(Some(u)) => Ok((u.id, u.name)),
        Ok(None) => Err(user_error(name)(StoreError::NoSuchUser)),
        Err(e) => Err(error(e)),
    }
}

/// [`error`], naming the user where the error is about the user itself.
fn user_error(name: &str) -> impl FnOnce(StoreError) -> Response + '_ {
    move |e| match e {
        StoreError::NoSuchUser => {
            Response::Error(ErrorKind::NoSuchUser, format!("no such user: {name}"))
        }
        StoreError::UserExists => {
            Response::Error(ErrorKind::Invalid, format!("user {name} already exists"))
        }
        e => error(e),
    }
}

async fn mailbox_id(p: &Pipeline, user: UserId, name: &str) -> Result<MailboxId, Response> {
    match p.store.mailbox(user, name).await {
        Ok(Some(m)) => Ok(m.id),
        Ok(None) => Err(Response::Error(
            ErrorKind::NotFound,
            format!("no such mailbox: {name}"),
        )),
        Err(e) => Err(error(e)),
    }
}

/// Carries out one request against the store.
pub async fn execute(p: &Pipeline, hostname: &str, req: Request) -> Response {
    match run(p, hostname, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn run(p: &Pipeline, hostname: &str, req: Request) -> Result<Response, Response> {
    let store = &p.store;
    Ok(match req {
        Request::UserAdd { name, hash } => store
            .add_user(&name, hash)
            .await
            .map(|_| Response::Done)
            .map_err(user_error(&name))?,
        Request::UserPasswd { name, hash } => store
            .set_password(&name, hash)
            .await
            .map(|_| Response::Done)
            .map_err(user_error(&name))?,
        Request::UserDel { name } => store
            .delete_user(&name)
            .await
            .map(|_| Response::Done)
            .map_err(user_error(&name))?,
        Request::UserList => Response::Users(store.list_users().await.map_err(error)?),
        Request::Deliver {
            user,
            mailbox,
            mail_from,
            raw,
        } => {
            let (id, name) = user_id(p, &user).await?;
            let target = Target {
                mailbox,
                ..Target::new(id, name.clone(), format!("{name}@{hostname}"))
            };
            let incoming = Incoming {
                raw,
                mail_from,
                trace: Some(Trace {
                    protocol: TraceProtocol::Local,
                    helo: None,
                    peer: None,
                }),
                internal_date: None,
            };
            let out = p.deliver(incoming, vec![target]).await;
            Response::Delivered(out.into_iter().map(delivered).collect())
        }
        Request::Import { user, items } => {
            let (id, name) = user_id(p, &user).await?;
            let mut results = Vec::with_capacity(items.len());
            // Prepared in parallel, stored in one transaction in file order: UIDs follow
            // the source (an import -> export round trip is byte-exact) and a batch costs
            // one fsync.
            let batch = items
                .into_iter()
                .map(|item| {
                    let m = item.message;
                    let target = Target {
                        mailbox: Some(item.mailbox),
                        create_mailbox: true,
                        flags: m.flags.system,
                        keywords: m.flags.keywords,
                        kept: item.kept,
                        ..Target::new(id, name.clone(), name.clone())
                    };
                    let incoming = Incoming {
                        raw: m.raw,
                        mail_from: m.envelope_from,
                        trace: None,
                        internal_date: m.internal_date,
                    };
                    (incoming, vec![target])
                })
                .collect();
            for out in p.import_batch(batch).await {
                results.extend(out.into_iter().map(delivered));
            }
            Response::Delivered(results)
        }
        Request::Mailboxes { user } => {
            let (id, _) = user_id(p, &user).await?;
            Response::Mailboxes(store.mailboxes(id).await.map_err(error)?)
        }
        Request::ImportLayout {
            user,
            mailboxes,
            other_subscriptions,
        } => {
            let (id, _) = user_id(p, &user).await?;
            Response::Layout(
                store
                    .import_layout(id, mailboxes, other_subscriptions)
                    .await
                    .map_err(error)?,
            )
        }
        Request::RaiseUidNext {
            user,
            mailbox,
            uidnext,
        } => {
            let (id, _) = user_id(p, &user).await?;
            store
                .raise_uidnext(id, &mailbox, uidnext)
                .await
                .map_err(error)?;
            Response::Done
        }
        Request::Messages { user, mailbox } => {
            let (id, _) = user_id(p, &user).await?;
            let mb = mailbox_id(p, id, &mailbox).await?;
            Response::Messages(std::sync::Arc::unwrap_or_clone(
                store.messages(mb).await.map_err(error)?,
            ))
        }
        Request::Message { user, mailbox, uid } => {
            let (id, _) = user_id(p, &user).await?;
            let mb = mailbox_id(p, id, &mailbox).await?;
            match store.message_bytes(mb, uid).await.map_err(error)? {
                Some(raw) => Response::Message(raw),
                None => Response::Error(ErrorKind::NotFound, format!("no message with UID {uid}")),
            }
        }
        Request::Stats { user } => {
            let user = match user {
                Some(u) => Some(user_id(p, &u).await?.1),
                None => None,
            };
            Response::Stats(store.stats(user).await.map_err(error)?)
        }
        Request::PluginList => Response::Plugins(p.hooks().plugins()),
        Request::Retention { user, dry_run } => {
            if let Some(u) = &user {
                user_id(p, u).await?;
            }
            Response::Retention(
                crate::retention::run(&p.store, p.hooks(), user.as_deref(), dry_run)
                    .await
                    .map_err(error)?,
            )
        }
        Request::SieveList { user } => {
            Response::SieveScripts(store.sieve_list(&user).await.map_err(sieve_error)?)
        }
        Request::SieveGet { user, name } => {
            Response::SieveScript(store.sieve_get(&user, &name).await.map_err(sieve_error)?)
        }
        Request::SievePut {
            user,
            name,
            text,
            limits,
        } => store
            .sieve_put(&user, &name, &text, limits)
            .await
            .map(|()| Response::Done)
            .map_err(sieve_error)?,
        Request::SieveActivate { user, name } => store
            .sieve_set_active(&user, name.as_deref())
            .await
            .map(|()| Response::Done)
            .map_err(sieve_error)?,
        Request::SieveDel { user, name } => store
            .sieve_delete(&user, &name)
            .await
            .map(|()| Response::Done)
            .map_err(sieve_error)?,
        Request::Compact => Response::Compacted(store.compact(true).await.map_err(error)?),
        Request::Reindex { user } => Response::Reindexed(store.reindex(user).await.map_err(error)?),
        Request::Verify => Response::Verified(store.verify_contents().await.map_err(error)?),
        // Needs the running server's ACME manager: only `serve_conn` carries it out.
        Request::AcmeRenew => Response::Error(
            ErrorKind::Invalid,
            "acme renew needs the running server (nestbox serve)".into(),
        ),
        // Streamed: only `serve_conn` (and the CLI's local mode, through `Store::backup`)
        // carries it out.
        Request::Backup => Response::Error(
            ErrorKind::Invalid,
            "a backup is streamed over the control connection".into(),
        ),
        Request::AppPasswordAdd { name, label, hash } => {
            let added = store
                .add_app_password(&name, &label, hash)
                .await
                .map_err(error)?;
            done_or(added, ErrorKind::Invalid, || {
                format!("{name} already has an app password labelled {label:?}")
            })
        }
        Request::AppPasswordList { name } => {
            Response::AppPasswords(store.app_passwords(&name).await.map_err(error)?)
        }
        Request::AppPasswordDel { name, label } => {
            let deleted = store
                .delete_app_password(&name, &label)
                .await
                .map_err(error)?;
            done_or(deleted, ErrorKind::NotFound, || {
                format!("{name} has no app password labelled {label:?}")
            })
        }
    })
}

async fn read_frame<R: smol::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

async fn write_frame<W: smol::io::AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

/// Serves one control connection: requests in, responses out, until the client closes.
pub async fn serve_conn(
    p: Pipeline,
    hostname: String,
    acme: Option<crate::acme::Acme>,
    mut stream: smol::net::unix::UnixStream,
) {
    loop {
        let frame = match read_frame(&mut stream).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                log::warn!("control: {e}");
                return;
            }
        };
        let response = match postcard::from_bytes::<Request>(&frame) {
            Ok(Request::Backup) => match stream_backup(&p, &mut stream).await {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("control: backup: {e}");
                    return;
                }
            },
            Ok(Request::AcmeRenew) => match &acme {
                Some(a) => match a.renew().await {
                    Ok(issued) => Response::AcmeRenewed(issued),
                    Err(e) => Response::Error(ErrorKind::Temporary, e),
                },
                None => Response::Error(
                    ErrorKind::Invalid,
                    "ACME is off (acme.names is empty in the server's config)".into(),
                ),
            },
            Ok(req) => execute(&p, &hostname, req).await,
            Err(e) => Response::Error(ErrorKind::Invalid, format!("bad request: {e}")),
        };
        let bytes = match postcard::to_allocvec(&response) {
            Ok(b) => b,
            Err(e) => {
                log::error!("control: cannot encode response: {e}");
                return;
            }
        };
        if let Err(e) = write_frame(&mut stream, &bytes).await {
            log::warn!("control: {e}");
            return;
        }
    }
}

/// A backup being written: its chunks (with the progress so far) arrive on `chunks`
/// while the store writes it on the blocking pool; `done` ends with the summary. At most
/// a few chunks wait in memory; dropping `chunks` stops the backup at its next chunk.
pub struct BackupStream {
    pub chunks: smol::channel::Receiver<(Vec<u8>, Progress)>,
    pub done: smol::Task<Result<Summary, String>>,
}

/// Starts a backup of `store` (the one way both the server and the CLI's local mode
/// take one).
pub fn start_backup(store: &crate::store::Store) -> BackupStream {
    let (tx, chunks) = smol::channel::bounded::<(Vec<u8>, Progress)>(4);
    let store = store.clone();
    let done = smol::spawn(async move {
        store
            .backup(move |data, progress| tx.send_blocking((data, progress)).is_ok())
            .await
    });
    BackupStream { chunks, done }
}

/// Sends a backup as [`Response::BackupChunk`] frames; returns the final response.
async fn stream_backup(
    p: &Pipeline,
    stream: &mut smol::net::unix::UnixStream,
) -> std::io::Result<Response> {
    let BackupStream { chunks, done } = start_backup(&p.store);
    while let Ok((data, progress)) = chunks.recv().await {
        let frame = postcard::to_allocvec(&Response::BackupChunk { data, progress })
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        if let Err(e) = write_frame(stream, &frame).await {
            drop(chunks);
            let _ = done.await;
            return Err(e);
        }
    }
    Ok(match done.await {
        Ok(summary) => Response::BackedUp(summary),
        Err(e) => Response::Error(ErrorKind::Temporary, format!("backup failed: {e}")),
    })
}

/// Path of the control socket for a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// The client side: one connection to a running server.
pub struct Client {
    stream: smol::net::unix::UnixStream,
}

impl Client {
    /// Connects if a server is listening; `Ok(None)` when none is running.
    pub async fn connect(data_dir: &Path) -> std::io::Result<Option<Client>> {
        let path = socket_path(data_dir);
        match smol::net::unix::UnixStream::connect(&path).await {
            Ok(stream) => Ok(Some(Client { stream })),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn call(&mut self, req: &Request) -> std::io::Result<Response> {
        let bytes = postcard::to_allocvec(req)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        write_frame(&mut self.stream, &bytes).await?;
        self.response().await
    }

    /// The next response frame (a streamed reply such as a backup has several).
    pub async fn response(&mut self) -> std::io::Result<Response> {
        let frame = read_frame(&mut self.stream).await?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the control connection",
            )
        })?;
        postcard::from_bytes(&frame)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}
