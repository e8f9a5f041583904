//! `maxcloud`: the command-line client of the max-cloud REST API.

mod cli;
mod client;
mod commands;
mod config;
mod output;
mod params;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return report_clap_error(&err),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}", error_line(&anyhow::anyhow!("cannot start the async runtime: {e}")));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The single stderr line for an error: `error: <reason>`, causes joined by `: `, line breaks folded.
pub fn error_line(err: &anyhow::Error) -> String {
    format!("error: {}", output::one_line(&format!("{err:#}")))
}

/// Help and version go to stdout as clap prints them; real usage errors become one `error:` line (exit 2).
fn report_clap_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
        }
        _ => {
            eprintln!("{}", clap_error_line(&err.to_string()));
            ExitCode::from(2)
        }
    }
}

/// Folds clap's rendered error to its first paragraph on one line, with a pointer to `--help`.
fn clap_error_line(rendered: &str) -> String {
    let first: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let text = first.join(" ");
    let text = text.strip_prefix("error:").map(str::trim).unwrap_or(&text);
    format!("error: {text} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn error_lines_are_single_lines() {
        let err =
            anyhow::anyhow!("Connection refused\n(os error 111)").context("cannot reach max-cloud API at http://x");
        assert_eq!(
            error_line(&err),
            "error: cannot reach max-cloud API at http://x: Connection refused (os error 111)"
        );
        let api = client::ApiError::Api {
            status: reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_parameters".into(),
            message: "must be a DNS-1123 label".into(),
            field: Some("name".into()),
        };
        assert_eq!(error_line(&api.into()), "error: must be a DNS-1123 label (field: name)");
    }

    fn clap_line(args: &[&str]) -> String {
        let err = cli::Cli::command()
            .try_get_matches_from(std::iter::once("maxcloud").chain(args.iter().copied()))
            .unwrap_err();
        clap_error_line(&err.to_string())
    }

    #[test]
    fn clap_errors_fold_to_one_line() {
        assert_eq!(
            clap_line(&["deploy", "nginx"]),
            "error: the following required arguments were not provided: --name <NAME> (see --help)"
        );
        let line = clap_line(&["list", "--bogus"]);
        assert!(line.starts_with("error: unexpected argument '--bogus' found"), "{line}");
        assert!(!line.contains('\n'));
        let line = clap_line(&["deploy", "x", "--name", "y", "--port", "eighty"]);
        assert!(line.starts_with("error: invalid value 'eighty' for '--port <PORT>'"), "{line}");
    }
}
