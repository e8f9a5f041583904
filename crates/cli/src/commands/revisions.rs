//! `maxcloud revisions | traffic | rollback | domains`: a service's revisions, how requests are split between
//! them, and its custom domains (`/api/v1/services/{id}/revisions|traffic|domains`).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use maxcloud_api_model::{AddDomainRequest, Domain, Revisions, Service, SetTrafficRequest, TrafficTarget};
use reqwest::StatusCode;
use serde::Serialize;

use super::wait::follow_order;
use super::Ctx;
use crate::cli::{DomainsCommand, TrafficArgs, WaitArgs};
use crate::client::segment;
use crate::output::{opt, print_doc, write_stdout, Table};

/// What names the latest revision in a split (`LATEST=10`); upper case, so no revision can be called that.
const LATEST: &str = "LATEST";

async fn service(ctx: &Ctx, name: &str) -> Result<Service> {
    let services: Vec<Service> = ctx.client.get("/api/v1/services").await?;
    services.into_iter().find(|s| s.name == name).ok_or_else(|| anyhow!("no service named \"{name}\""))
}

fn path(id: &str, rest: &str) -> String {
    format!("/api/v1/services/{}/{rest}", segment(id))
}

fn target_label(t: &TrafficTarget) -> String {
    let who = t.revision.clone().unwrap_or_else(|| LATEST.to_string());
    match &t.tag {
        Some(tag) => format!("{who}={}% (tag {tag})", t.percent),
        None => format!("{who}={}%", t.percent),
    }
}

fn print_revisions(ctx: &Ctx, r: &Revisions) -> Result<()> {
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, r);
    }
    let mut table = Table::new(["REVISION", "IMAGE", "TRAFFIC", "TAGS", "ORDER", "CREATED"]);
    for rev in &r.revisions {
        let name = if rev.latest { format!("{} (latest)", rev.name) } else { rev.name.clone() };
        let state =
            if rev.addressable { rev.order_state.clone() } else { format!("{} (not addressable)", rev.order_state) };
        table.row([
            name,
            rev.image.clone(),
            format!("{}%", rev.percent),
            rev.tags.join(","),
            state,
            rev.created_at.clone(),
        ]);
    }
    let mut text = table.render();
    text.push_str(&format!("traffic: {}\n", r.traffic.iter().map(target_label).collect::<Vec<_>>().join(", ")));
    if let Some(c) = &r.cluster {
        let serving: Vec<String> = c
            .traffic
            .iter()
            .map(|t| match (&t.tag, &t.url) {
                (Some(tag), Some(url)) => format!("{}={}% ({tag} {url})", t.revision, t.percent),
                (Some(tag), None) => format!("{}={}% ({tag})", t.revision, t.percent),
                _ => format!("{}={}%", t.revision, t.percent),
            })
            .collect();
        text.push_str(&format!(
            "cluster: latest ready {}, latest created {}, serving {}\n",
            opt(c.latest_ready.as_deref()),
            opt(c.latest_created.as_deref()),
            if serving.is_empty() { "-".to_string() } else { serving.join(", ") }
        ));
    }
    write_stdout(&text)
}

/// `maxcloud revisions NAME`
pub async fn list(ctx: &Ctx, name: &str) -> Result<()> {
    let s = service(ctx, name).await?;
    let r: Revisions = ctx.client.get(&path(&s.id, "revisions")).await?;
    print_revisions(ctx, &r)
}

/// `rev-a=90,rev-b=10` (and `LATEST=N`) as targets; checked before anything is sent.
fn parse_split(text: &str) -> Result<Vec<TrafficTarget>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let Some((rev, percent)) = part.split_once('=') else {
            bail!("traffic split {part:?}: expected REVISION=PERCENT, e.g. r1=90,r2=10 (LATEST=N for the latest revision)")
        };
        let percent: i64 = percent
            .trim()
            .parse()
            .ok()
            .filter(|p| (0..=100).contains(p))
            .ok_or_else(|| anyhow!("traffic split {part:?}: the share must be a whole number from 0 to 100"))?;
        let rev = rev.trim();
        if rev.is_empty() {
            bail!("traffic split {part:?}: the revision name is missing");
        }
        out.push(if rev == LATEST {
            TrafficTarget { revision: None, latest_revision: true, percent, tag: None }
        } else {
            TrafficTarget { revision: Some(rev.to_string()), latest_revision: false, percent, tag: None }
        });
    }
    Ok(out)
}

