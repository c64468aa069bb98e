//! The `funnel` binary: sets up the runtime, runs the command, reports errors with exit codes.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // candle's element-wise pool fights the GEMM threads on small machines; one thread there is
    // faster. Set before any thread starts, unless the user chose otherwise.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let cli = funnel::cli::Cli::parse();
    if let Err(e) = funnel::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
