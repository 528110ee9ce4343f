// TEMPORARY wiring on the `store` branch so `host session …` can be tried
// end to end; the lead owns main.rs and redoes this.
mod session_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    /// Home directory (default: $SESSHOST_HOME, else ~/.local/share/sesshost).
    #[arg(long, env = "SESSHOST_HOME")]
    home: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Subcommand)]
enum Top {
    #[command(subcommand)]
    Session(session_cmd::SessionCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = cli
        .home
        .or_else(sesshost_store::default_home)
        .ok_or_else(|| anyhow::anyhow!("no home directory: set SESSHOST_HOME"))?;
    match cli.cmd {
        Top::Session(c) => session_cmd::run(&home, c),
    }
}
