//! `maxcloud secrets set NAME KEY=VALUE… [--from-file KEY=PATH] | list | delete NAME`

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use maxcloud_api_model::{SecretInfo, SetSecretRequest};

use super::Ctx;
use crate::cli::SecretsCommand;
use crate::client::segment;
use crate::output::{print_doc, write_stdout, KeyValues, Table};

fn secret_path(name: &str) -> String {
    format!("/api/v1/secrets/{}", segment(name))
}

pub async fn run(ctx: &Ctx, cmd: SecretsCommand) -> Result<()> {
    match cmd {
        SecretsCommand::Set { name, values, from_file } => set(ctx, &name, &values, &from_file).await,
        SecretsCommand::List => list(ctx).await,
        SecretsCommand::Delete { name } => {
            let order = ctx.client.delete(&secret_path(&name)).await?;
            if !ctx.json_or_yaml() {
                eprintln!("secret {name} is being deleted (order {})", order.unwrap_or_default());
            }
            Ok(())
        }
    }
}

/// The values from `KEY=VALUE` arguments and `KEY=PATH` files; a key given twice is refused.
fn collect(values: &[String], from_file: &[String]) -> Result<BTreeMap<String, String>> {
    let mut data = BTreeMap::new();
    let mut add = |key: &str, value: String, item: &str| -> Result<()> {
        if key.is_empty() {
            bail!("invalid \"{item}\": the key before '=' is empty");
        }
        if data.insert(key.to_string(), value).is_some() {
            bail!("key {key:?} is given twice");
        }
        Ok(())
    };
    for item in values {
        let (key, value) = item.split_once('=').ok_or_else(|| anyhow!("invalid \"{item}\": expected KEY=VALUE"))?;
        add(key, value.to_string(), item)?;
    }
    for item in from_file {
        let (key, path) =
            item.split_once('=').ok_or_else(|| anyhow!("invalid --from-file \"{item}\": expected KEY=PATH"))?;
        let value = std::fs::read_to_string(path).with_context(|| format!("--from-file {key}: cannot read {path}"))?;
        add(key, value, item)?;
    }
    if data.is_empty() {
        bail!("give at least one KEY=VALUE or --from-file KEY=PATH");
    }
    Ok(data)
}

async fn set(ctx: &Ctx, name: &str, values: &[String], from_file: &[String]) -> Result<()> {
    let req = SetSecretRequest { data: collect(values, from_file)? };
    let secret: SecretInfo = ctx.client.put(&secret_path(name), &req).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &secret);
    }
    let mut kv = KeyValues::new();
    kv.add("name", &secret.name)
        .add("keys", secret.keys.join(", "))
        .add("status", &secret.status)
        .add("file", &secret.path)
        .add("order", &secret.order_id);
    write_stdout(&kv.render())
}

async fn list(ctx: &Ctx) -> Result<()> {
    let secrets: Vec<SecretInfo> = ctx.client.get("/api/v1/secrets").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &secrets);
    }
    let mut table = Table::new(["NAME", "KEYS", "STATUS", "UPDATED"]);
    for s in &secrets {
        table.row([s.name.clone(), s.keys.join(","), s.status.clone(), s.updated_at.clone()]);
    }
    write_stdout(&table.render())
}
