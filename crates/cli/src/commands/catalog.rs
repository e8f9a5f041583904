//! `maxcloud catalog [KIND]`

use anyhow::{bail, Result};
use maxcloud_api_model::CatalogEntry;
use serde_json::Value;

use super::Ctx;
use crate::output::{one_line, print_doc, write_stdout, KeyValues, Table, NONE};

pub async fn run(ctx: &Ctx, kind: Option<&str>) -> Result<()> {
    let entries: Vec<CatalogEntry> = ctx.client.get("/api/v1/catalog").await?;
    let Some(kind) = kind else {
        if ctx.json_or_yaml() {
            return print_doc(ctx.format, &entries);
        }
        let mut table = Table::new(["KIND", "DESCRIPTION", "API-VERSION"]);
        for e in &entries {
            table.row([e.kind.clone(), e.description.clone(), e.api_version.clone()]);
        }
        return write_stdout(&table.render());
    };
    let Some(entry) = entries.iter().find(|e| e.kind.eq_ignore_ascii_case(kind) || e.plural.eq_ignore_ascii_case(kind))
    else {
        let known: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        bail!("no catalog entry \"{kind}\" (available: {})", known.join(", "));
    };
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, entry);
    }
    write_stdout(&entry_details(entry))
}

fn entry_details(e: &CatalogEntry) -> String {
    let mut kv = KeyValues::new();
    kv.add("kind", &e.kind)
        .add("api-version", &e.api_version)
        .add("plural", &e.plural)
        .add("description", &e.description);
    if !e.merge_policy.is_empty() {
        let policy: Vec<String> = e.merge_policy.iter().map(|(action, p)| format!("{action}={p}")).collect();
        kv.add("merge policy", policy.join(" "));
    }
    let mut out = kv.render();
    let mut table = Table::new(["PARAMETER", "TYPE", "DEFAULT", "DESCRIPTION"]);
    for p in parameters(&e.schema, &e.ui_order) {
        table.row([p.name, p.ty, p.default, p.description]);
    }
    out.push('\n');
    out.push_str(&table.render());
    if !e.rules.is_empty() {
        out.push_str("\nrules:\n");
        for r in &e.rules {
            let at = if r.path.is_empty() { String::new() } else { format!("{}: ", r.path) };
            out.push_str(&format!("  {at}{} ({})\n", one_line(&r.rule), one_line(&r.message)));
        }
    }
    out
}

/// One parameter line of `maxcloud catalog KIND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub ty: String,
    pub default: String,
    pub description: String,
}

/// Walks `schema.properties` depth-first: nested objects as `a.b`, array items as `a[].b`. The top
/// level follows `ui_order`, then the remaining names.
pub fn parameters(schema: &Value, ui_order: &[String]) -> Vec<Parameter> {
    let mut out = Vec::new();
    walk(schema, "", ui_order, &mut out);
    out
}

fn walk(schema: &Value, prefix: &str, order: &[String], out: &mut Vec<Parameter>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&String> = order.iter().filter(|n| props.contains_key(n.as_str())).collect();
    names.extend(props.keys().filter(|k| !order.contains(k)));
    for key in names {
        let prop = &props[key.as_str()];
        let name = format!("{prefix}{key}");
        let mut description = prop.get("description").and_then(Value::as_str).map(one_line).unwrap_or_default();
        if required.contains(&key.as_str()) {
            description = format!("(required) {description}").trim_end().to_string();
        }
        out.push(Parameter {
            name: name.clone(),
            ty: type_of(prop),
            default: prop.get("default").map(|d| d.to_string()).unwrap_or_else(|| NONE.to_string()),
            description,
        });
        walk(prop, &format!("{name}."), &[], out);
        if let Some(items) = prop.get("items") {
            walk(items, &format!("{name}[]."), &[], out);
        }
    }
}

fn type_of(prop: &Value) -> String {
    if prop.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return "int-or-string".into();
    }
    let base = prop.get("type").and_then(Value::as_str).unwrap_or("any").to_string();
    let mut ty = if base == "array" {
        let item = prop.get("items").map(type_of).unwrap_or_else(|| "any".into());
        format!("array<{item}>")
    } else {
        base
    };
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        let values: Vec<String> =
            values.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect();
        ty = format!("{ty} ({})", values.join("|"));
    }
    ty
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_nested_properties() {
        let schema = json!({
            "type": "object",
            "required": ["image"],
            "properties": {
                "visibility": {"type": "string", "enum": ["public", "internal"], "default": "public"},
                "image": {"type": "string", "description": "Container\n image."},
                "scaling": {"type": "object", "properties": {
                    "maxScale": {"type": "integer", "default": 3},
                    "minScale": {"type": "integer", "default": 0}
                }},
                "env": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}
                }}},
                "port": {"x-kubernetes-int-or-string": true}
            }
        });
        let params = parameters(&schema, &["image".to_string(), "scaling".to_string()]);
        let rows: Vec<(String, String, String, String)> =
            params.into_iter().map(|p| (p.name, p.ty, p.default, p.description)).collect();
        let s = |a: &str, b: &str, c: &str, d: &str| (a.to_string(), b.to_string(), c.to_string(), d.to_string());
        assert_eq!(
            rows,
            vec![
                s("image", "string", "-", "(required) Container image."),
                s("scaling", "object", "-", ""),
                s("scaling.maxScale", "integer", "3", ""),
                s("scaling.minScale", "integer", "0", ""),
                s("env", "array<object>", "-", ""),
                s("env[].name", "string", "-", ""),
                s("port", "int-or-string", "-", ""),
                s("visibility", "string (public|internal)", "\"public\"", ""),
            ]
        );
    }
}
