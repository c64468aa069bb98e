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
    // A signal that came while a cooperative phase was finishing: everything was written.
    if let Some(signal) = funnel::interrupt::requested() {
        funnel::interrupt::exit_now(
            signal,
            "it came as the command finished; its output is whole",
        );
    }
}
