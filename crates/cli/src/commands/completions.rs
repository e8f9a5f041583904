//! `maxcloud completions bash|zsh|fish|...`

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(shell: Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "maxcloud", &mut script);
    crate::output::write_stdout(&String::from_utf8_lossy(&script))
}
