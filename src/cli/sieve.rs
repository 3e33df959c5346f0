//! `nestbox sieve list|get|put|activate|del USER [NAME] [FILE]`: a user's Sieve scripts,
//! through the running server's control socket or the store directly (like every CLI
//! command). `put` obeys the `managesieve` script limits and refuses scripts the built-in
//! lexical checker finds broken (with line and column); the full check belongs to the
//! Sieve plugin, which ManageSieve uses.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::{Backend, Failure, exit, fail, unexpected};
use crate::config::Config;
use crate::control::{Request, Response};
use crate::managesieve::{LexicalChecker, SieveChecker};
use crate::store::SieveLimits;

#[derive(Subcommand)]
pub(super) enum SieveCommand {
    /// A user's scripts: name, size in octets, and which one is active.
    List {
        /// The user's login name.
        user: String,
    },
    /// Print one script.
    Get {
        /// The user's login name.
        user: String,
        /// The script's name.
        name: String,
    },
    /// Store a script from FILE, or standard input without FILE (replacing one of that
    /// name; an active script stays active).
    Put {
        /// The user's login name.
        user: String,
        /// The script's name (as ManageSieve clients show it).
        name: String,
        /// The script (RFC 5228, UTF-8); standard input when omitted.
        file: Option<PathBuf>,
    },
    /// Make NAME the script deliveries run; without NAME, deactivate Sieve.
    Activate {
        /// The user's login name.
        user: String,
        /// The script's name.
        name: Option<String>,
    },
    /// Delete a script (not the active one).
    Del {
        /// The user's login name.
        user: String,
        /// The script's name.
        name: String,
    },
}

/// A script from `file` (standard input without), within `managesieve.max_script_bytes`,
/// UTF-8, and passing the lexical check.
pub(super) fn read_script(config: &Config, file: Option<PathBuf>) -> Result<String, Failure> {
    let limit = config.managesieve.max_script_bytes;
    let mut raw = Vec::new();
    let read = match &file {
        Some(path) => {
            std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut raw))
        }
        None => std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut raw),
    };
    let what = file
        .as_ref()
        .map_or("standard input".to_string(), |p| p.display().to_string());
    read.map_err(|e| fail(exit::NOINPUT, format!("cannot read {what}: {e}")))?;
    if raw.len() as u64 > limit {
        return Err(fail(
            exit::DATAERR,
            format!("{what}: the script is larger than managesieve.max_script_bytes ({limit})"),
        ));
    }
    let text = String::from_utf8(raw)
        .map_err(|_| fail(exit::DATAERR, format!("{what}: the script is not UTF-8")))?;
    LexicalChecker
        .check(&text)
        .map_err(|e| fail(exit::DATAERR, format!("{what}: {e}")))?;
    Ok(text)
}

pub(super) async fn run(
    config: &Config,
    backend: &mut Backend,
    command: SieveCommand,
) -> Result<(), Failure> {
    match command {
        SieveCommand::List { user } => match backend.call(Request::SieveList { user }).await? {
            Response::SieveScripts(list) => {
                for s in list {
                    let active = if s.active { "\tactive" } else { "" };
                    println!("{}\t{}{active}", s.name, s.size);
                }
            }
            r => return Err(unexpected(r)),
        },
        SieveCommand::Get { user, name } => {
            match backend.call(Request::SieveGet { user, name }).await? {
                Response::SieveScript(text) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .map_err(|e| fail(exit::IOERR, format!("cannot write: {e}")))?;
                }
                r => return Err(unexpected(r)),
            }
        }
        SieveCommand::Put { user, name, file } => {
            crate::store::check_sieve_name(&name)
                .map_err(|e| fail(exit::DATAERR, e.to_string()))?;
            let text = read_script(config, file)?;
            put(config, backend, &user, &name, text).await?;
            println!("script {name:?} of {user} stored");
        }
        SieveCommand::Activate { user, name } => {
            activate(backend, &user, name.as_deref()).await?;
            match name {
                Some(n) => println!("script {n:?} of {user} is active"),
                None => println!("no script of {user} is active"),
            }
        }
        SieveCommand::Del { user, name } => {
            let req = Request::SieveDel {
                user: user.clone(),
                name: name.clone(),
            };
            backend.call_done(req).await?;
            println!("script {name:?} of {user} deleted");
        }
    }
    Ok(())
}

/// Stores `text` as `user`'s script `name` (replacing one of that name), within the
/// `managesieve` limits.
pub(super) async fn put(
    config: &Config,
    backend: &mut Backend,
    user: &str,
    name: &str,
    text: String,
) -> Result<(), Failure> {
    let req = Request::SievePut {
        user: user.to_string(),
        name: name.to_string(),
        text,
        limits: SieveLimits {
            max_script_bytes: config.managesieve.max_script_bytes,
            max_scripts: config.managesieve.max_scripts,
        },
    };
    backend.call_done(req).await
}

/// Makes `name` the script deliveries run for `user`; `None` deactivates.
pub(super) async fn activate(
    backend: &mut Backend,
    user: &str,
    name: Option<&str>,
) -> Result<(), Failure> {
    let req = Request::SieveActivate {
        user: user.to_string(),
        name: name.map(str::to_string),
    };
    backend.call_done(req).await
}
