//! `maxcloud logs NAME [--follow] [--tail N]`: a service's container logs, from the server's event stream.

use std::io::Write;

use anyhow::{Context, Result};
use maxcloud_api_model::LogLine;

use super::services::find_by_name;
use super::Ctx;
use crate::cli::LogsArgs;
use crate::client::segment;

pub async fn run(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    let service = find_by_name(ctx, &args.name).await?;
    let path = format!("/api/v1/services/{}/logs?tail={}&follow={}", segment(&service.id), args.tail, args.follow);
    let mut events = ctx.client.events(&path).await?;
    while let Some((event, data)) = events.next().await? {
        match event.as_str() {
            "log" => {
                let line: LogLine = serde_json::from_str(&data).context("a log line the server sent")?;
                // JSON/YAML output: one JSON object per line, for piping.
                let text = if ctx.json_or_yaml() { serde_json::to_string(&line)? } else { render(&line) };
                // A closed pipe (`maxcloud logs -f | head`) ends the command instead of following on.
                let mut out = std::io::stdout().lock();
                match writeln!(out, "{text}").and_then(|()| out.flush()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other.context("cannot write to stdout")?,
                }
            }
            "end" => break,
            _ => {}
        }
    }
    Ok(())
}

/// `TIME REVISION | LINE`, the revision (or pod) telling which version printed it.
fn render(line: &LogLine) -> String {
    let source = line.revision.as_deref().unwrap_or(&line.pod);
    match &line.time {
        Some(time) => format!("{time} {source} | {}", line.line),
        None => format!("{source} | {}", line.line),
    }
}
