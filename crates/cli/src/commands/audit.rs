//! `maxcloud audit [--since TIME] [--until TIME] [--action A] [--limit N] [--jsonl]`

use anyhow::{bail, Result};
use maxcloud_api_model::AuditRecord;
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use crate::cli::AuditArgs;
use crate::client::segment;
use crate::output::{print_doc, write_stdout, Table};

pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<()> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since >= until {
            bail!("--until must be after --since");
        }
    }
    let mut query = vec![format!("limit={}", args.limit)];
    for (name, value) in [("since", args.since), ("until", args.until)] {
        if let Some(seconds) = value {
            let text = time::OffsetDateTime::from_unix_timestamp(seconds)?.format(&Rfc3339)?;
            query.push(format!("{name}={}", segment(&text)));
        }
    }
    if let Some(action) = &args.action {
        query.push(format!("action={}", segment(action)));
    }
    let records: Vec<AuditRecord> = ctx.client.get(&format!("/api/v1/audit?{}", query.join("&"))).await?;
    if args.jsonl {
        let mut out = String::new();
        for record in &records {
            out.push_str(&serde_json::to_string(record)?);
            out.push('\n');
        }
        return write_stdout(&out);
    }
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &records);
    }
    write_stdout(&table(&records))
}

fn table(records: &[AuditRecord]) -> String {
    if records.is_empty() {
        return "no audit entries\n".to_string();
    }
    let mut table = Table::new(["AT", "ACTOR", "ACTION", "STATUS", "TARGET", "FROM"]);
    for r in records {
        table.row([
            r.at.clone(),
            r.actor.clone().unwrap_or_else(|| "-".into()),
            r.action.clone(),
            r.status.to_string(),
            r.target.clone().or_else(|| r.detail.clone()).unwrap_or_default(),
            r.source.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.render()
}
