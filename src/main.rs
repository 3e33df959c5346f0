//! The `nestbox` binary: parses the command line, runs the command, maps the result to an
//! exit code. The work is in the library; see `cli.rs` for the commands.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Info by default; rustls only from error up unless RUST_LOG names it, since it warns
    // on every client that connects by IP address ("Illegal SNI hostname received").
    let mut logger = env_logger::Builder::new();
    logger
        .filter_level(log::LevelFilter::Info)
        .filter_module("rustls", log::LevelFilter::Error);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        logger.parse_filters(&filters);
    }
    logger.format_timestamp_millis().init();
    nestbox::cli::main()
}
