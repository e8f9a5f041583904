//! `maxcloud usage [--from TIME] [--to TIME]`

use anyhow::{bail, Result};
use maxcloud_api_model::{Invoice, Quota, Usage};
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use crate::cli::UsageArgs;
use crate::client::segment;
use crate::output::{print_doc, write_stdout, KeyValues, Table};

fn rfc3339(seconds: i64) -> Result<String> {
    Ok(time::OffsetDateTime::from_unix_timestamp(seconds)?.format(&Rfc3339)?)
}

pub async fn run(ctx: &Ctx, args: UsageArgs) -> Result<()> {
    if let Some(month) = &args.invoice {
        return invoice(ctx, month, args.csv).await;
    }
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from >= to {
            bail!("--to ({}) must be after --from ({})", rfc3339(to)?, rfc3339(from)?);
        }
    }
    let mut query = Vec::new();
    for (name, value) in [("from", args.from), ("to", args.to)] {
        if let Some(seconds) = value {
            query.push(format!("{name}={}", segment(&rfc3339(seconds)?)));
        }
    }
    let path =
        if query.is_empty() { "/api/v1/usage".to_string() } else { format!("/api/v1/usage?{}", query.join("&")) };
    let usage: Usage = ctx.client.get(&path).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &usage);
    }
    write_stdout(&usage_table(&usage))
}

fn usage_table(u: &Usage) -> String {
    let p = &u.price_list;
    let mut kv = KeyValues::new();
    kv.add("organization", &u.tenant)
        .add("from", &u.from)
        .add("to", &u.to)
        .add("prices", format!("{} {} per vCPU-second, {} per GiB-second", p.currency, p.vcpu_second, p.gib_second));
    let mut out = kv.render();
    out.push('\n');
    if u.services.is_empty() {
        out.push_str("no usage in this window\n");
        return out;
    }
    let cost = format!("COST ({})", u.currency);
    let mut table = Table::new(["KIND", "NAME", "PODS", "VCPU-SECONDS", "GIB-SECONDS", cost.as_str()]);
    for s in &u.services {
        table.row([
            s.kind.clone(),
            s.name.clone(),
            s.pods.to_string(),
            format!("{:.3}", s.vcpu_seconds),
            format!("{:.3}", s.gib_seconds),
            format!("{:.6}", s.cost),
        ]);
    }
    let t = &u.total;
    table.row([
        "TOTAL".to_string(),
        String::new(),
        String::new(),
        format!("{:.3}", t.vcpu_seconds),
        format!("{:.3}", t.gib_seconds),
        format!("{:.6}", t.cost),
    ]);
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxcloud_api_model::{PriceList, ServiceUsage, UsageTotal};

    #[test]
    fn usage_renders_a_table_with_a_total() {
        let mut usage = Usage {
            tenant: "acme".into(),
            from: "2026-01-01T00:00:00Z".into(),
            to: "2026-01-01T01:00:00Z".into(),
            currency: "EUR".into(),
            price_list: PriceList {
                currency: "EUR".into(),
                vcpu_second: "0.000024".into(),
                gib_second: "0.0000025".into(),
            },
            services: vec![ServiceUsage {
                kind: "App".into(),
                name: "web".into(),
                pods: 1,
                vcpu_seconds: 1800.0,
                gib_seconds: 900.0,
                cost: 0.04545,
            }],
            total: UsageTotal { vcpu_seconds: 1800.0, gib_seconds: 900.0, cost: 0.04545 },
        };
        assert_eq!(
            usage_table(&usage),
            "organization:  acme\n\
             from:          2026-01-01T00:00:00Z\n\
             to:            2026-01-01T01:00:00Z\n\
             prices:        EUR 0.000024 per vCPU-second, 0.0000025 per GiB-second\n\
             \n\
             KIND    NAME   PODS   VCPU-SECONDS   GIB-SECONDS   COST (EUR)\n\
             App     web    1      1800.000       900.000       0.045450\n\
             TOTAL                 1800.000       900.000       0.045450\n"
        );
        usage.services.clear();
        assert!(usage_table(&usage).ends_with("\nno usage in this window\n"));
    }
}

/// `maxcloud usage --invoice [MONTH] [--csv]`
async fn invoice(ctx: &Ctx, month: &str, csv: bool) -> Result<()> {
    let valid = month.len() == 7
        && month.as_bytes()[4] == b'-'
        && month.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
        && (1..=12).contains(&month[5..].parse::<u8>().unwrap_or(0));
    if !month.is_empty() && !valid {
        bail!("--invoice: expected a month as YYYY-MM, got {month:?}");
    }
    let mut query = Vec::new();
    if !month.is_empty() {
        query.push(format!("month={month}"));
    }
    if csv {
        query.push("format=csv".to_string());
        let text = ctx.client.get_text(&format!("/api/v1/usage/invoice?{}", query.join("&"))).await?;
        return write_stdout(&text);
    }
    let invoice: Invoice = ctx.client.get(&format!("/api/v1/usage/invoice?{}", query.join("&"))).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &invoice);
    }
    let mut kv = KeyValues::new();
    kv.add("invoice", &invoice.number).add("organization", &invoice.tenant).add(
        "period",
        format!("{} – {}{}", invoice.from, invoice.to, if invoice.is_final { "" } else { " (preview: month running)" }),
    );
    let mut out = kv.render();
    out.push('\n');
    let amount = format!("AMOUNT ({})", invoice.currency);
    let mut table = Table::new(["KIND", "NAME", "PODS", "VCPU-SECONDS", "GIB-SECONDS", amount.as_str()]);
    for l in &invoice.lines {
        table.row([
            l.kind.clone(),
            l.name.clone(),
            l.pods.to_string(),
            format!("{:.3}", l.vcpu_seconds),
            format!("{:.3}", l.gib_seconds),
            l.amount.clone(),
        ]);
    }
    table.row(["NET".into(), String::new(), String::new(), String::new(), String::new(), invoice.net.clone()]);
    table.row([
        format!("VAT {}%", invoice.vat_percent),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        invoice.vat.clone(),
    ]);
    table.row(["GROSS".into(), String::new(), String::new(), String::new(), String::new(), invoice.gross.clone()]);
    out.push_str(&table.render());
    write_stdout(&out)
}

/// `maxcloud quotas`
pub async fn quotas(ctx: &Ctx) -> Result<()> {
    let quota: Quota = ctx.client.get("/api/v1/quotas").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &quota);
    }
    let limit = |v: Option<i64>, show: &dyn Fn(i64) -> String| v.map(show).unwrap_or_else(|| "unlimited".into());
    let count = |n: i64| n.to_string();
    let vcpu = |m: i64| format!("{} vCPU", m as f64 / 1000.0);
    let gib = |b: i64| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64);
    let (l, u) = (&quota.limits, &quota.used);
    let mut table = Table::new(["QUOTA", "USED", "LIMIT"]);
    table.row(["services".into(), count(u.services), limit(l.services, &count)]);
    table.row(["databases".into(), count(u.databases), limit(l.databases, &count)]);
    table.row(["instances at max scale".into(), count(u.max_scale), limit(l.max_scale, &count)]);
    table.row(["CPU at max scale".into(), vcpu(u.cpu_milli), limit(l.cpu_milli, &vcpu)]);
    table.row(["memory at max scale".into(), gib(u.memory_bytes), limit(l.memory_bytes, &gib)]);
    write_stdout(&table.render())
}