/// `--tag REV=TAG`: the tag goes on REV's target (added at 0% when the split does not name REV).
fn apply_tags(targets: &mut Vec<TrafficTarget>, tags: &[String]) -> Result<()> {
    for t in tags {
        let Some((rev, tag)) = t.split_once('=') else { bail!("--tag {t:?}: expected REVISION=TAG, e.g. r2=canary") };
        let (rev, tag) = (rev.trim(), tag.trim());
        if rev.is_empty() || tag.is_empty() {
            bail!("--tag {t:?}: expected REVISION=TAG, e.g. r2=canary");
        }
        let latest = rev == LATEST;
        // A tag names one target: moved here from wherever it was (a 0% target kept only for it goes).
        for x in targets.iter_mut().filter(|x| x.tag.as_deref() == Some(tag)) {
            x.tag = None;
        }
        targets.retain(|x| x.tag.is_some() || x.percent > 0 || x.latest_revision);
        let same = |x: &TrafficTarget| if latest { x.latest_revision } else { x.revision.as_deref() == Some(rev) };
        match targets.iter_mut().find(|x| same(x) && x.tag.is_none()) {
            Some(x) => x.tag = Some(tag.to_string()),
            None => targets.push(TrafficTarget {
                revision: (!latest).then(|| rev.to_string()),
                latest_revision: latest,
                percent: 0,
                tag: Some(tag.to_string()),
            }),
        }
    }
    Ok(())
}

/// Tagged targets of named revisions stay reachable at 0% when traffic moves (as the server does for to_latest).
fn kept_tags(current: &Revisions, except: Option<&str>) -> Vec<TrafficTarget> {
    current
        .traffic
        .iter()
        .filter(|t| t.tag.is_some() && t.revision.is_some() && t.revision.as_deref() != except)
        .map(|t| TrafficTarget { percent: 0, ..t.clone() })
        .collect()
}

async fn send_traffic(ctx: &Ctx, s: &Service, req: &SetTrafficRequest, wait: &WaitArgs) -> Result<()> {
    let mut r: Revisions = ctx.client.put(&path(&s.id, "traffic"), req).await?;
    if wait.wait {
        if !ctx.json_or_yaml() {
            eprintln!("changing the traffic of {} (order {})", s.name, r.order_id);
        }
        follow_order(ctx, &r.order_id, Duration::from_secs(wait.timeout)).await?;
        r = ctx.client.get(&path(&s.id, "revisions")).await?;
    }
    print_revisions(ctx, &r)
}

/// `maxcloud traffic NAME rev-a=90,rev-b=10 | --to-latest [--tag REV=TAG]...`
pub async fn traffic(ctx: &Ctx, args: TrafficArgs) -> Result<()> {
    let split = args.split.as_deref().map(parse_split).transpose()?;
    if split.is_some() && args.to_latest {
        bail!("give either a split (r1=90,r2=10) or --to-latest, not both");
    }
    if split.is_none() && !args.to_latest && args.tag.is_empty() {
        bail!("give a split (r1=90,r2=10), --to-latest or --tag REV=TAG");
    }
    apply_tags(&mut Vec::new(), &args.tag)?;
    let s = service(ctx, &args.name).await?;
    let req = match split {
        Some(mut targets) => {
            apply_tags(&mut targets, &args.tag)?;
            SetTrafficRequest { targets: Some(targets), to_latest: false }
        }
        None if args.tag.is_empty() => SetTrafficRequest { targets: None, to_latest: true },
        None => {
            let current: Revisions = ctx.client.get(&path(&s.id, "revisions")).await?;
            let mut targets = if args.to_latest {
                let mut t = vec![TrafficTarget { revision: None, latest_revision: true, percent: 100, tag: None }];
                t.extend(kept_tags(&current, None));
                t
            } else {
                // Only tags: the shares stay as they are.
                current.traffic.clone()
            };
            apply_tags(&mut targets, &args.tag)?;
            SetTrafficRequest { targets: Some(targets), to_latest: false }
        }
    };
    send_traffic(ctx, &s, &req, &args.wait).await
}

/// `maxcloud rollback NAME REV`: all traffic to REV (a revision the service has), tags kept reachable.
pub async fn rollback(ctx: &Ctx, name: &str, revision: &str, wait: &WaitArgs) -> Result<()> {
    let s = service(ctx, name).await?;
    let current: Revisions = ctx.client.get(&path(&s.id, "revisions")).await?;
    match current.revisions.iter().find(|r| r.name == revision) {
        Some(r) if r.addressable => {}
        Some(r) => bail!("revision {revision:?} of {name} cannot take traffic: its order is {}", r.order_state),
        None => {
            let names: Vec<&str> = current.revisions.iter().map(|r| r.name.as_str()).collect();
            let names = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            bail!("service {name} has no revision {revision:?} (revisions: {names})")
        }
    }
    let mut targets =
        vec![TrafficTarget { revision: Some(revision.to_string()), latest_revision: false, percent: 100, tag: None }];
    targets.extend(kept_tags(&current, None));
    send_traffic(ctx, &s, &SetTrafficRequest { targets: Some(targets), to_latest: false }, wait).await
}

