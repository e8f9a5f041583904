//! `maxcloud policies [set|reset]`: the organisation's merge policies.

use anyhow::{bail, Result};
use maxcloud_api_model::{MergePolicy, SetMergePolicyRequest};

use super::Ctx;
use crate::cli::{MergePolicyArg, PoliciesCommand};
use crate::client::segment;
use crate::output::{print_doc, write_stdout, Table};

fn path(kind: &str, action: &str) -> String {
    format!("/api/v1/policies/{}/{}", segment(kind), segment(action))
}

fn table(policies: &[MergePolicy]) -> String {
    let mut table = Table::new(["KIND", "ACTION", "POLICY", "APPROVALS", "REVIEWERS", "SET BY"]);
    for p in policies {
        let review = p.policy == "review";
        table.row([
            p.kind.clone(),
            p.action.clone(),
            p.policy.clone(),
            if review { p.required_approvals.to_string() } else { "-".into() },
            if p.reviewers.is_empty() { "-".into() } else { p.reviewers.join(",") },
            p.updated_by.clone().unwrap_or_else(|| "(catalog default)".into()),
        ]);
    }
    table.render()
}

pub async fn run(ctx: &Ctx, command: Option<PoliciesCommand>) -> Result<()> {
    match command {
        None => {
            let policies: Vec<MergePolicy> = ctx.client.get("/api/v1/policies").await?;
            if ctx.json_or_yaml() {
                return print_doc(ctx.format, &policies);
            }
            write_stdout(&table(&policies))
        }
        Some(PoliciesCommand::Set { kind, action, policy, reviewers, approvals }) => {
            if policy == MergePolicyArg::Auto && (!reviewers.is_empty() || approvals.is_some()) {
                bail!("--reviewer and --approvals need the review policy");
            }
            if let Some(n) = approvals {
                if !(1..=10).contains(&n) {
                    bail!("--approvals must be between 1 and 10, got {n}");
                }
                if (reviewers.len() as i64) > n {
                    bail!("--approvals {n} is less than the {} reviewers named", reviewers.len());
                }
            }
            let req = SetMergePolicyRequest {
                policy: match policy {
                    MergePolicyArg::Auto => "auto".into(),
                    MergePolicyArg::Review => "review".into(),
                },
                reviewers,
                required_approvals: approvals,
            };
            let set: MergePolicy = ctx.client.put(&path(&kind, action.as_str()), &req).await?;
            if ctx.json_or_yaml() {
                return print_doc(ctx.format, &set);
            }
            write_stdout(&table(std::slice::from_ref(&set)))
        }
        Some(PoliciesCommand::Reset { kind, action }) => {
            ctx.client.delete(&path(&kind, action.as_str())).await?;
            eprintln!("{kind} {}: back to the catalog's default", action.as_str());
            Ok(())
        }
    }
}
