//! The command line (the contract in DESIGN.md). Every command but `serve` goes through a
//! [`Backend`]: the control socket of a running server, or the store opened directly.
//! Both end in [`control::execute`], so they behave the same.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, RawConfig};
use crate::contracts::Hooks;
use crate::control::{self, Delivered, ErrorKind, ImportItem, Request, Response, StoreFailure};
use crate::delivery::Pipeline;
use crate::mailfmt::{self, Flags, ImportedMessage, maildir, mbox};
use crate::store::{KeptIds, Store, StoreError};

mod dovecot;

mod backup;

mod sieve;

/// sysexits.h codes used by `deliver` (DESIGN.md contract).
pub mod exit {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOUSER: u8 = 67;
    pub const SOFTWARE: u8 = 70;
    pub const CANTCREAT: u8 = 73;
    pub const NOINPUT: u8 = 66;
    pub const IOERR: u8 = 74;
    pub const TEMPFAIL: u8 = 75;
    pub const CONFIG: u8 = 78;
}

#[derive(Parser)]
#[command(
    name = "nestbox",
    version,
    about = "An IMAP/POP3 mail store for small boxes"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "./config.ron")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every configured listener until SIGINT or SIGTERM.
    Serve,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Deliver one RFC 5322 message from standard input (exit codes from sysexits.h).
    Deliver {
        /// The recipient: a user name.
        #[arg(long)]
        user: String,
        /// The mailbox to deliver into (it must exist): where the message goes unless a
        /// filter files it elsewhere. INBOX when omitted.
        #[arg(long)]
        mailbox: Option<String>,
        /// The envelope sender, for Return-Path.
        #[arg(long)]
        from: Option<String>,
    },
    /// Import an mbox file or a maildir (Maildir++ folders become mailboxes).
    Import {
        /// The user whose mailboxes receive the mail.
        #[arg(long)]
        user: String,
        /// For an mbox file: the mailbox to import into.
        #[arg(long, default_value = "INBOX")]
        mailbox: String,
        /// Move a Dovecot user in from their maildir (e.g. ~/Maildir), keeping
        /// UIDVALIDITY, UIDs, POP3 UIDLs, keywords, special-use and subscriptions
        /// (docs/migrate-dovecot.md). The user's mailboxes must not hold mail yet.
        #[arg(long, value_name = "MAILDIR_ROOT", conflicts_with_all = ["path", "mailbox"])]
        dovecot: Option<PathBuf>,
        /// With --dovecot: the user's Pigeonhole Sieve directory (default: `sieve` beside
        /// MAILDIR_ROOT); `.dovecot.sieve` beside it names the active script.
        #[arg(long, value_name = "SIEVE_DIR", requires = "dovecot")]
        sieve: Option<PathBuf>,
        /// An mbox file, a maildir, or a Maildir++ tree.
        #[arg(required_unless_present = "dovecot")]
        path: Option<PathBuf>,
    },
    /// Export mailboxes as mbox or maildir.
    Export {
        /// The user whose mail is exported.
        #[arg(long)]
        user: String,
        /// One mailbox (PATH is then an mbox file or a plain maildir); all when omitted
        /// (PATH is then a folder of mbox files, or a Maildir++ tree).
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long, value_enum)]
        format: Format,
        /// Where to write. An mbox file that exists is not overwritten (the export
        /// stops before writing anything); a maildir that exists gets the messages added.
        path: PathBuf,
    },
    /// Messages and bytes (logical and on disk) per user and mailbox.
    Stats {
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// Compact the database file now (clients wait while it runs: it waits up to 10 s
    /// for a second without client activity first).
    Compact,
    /// Drop the full-text index of one user (or everyone) and build it again: a running
    /// server rebuilds it in the background; without one, this command builds it.
    Reindex {
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// Back up the whole store into one compressed file (a consistent snapshot; a
    /// running server keeps serving).
    Backup {
        /// The backup file to write (it must not exist).
        path: PathBuf,
    },
    /// Restore a backup into an empty data dir.
    Restore {
        /// The backup file.
        path: PathBuf,
        /// Restore here instead of the configured data dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Check that every message is readable and intact and every reference resolves, in
    /// a backup file or (without PATH) the live store; lists problems and exits 65.
    Verify {
        /// A backup file; the live store when omitted.
        path: Option<PathBuf>,
    },
    /// Check the configuration file and exit.
    CheckConfig,
    /// Print the DNS records clients use to find this server (RFC 6186 SRV, RFC 8314
    /// "not offered" records for plaintext, autoconfig/autodiscover names).
    DnsRecords,
    /// WebAssembly plugins: list, check, test.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Retention rules (retention plugins).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// A user's Sieve scripts (the filters ManageSieve clients edit).
    Sieve {
        #[command(subcommand)]
        command: sieve::SieveCommand,
    },
    /// ACME certificates (`acme` in the config; docs/http.md).
    Acme {
        #[command(subcommand)]
        command: AcmeCommand,
    },
}

#[derive(Subcommand)]
enum AcmeCommand {
    /// Orders a new certificate now through the running server and waits for it; on
    /// failure the server keeps the certificate it has.
    Renew,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Runs the retention rules now and applies their decisions (through the running
    /// server when there is one, so connected clients see the changes at once).
    Run {
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
        /// Print what would be expunged or moved; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
#[cfg_attr(not(feature = "plugins"), allow(dead_code))]
enum PluginCommand {
    /// The running server's plugins (hooks, health, calls, mean time); without a
    /// server, what the config would load.
    List,
    /// Which worlds a component implements, or why it does not load.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
    },
    /// Runs a filter plugin on a message and prints the verdict.
    Test {
        /// The component (`.wasm`).
        file: PathBuf,
        /// The message (RFC 5322 file).
        #[arg(long)]
        message: PathBuf,
        /// A plugin setting, `key=value` (repeatable).
        #[arg(long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// The user the copy is for.
        #[arg(long, default_value = "user")]
        user: String,
        /// The envelope sender.
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with the default mailboxes.
    Add {
        /// The login name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's password.
    Passwd {
        /// The login name.
        name: String,
        /// Read the new password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete a user and all their mail.
    Del {
        /// The login name.
        name: String,
    },
    /// List users.
    List,
    /// Per-device passwords, each revocable alone.
    AppPassword {
        #[command(subcommand)]
        command: AppPasswordCommand,
    },
}

#[derive(Subcommand)]
enum AppPasswordCommand {
    /// Create a random app password and print it (once: only its hash is kept).
    Add {
        /// The user's login name.
        name: String,
        /// What the password is for, e.g. `phone`.
        label: String,
    },
    /// List a user's app passwords (labels and creation dates).
    List {
        /// The user's login name.
        name: String,
    },
    /// Delete (revoke) one app password.
    Del {
        /// The user's login name.
        name: String,
        /// The label given at `add`.
        label: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One file per mailbox, mboxrd quoting.
    Mbox,
    /// One file per message (Maildir++ folders for the hierarchy).
    Maildir,
}

/// A failed command: what to print and which exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("nestbox: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let config = RawConfig::load(&cli.config).map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    match cli.command {
        Command::Serve => crate::server::serve_from(config, Some(cli.config.clone()))
            .map_err(|e| fail(1, e.to_string())),
        Command::Plugin { command } => plugin_command(&config, command),
        Command::CheckConfig => {
            println!("{}: ok", cli.config.display());
            Ok(())
        }
        // Neither may open (and so create) the configured store.
        Command::Restore { path, data_dir } => backup::restore(&config, &path, data_dir),
        Command::Verify { path: Some(path) } => {
            smol::block_on(backup::verify_backup(&config, &path))
        }
        Command::DnsRecords => {
            let settings = crate::http::clients::MailSettings::configured(&config);
            print!("{}", settings.dns_records(&config));
            Ok(())
        }
        Command::Acme {
            command: AcmeCommand::Renew,
        } => smol::block_on(acme_renew(&config)),
        command => smol::block_on(run_client(config, command)),
    }
}

/// `nestbox acme renew`: only a running server can answer the CA's challenges, so no
/// local mode.
async fn acme_renew(config: &Config) -> Result<(), Failure> {
    let mut client = match control::Client::connect(&config.data_dir).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(fail(
                exit::TEMPFAIL,
                "acme renew needs the running server (nestbox serve)",
            ));
        }
        Err(e) => return Err(fail(exit::TEMPFAIL, format!("control socket: {e}"))),
    };
    let response = client
        .call(&Request::AcmeRenew)
        .await
        .map_err(|e| fail(exit::TEMPFAIL, format!("control socket: {e}")))?;
    match response {
        Response::AcmeRenewed(i) => {
            println!(
                "renewed: {} serial {} expires {} (Unix) fingerprint {}",
                i.names.join(","),
                i.serial,
                i.not_after,
                i.fingerprint
            );
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

/// Where CLI requests go.
pub enum Backend {
    Remote(control::Client),
    Local {
        pipeline: Pipeline,
        hostname: String,
    },
}

impl Backend {
    /// Connects to a running server, or opens the store when none runs. Another CLI
    /// process holding the store is waited for up to 30 seconds.
    pub async fn open(config: &Config) -> Result<Backend, Failure> {
        let mut waited = Duration::ZERO;
        loop {
            match control::Client::connect(&config.data_dir).await {
                Ok(Some(c)) => return Ok(Backend::Remote(c)),
                Ok(None) => {}
                Err(e) => return Err(fail(exit::TEMPFAIL, format!("control socket: {e}"))),
            }
            match Store::open(&config.data_dir, &config.store) {
                Ok(store) => {
                    let hooks = match local_hooks(config) {
                        Ok(h) => h,
                        Err(e) => {
                            store.shutdown();
                            return Err(fail(exit::CONFIG, format!("plugins: {e}")));
                        }
                    };
                    let pipeline = Pipeline::new(
                        store,
                        &config.hostname,
                        config.limits.max_message_size,
                        hooks,
                    );
                    return Ok(Backend::Local {
                        pipeline,
                        hostname: config.hostname.clone(),
                    });
                }
                Err(StoreError::Locked) if waited < Duration::from_secs(30) => {
                    smol::Timer::after(Duration::from_millis(200)).await;
                    waited += Duration::from_millis(200);
                }
                Err(StoreError::Locked) => {
                    return Err(fail(
                        exit::TEMPFAIL,
                        "the store is in use by another nestbox process",
                    ));
                }
                Err(e) => return Err(fail(exit::TEMPFAIL, format!("cannot open the store: {e}"))),
            }
        }
    }

    pub async fn call(&mut self, req: Request) -> Result<Response, Failure> {
        match self {
            Backend::Remote(c) => c
                .call(&req)
                .await
                .map_err(|e| fail(exit::TEMPFAIL, format!("control socket: {e}"))),
            Backend::Local { pipeline, hostname } => {
                Ok(control::execute(pipeline, hostname, req).await)
            }
        }
    }

    /// Sends a request whose only success is `Done`.
    pub async fn call_done(&mut self, req: Request) -> Result<(), Failure> {
        match self.call(req).await? {
            Response::Done => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Local mode: packs what the import left loose and compacts the file before the
    /// store closes (a server does that by itself, in the background).
    pub async fn finish_packing(&self) {
        if let Backend::Local { pipeline, .. } = self {
            eprintln!("nestbox: packing the imported mail");
            let store = pipeline.store.clone();
            smol::unblock(move || store.finish_packing()).await;
            // redb grew the file ahead of its use (sparsely, so `ls -l` showed about twice
            // what `du` did after a 1 GiB import) and the loose copies' pages are free in
            // it: give both back, so the data dir is its final size when import returns.
            eprintln!("nestbox: compacting the store");
            if let Err(e) = pipeline.store.compact(true).await {
                eprintln!("nestbox: compaction skipped: {e}");
            }
        }
    }

    /// Lets queued writes finish (local mode).
    pub fn close(self) {
        if let Backend::Local { pipeline, .. } = self {
            pipeline.store.shutdown();
        }
    }
}

fn response_error(kind: ErrorKind, text: String) -> Failure {
    let code = match kind {
        ErrorKind::NoSuchUser => exit::NOUSER,
        ErrorKind::NotFound | ErrorKind::Invalid => exit::DATAERR,
        ErrorKind::Temporary => exit::TEMPFAIL,
        ErrorKind::Internal => exit::SOFTWARE,
    };
    fail(code, text)
}

fn unexpected(r: Response) -> Failure {
    match r {
        Response::Error(kind, text) => response_error(kind, text),
        other => fail(exit::SOFTWARE, format!("unexpected response: {other:?}")),
    }
}

fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| fail(exit::IOERR, format!("cannot read the password: {e}")))?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    crate::auth::check_new_password(&pw).map_err(|e| fail(exit::DATAERR, e))?;
    Ok(pw)
}

async fn run_client(config: Config, command: Command) -> Result<(), Failure> {
    // Hash before connecting: argon2 is slow on purpose, and the password never leaves
    // this process.
    let hash = |config: &Config| -> Result<String, Failure> {
        let pw = read_password()?;
        crate::auth::hash_password(&pw, &config.auth.argon2)
            .map_err(|e| fail(exit::SOFTWARE, e.to_string()))
    };
    let request_hash = match &command {
        Command::User {
            command: UserCommand::Add { .. } | UserCommand::Passwd { .. },
        } => Some(hash(&config)?),
        _ => None,
    };
    let mut backend = Backend::open(&config).await?;
    let result = run_command(&config, &mut backend, command, request_hash).await;
    backend.close();
    result
}

async fn app_password(
    config: &Config,
    backend: &mut Backend,
    command: AppPasswordCommand,
) -> Result<(), Failure> {
    match command {
        AppPasswordCommand::Add { name, label } => {
            crate::store::check_label(&label).map_err(|e| fail(exit::DATAERR, e.to_string()))?;
            // Generated and hashed here: the password never crosses the control socket.
            let password = crate::auth::generate_app_password();
            let hash = crate::auth::hash_password(&password, &config.auth.argon2)
                .map_err(|e| fail(exit::SOFTWARE, e.to_string()))?;
            backend
                .call_done(Request::AppPasswordAdd {
                    name: name.clone(),
                    label: label.clone(),
                    hash,
                })
                .await?;
            println!("app password {label:?} of {name}: {password}");
            println!("it is shown only this once");
        }
        AppPasswordCommand::List { name } => {
            match backend.call(Request::AppPasswordList { name }).await? {
                Response::AppPasswords(list) => {
                    for a in list {
                        println!("{}\tcreated {}", a.label, a.created);
                    }
                }
                r => return Err(unexpected(r)),
            }
        }
        AppPasswordCommand::Del { name, label } => {
            backend
                .call_done(Request::AppPasswordDel {
                    name: name.clone(),
                    label: label.clone(),
                })
                .await?;
            println!("app password {label:?} of {name} deleted");
        }
    }
    Ok(())
}

async fn run_command(
    config: &Config,
    backend: &mut Backend,
    command: Command,
    hash: Option<String>,
) -> Result<(), Failure> {
    match command {
        Command::User { command } => match command {
            UserCommand::Add { name, .. } => {
                let hash = hash.unwrap_or_default();
                let req = Request::UserAdd {
                    name: name.clone(),
                    hash,
                };
                backend.call_done(req).await?;
                println!("user {name} added");
            }
            UserCommand::Passwd { name, .. } => {
                let hash = hash.unwrap_or_default();
                let req = Request::UserPasswd {
                    name: name.clone(),
                    hash,
                };
                backend.call_done(req).await?;
                println!("password of {name} changed");
            }
            UserCommand::Del { name } => {
                backend
                    .call_done(Request::UserDel { name: name.clone() })
                    .await?;
                println!("user {name} deleted");
            }
            UserCommand::AppPassword { command } => app_password(config, backend, command).await?,
            UserCommand::List => match backend.call(Request::UserList).await? {
                Response::Users(users) => {
                    for u in users {
                        println!("{}", u.name);
                    }
                }
                r => return Err(unexpected(r)),
            },
        },
        Command::Deliver {
            user,
            mailbox,
            from,
        } => {
            let mut raw = Vec::new();
            let limit = config.limits.max_message_size;
            std::io::stdin()
                .lock()
                .take(limit + 1)
                .read_to_end(&mut raw)
                .map_err(|e| fail(exit::TEMPFAIL, format!("cannot read the message: {e}")))?;
            if raw.len() as u64 > limit {
                return Err(fail(
                    exit::CANTCREAT,
                    format!("the message is larger than {limit} bytes"),
                ));
            }
            let req = Request::Deliver {
                user,
                mailbox,
                mail_from: from,
                raw,
            };
            match backend.call(req).await? {
                Response::Delivered(d) => match d.into_iter().next() {
                    Some(Delivered::Stored(_)) | Some(Delivered::Discarded) => {}
                    Some(other) => return Err(delivered_failure(other)),
                    None => return Err(fail(exit::SOFTWARE, "no delivery result")),
                },
                r => return Err(unexpected(r)),
            }
        }
        Command::Import {
            user,
            dovecot: Some(root),
            sieve,
            ..
        } => dovecot::import_dovecot(config, backend, &user, &root, sieve.as_deref()).await?,
        Command::Import {
            user,
            mailbox,
            dovecot: None,
            path: Some(path),
            ..
        } => import(config, backend, &user, &mailbox, &path).await?,
        Command::Import {
            dovecot: None,
            path: None,
            ..
        } => {
            return Err(fail(
                exit::USAGE,
                "import needs a PATH or --dovecot MAILDIR_ROOT",
            ));
        }
        Command::Export {
            user,
            mailbox,
            format,
            path,
        } => export(backend, &user, mailbox, format, &path).await?,
        Command::Stats { user } => match backend.call(Request::Stats { user }).await? {
            Response::Stats(s) => print_stats(&s),
            r => return Err(unexpected(r)),
        },
        Command::Retention {
            command: RetentionCommand::Run { user, dry_run },
        } => match backend.call(Request::Retention { user, dry_run }).await? {
            Response::Retention(r) => {
                print_retention(&r);
                if !r.failures.is_empty() {
                    return Err(fail(
                        exit::SOFTWARE,
                        format!("{} retention rule failures", r.failures.len()),
                    ));
                }
            }
            r => return Err(unexpected(r)),
        },
        Command::Compact => match backend.call(Request::Compact).await? {
            Response::Compacted(done) => println!(
                "{}",
                if done {
                    "compacted"
                } else {
                    "nothing to compact"
                }
            ),
            r => return Err(unexpected(r)),
        },
        Command::Reindex { user } => match backend.call(Request::Reindex { user }).await? {
            Response::Reindexed(n) => {
                println!("full-text index dropped for {n} mailboxes; building it again")
            }
            r => return Err(unexpected(r)),
        },
        Command::Backup { path } => backup::backup(backend, &path).await?,
        Command::Verify { path: None } => backup::verify_live(backend).await?,
        Command::Sieve { command } => sieve::run(config, backend, command).await?,
        Command::Serve
        | Command::CheckConfig
        | Command::DnsRecords
        | Command::Acme { .. }
        | Command::Plugin { .. }
        | Command::Restore { .. }
        | Command::Verify { path: Some(_) } => {}
    }
    Ok(())
}

fn delivered_failure(d: Delivered) -> Failure {
    match d {
        Delivered::Stored(_) | Delivered::Discarded => fail(exit::OK, ""),
        Delivered::TooBig => fail(exit::CANTCREAT, "the message is too big"),
        Delivered::NoSuchMailbox => fail(exit::CANTCREAT, "no such mailbox"),
        Delivered::NoSuchUser => fail(exit::NOUSER, "no such user"),
        Delivered::Loop => fail(
            exit::CANTCREAT,
            "rejected: mail loop: already delivered to this recipient",
        ),
        Delivered::Rejected {
            permanent: true,
            text,
        } => fail(exit::CANTCREAT, format!("rejected: {text}")),
        Delivered::Rejected {
            permanent: false,
            text,
        } => fail(exit::TEMPFAIL, format!("deferred: {text}")),
        Delivered::OverQuota {
            permanent: true,
            text,
        } => fail(exit::CANTCREAT, format!("over quota: {text}")),
        Delivered::OverQuota {
            permanent: false,
            text,
        } => fail(
            exit::TEMPFAIL,
            format!("over quota, try again later: {text}"),
        ),
        Delivered::Failed(StoreFailure::Temporary(e)) => {
            fail(exit::TEMPFAIL, format!("temporary failure: {e}"))
        }
        Delivered::Failed(StoreFailure::Corrupt(e)) => {
            fail(exit::CANTCREAT, format!("cannot store: {e}"))
        }
    }
}

/// `nestbox retention run`: one line per mailbox with something to do, with the UIDs;
/// rule failures on standard error.
fn print_retention(r: &crate::retention::Report) {
    let verb = |done: &'static str, would: &'static str| if r.dry_run { would } else { done };
    let uids = |u: &[u32]| {
        u.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for m in &r.mailboxes {
        if !m.expunged.is_empty() {
            println!(
                "{}/{}: {} {}: {}",
                m.user,
                m.mailbox,
                verb("expunged", "would expunge"),
                m.expunged.len(),
                uids(&m.expunged)
            );
        }
        for (target, moved) in &m.moved {
            println!(
                "{}/{}: {} {} to {target}: {}",
                m.user,
                m.mailbox,
                verb("moved", "would move"),
                moved.len(),
                uids(moved)
            );
        }
    }
    for f in &r.failures {
        eprintln!("nestbox: retention rule failed (nothing of it applied): {f}");
    }
    println!(
        "{}{} users, {} messages reviewed, {} {}, {} {}",
        if r.dry_run { "dry run: " } else { "" },
        r.users,
        r.reviewed,
        r.expunged(),
        verb("expunged", "to expunge"),
        r.moved(),
        verb("moved", "to move"),
    );
}

fn print_stats(s: &crate::store::Stats) {
    println!(
        "{:<24} {:>9} {:>14} {:>14}",
        "user/mailbox", "messages", "logical", "physical"
    );
    for u in &s.users {
        println!(
            "{:<24} {:>9} {:>14} {:>14}",
            u.name, u.messages, u.logical, u.physical
        );
        for m in &u.mailboxes {
            println!(
                "  {:<22} {:>9} {:>14} {:>14}",
                m.name, m.messages, m.logical, m.physical
            );
        }
    }
    println!(
        "store: {} blobs, {} raw bytes, {} compressed, {} in dictionaries, file {} bytes",
        s.blobs, s.blob_raw, s.blob_stored, s.dict_bytes, s.file_bytes
    );
    let mode = s
        .index_mode
        .map(|m| format!(" (store.full_text_index: {m:?})"))
        .unwrap_or_default();
    println!(
        "full-text index: {} bytes, {} messages waiting to be indexed{mode}",
        s.index_bytes, s.index_behind
    );
    println!(
        "disk: file {} bytes, {} allocated on disk, {} free in the file (compaction gives it back)",
        s.file_bytes, s.allocated_bytes, s.free_bytes
    );
    for (name, stored, pages) in &s.tables {
        println!("table {name:<12} {stored:>12} stored {pages:>12} in pages");
    }
}

/// Messages per import request, and the most bytes one request carries.
const IMPORT_BATCH: usize = 128;
const IMPORT_BATCH_BYTES: usize = 8 << 20;

struct Importer<'a> {
    backend: &'a mut Backend,
    user: String,
    batch: Vec<ImportItem>,
    bytes: usize,
    stored: u64,
    failed: u64,
}

impl<'a> Importer<'a> {
    fn new(backend: &'a mut Backend, user: &str) -> Self {
        Importer {
            backend,
            user: user.to_string(),
            batch: Vec::new(),
            bytes: 0,
            stored: 0,
            failed: 0,
        }
    }

    async fn push(
        &mut self,
        mailbox: &str,
        m: ImportedMessage,
        kept: Option<KeptIds>,
    ) -> Result<(), Failure> {
        self.bytes += m.raw.len();
        self.batch.push(ImportItem {
            mailbox: mailbox.to_string(),
            message: m,
            kept,
        });
        if self.batch.len() >= IMPORT_BATCH || self.bytes >= IMPORT_BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.batch);
        self.bytes = 0;
        match self
            .backend
            .call(Request::Import {
                user: self.user.clone(),
                items,
            })
            .await?
        {
            Response::Delivered(results) => {
                for r in results {
                    match r {
                        Delivered::Stored(_) => self.stored += 1,
                        Delivered::Failed(StoreFailure::Temporary(e)) => {
                            return Err(fail(exit::TEMPFAIL, format!("import stopped: {e}")));
                        }
                        other => {
                            self.failed += 1;
                            eprintln!("nestbox: message not imported: {other:?}");
                        }
                    }
                }
                Ok(())
            }
            r => Err(unexpected(r)),
        }
    }
}

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn progress(len: u64, unit_bytes: bool) -> indicatif::ProgressBar {
    // Drawn only when stderr is a terminal.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let template = if unit_bytes {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{bar:40} {pos}/{len} messages eta {eta}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

async fn import(
    config: &Config,
    backend: &mut Backend,
    user: &str,
    mailbox: &str,
    path: &Path,
) -> Result<(), Failure> {
    // Fail early for an unknown user instead of after reading the file.
    match backend
        .call(Request::Mailboxes {
            user: user.to_string(),
        })
        .await?
    {
        Response::Mailboxes(_) => {}
        r => return Err(unexpected(r)),
    }
    let max = usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX);
    // sysexits.h: EX_NOINPUT for an input that does not exist or cannot be read.
    let unreadable = |e: std::io::Error| fail(exit::NOINPUT, format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let mut imp = Importer::new(backend, user);
    if meta.is_dir() {
        let entries =
            maildir::scan_maildir(path).map_err(|e| fail(exit::DATAERR, e.to_string()))?;
        let bar = progress(entries.len() as u64, false);
        for entry in &entries {
            match maildir::read_maildir_message(entry, max) {
                Ok(m) => imp.push(&entry.mailbox, m, None).await?,
                Err(e) => {
                    imp.failed += 1;
                    bar.suspend(|| eprintln!("nestbox: skipped: {e}"));
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    } else {
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let bar = progress(meta.len(), true);
        let reader = BufReader::with_capacity(
            256 << 10,
            Counting {
                inner: file,
                bar: bar.clone(),
            },
        );
        for item in mbox::MboxReader::new(reader, max) {
            match item {
                Ok(m) => imp.push(mailbox, m, None).await?,
                Err(mbox::MboxError::NotMbox) => {
                    bar.finish_and_clear();
                    return Err(fail(
                        exit::DATAERR,
                        format!("{}: {}", path.display(), mbox::MboxError::NotMbox),
                    ));
                }
                Err(e) => {
                    imp.failed += 1;
                    bar.suspend(|| eprintln!("nestbox: skipped: {e}"));
                }
            }
        }
        bar.finish_and_clear();
    }
    imp.flush().await?;
    imp.backend.finish_packing().await;
    println!("imported {} messages, {} failed", imp.stored, imp.failed);
    if imp.failed > 0 {
        return Err(fail(
            exit::DATAERR,
            format!("{} messages could not be imported", imp.failed),
        ));
    }
    Ok(())
}

async fn export(
    backend: &mut Backend,
    user: &str,
    mailbox: Option<String>,
    format: Format,
    path: &Path,
) -> Result<(), Failure> {
    let names: Vec<String> = match &mailbox {
        Some(m) => vec![m.clone()],
        None => match backend
            .call(Request::Mailboxes {
                user: user.to_string(),
            })
            .await?
        {
            Response::Mailboxes(list) => list.into_iter().map(|m| m.name).collect(),
            r => return Err(unexpected(r)),
        },
    };
    let io = |e: std::io::Error| fail(exit::CANTCREAT, format!("{}: {e}", path.display()));
    let targets = names
        .iter()
        .map(|name| match (format, &mailbox) {
            // One mailbox named: it is written to `path` itself, in either format.
            (_, Some(_)) => Ok(path.to_path_buf()),
            (Format::Mbox, None) => Ok(mailfmt::names::mbox_file(path, name)),
            (Format::Maildir, None) if name == "INBOX" => Ok(path.to_path_buf()),
            (Format::Maildir, None) => mailfmt::maildir::folder_path(path, name)
                .map_err(|e| fail(exit::CANTCREAT, e.to_string())),
        })
        .collect::<Result<Vec<PathBuf>, Failure>>()?;
    // An mbox file is written whole: one that exists is the user's, never overwritten.
    // Checked for every mailbox before anything is written. (Maildir files get new
    // names, so exporting into an existing maildir adds to it.)
    if let Format::Mbox = format
        && let Some(there) = targets.iter().find(|t| t.symlink_metadata().is_ok())
    {
        return Err(fail(
            exit::CANTCREAT,
            format!(
                "{}: already exists; export does not overwrite, give a new name",
                there.display()
            ),
        ));
    }
    let mut total = 0u64;
    let mut seq = 0u64;
    for (name, target) in names.iter().zip(targets) {
        let messages = match backend
            .call(Request::Messages {
                user: user.to_string(),
                mailbox: name.clone(),
            })
            .await?
        {
            Response::Messages(m) => m,
            r => return Err(unexpected(r)),
        };
        let mut mbox_out: Option<std::io::BufWriter<std::fs::File>> = None;
        if let Format::Maildir = format {
            for sub in ["cur", "new", "tmp"] {
                std::fs::create_dir_all(target.join(sub)).map_err(io)?;
            }
        }
        if let Format::Mbox = format {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(io)?;
            mbox_out = Some(std::io::BufWriter::new(file));
        }
        for m in messages {
            let raw = match backend
                .call(Request::Message {
                    user: user.to_string(),
                    mailbox: name.clone(),
                    uid: m.uid,
                })
                .await?
            {
                Response::Message(raw) => raw,
                Response::Error(ErrorKind::NotFound, _) => continue,
                r => return Err(unexpected(r)),
            };
            match &mut mbox_out {
                Some(w) => {
                    mbox::write_mbox_message(w, &raw, m.envelope_from.as_deref(), m.internal_date)
                        .map_err(io)?
                }
                None => {
                    seq += 1;
                    let flags = Flags {
                        system: m.flags,
                        keywords: m.keywords,
                    };
                    maildir::write_maildir_message(&target, &raw, &flags, m.internal_date, seq)
                        .map_err(io)?;
                }
            }
            total += 1;
        }
        if let Some(mut w) = mbox_out {
            w.flush().map_err(io)?;
        }
    }
    println!("exported {total} messages from {} mailboxes", names.len());
    Ok(())
}

/// The hooks a local (serverless) command delivers with: the configured plugins.
fn local_hooks(config: &Config) -> Result<Arc<dyn Hooks>, String> {
    #[cfg(feature = "plugins")]
    {
        crate::plugins::hooks_for(config)
    }
    #[cfg(not(feature = "plugins"))]
    {
        let _ = config;
        Ok(Arc::new(crate::contracts::NoHooks))
    }
}

#[cfg(not(feature = "plugins"))]
fn plugin_command(_config: &Config, _command: PluginCommand) -> Result<(), Failure> {
    Err(fail(
        exit::USAGE,
        "this build has no plugin host (cargo feature `plugins`)",
    ))
}

#[cfg(feature = "plugins")]
fn plugin_command(config: &Config, command: PluginCommand) -> Result<(), Failure> {
    use crate::plugins::cli as pc;
    match command {
        PluginCommand::List => {
            let remote = smol::block_on(async {
                match control::Client::connect(&config.data_dir).await {
                    Ok(Some(mut c)) => Some(c.call(&Request::PluginList).await),
                    _ => None,
                }
            });
            match remote {
                Some(Ok(Response::Plugins(list))) => {
                    print!("{}", pc::format_list(&list, true));
                    Ok(())
                }
                Some(Ok(r)) => Err(unexpected(r)),
                Some(Err(e)) => Err(fail(exit::TEMPFAIL, format!("control socket: {e}"))),
                None => {
                    let list = pc::list_local(config).map_err(|e| fail(exit::SOFTWARE, e))?;
                    print!("{}", pc::format_list(&list, false));
                    Ok(())
                }
            }
        }
        PluginCommand::Check { file } => match pc::check(config, &file) {
            Ok(text) => {
                print!("{text}");
                Ok(())
            }
            Err(e) => Err(fail(exit::DATAERR, e)),
        },
        PluginCommand::Test {
            file,
            message,
            settings,
            user,
            from,
        } => {
            let raw = std::fs::read(&message)
                .map_err(|e| fail(exit::IOERR, format!("{}: {e}", message.display())))?;
            let mut map = std::collections::BTreeMap::new();
            for s in settings {
                let Some((k, v)) = s.split_once('=') else {
                    return Err(fail(exit::USAGE, format!("--setting {s:?}: use KEY=VALUE")));
                };
                map.insert(k.to_string(), v.to_string());
            }
            match pc::test(config, &file, raw, map, &user, from) {
                Ok(text) => {
                    print!("{text}");
                    Ok(())
                }
                Err(e) => Err(fail(exit::DATAERR, e)),
            }
        }
    }
}