fn domain_path(id: &str, domain: &str, rest: &str) -> String {
    format!("/api/v1/services/{}/domains/{}{rest}", segment(id), segment(domain))
}

/// What to do for a domain that is not verified yet.
fn pending_text(service: &str, d: &Domain) -> String {
    format!(
        "{domain} is pending: prove it is yours with this DNS record, then run `maxcloud domains verify {service} {domain}`\n  \
         {name} TXT \"{value}\"\n",
        domain = d.domain,
        name = d.verification.name,
        value = d.verification.value,
    )
}

fn domain_line(d: &Domain) -> String {
    match (&d.state[..], &d.order_id) {
        ("pending", _) => format!("{} pending\n", d.domain),
        (state, Some(order)) => format!("{} {state} (order {order})\n", d.domain),
        (state, None) => format!("{} {state}\n", d.domain),
    }
}

/// `maxcloud domains remove` in json/yaml.
#[derive(Serialize)]
struct Removed<'a> {
    domain: &'a str,
    service: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
}

/// `maxcloud domains add|list|verify|remove`
pub async fn domains(ctx: &Ctx, cmd: DomainsCommand) -> Result<()> {
    match cmd {
        DomainsCommand::Add { name, domain } => {
            let s = service(ctx, &name).await?;
            let resp =
                ctx.client.post_full::<_, Domain>(&path(&s.id, "domains"), &AddDomainRequest { domain }, &[]).await?;
            if ctx.json_or_yaml() {
                return print_doc(ctx.format, &resp.body);
            }
            if resp.status == StatusCode::ACCEPTED {
                return write_stdout(&pending_text(&name, &resp.body));
            }
            write_stdout(&domain_line(&resp.body))
        }
        DomainsCommand::Verify { name, domain } => {
            let s = service(ctx, &name).await?;
            let d: Domain = ctx.client.post(&domain_path(&s.id, &domain, "/verify"), &serde_json::json!({})).await?;
            if ctx.json_or_yaml() {
                return print_doc(ctx.format, &d);
            }
            write_stdout(&domain_line(&d))
        }
        DomainsCommand::List { name } => {
            let s = service(ctx, &name).await?;
            let list: Vec<Domain> = ctx.client.get(&path(&s.id, "domains")).await?;
            if ctx.json_or_yaml() {
                return print_doc(ctx.format, &list);
            }
            let mut table = Table::new(["DOMAIN", "STATE", "TXT RECORD", "VALUE", "ORDER"]);
            for d in &list {
                table.row([
                    d.domain.clone(),
                    d.state.clone(),
                    d.verification.name.clone(),
                    d.verification.value.clone(),
                    opt(d.order_id.as_deref()),
                ]);
            }
            write_stdout(&table.render())
        }
        DomainsCommand::Remove { name, domain } => {
            let s = service(ctx, &name).await?;
            let order = ctx.client.delete(&domain_path(&s.id, &domain, "")).await?;
            if ctx.json_or_yaml() {
                let view = Removed { domain: &domain, service: &name, order_id: order.as_deref() };
                return print_doc(ctx.format, &view);
            }
            match order {
                Some(id) => write_stdout(&format!("removed {domain} from {name} (order {id})\n")),
                None => write_stdout(&format!("removed {domain} from {name}\n")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rev: Option<&str>, percent: i64, tag: Option<&str>) -> TrafficTarget {
        TrafficTarget {
            revision: rev.map(str::to_string),
            latest_revision: rev.is_none(),
            percent,
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn splits_parse_with_latest() {
        assert_eq!(parse_split("r1=90, r2=10").unwrap(), vec![t(Some("r1"), 90, None), t(Some("r2"), 10, None)]);
        assert_eq!(parse_split("LATEST=100").unwrap(), vec![t(None, 100, None)]);
        for bad in ["r1", "r1=", "r1=101", "r1=-1", "=50", "r1=ten"] {
            assert!(parse_split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_attach_or_add_a_zero_share_target_and_move() {
        let mut targets = vec![t(Some("r1"), 100, None)];
        apply_tags(&mut targets, &["r1=stable".into(), "r2=canary".into()]).unwrap();
        assert_eq!(targets, vec![t(Some("r1"), 100, Some("stable")), t(Some("r2"), 0, Some("canary"))]);
        // Moving canary to r3: r2's 0% target, kept only for the tag, goes.
        apply_tags(&mut targets, &["r3=canary".into()]).unwrap();
        assert_eq!(targets, vec![t(Some("r1"), 100, Some("stable")), t(Some("r3"), 0, Some("canary"))]);
        assert!(apply_tags(&mut targets, &["canary".into()]).is_err());
        assert!(apply_tags(&mut targets, &["r1=".into()]).is_err());
    }
}
