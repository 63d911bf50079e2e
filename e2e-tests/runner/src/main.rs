use anyhow::Result;
use clap::Parser;

use policy_runner::cli::{Cli, Command};
use policy_runner::commands;

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => commands::run(&args),
        Command::Bench(args) => commands::bench(&args),
    }
}
