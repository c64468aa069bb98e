//! The `funnel` binary: sets up the runtime, runs the command, reports errors with exit codes.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    funnel::runtime::init();
    let cli = funnel::cli::Cli::parse();
    if let Err(e) = funnel::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
