//! The `nestbox` binary: parses the command line, runs the command, maps the result to an
//! exit code. The work is in the library; see `cli.rs` for the commands.

use std::process::ExitCode;

fn main() -> ExitCode {
    let env = env_logger::Env::default().default_filter_or("info");
    env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .init();
    nestbox::cli::main()
}
