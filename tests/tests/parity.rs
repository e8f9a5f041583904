//! Validation parity: for hundreds of generated orders of every catalog type, valid and invalid, the order
//! service's verdict (catalog: JSON Schema + CEL) equals the verdict of a real kube-apiserver (server-side apply
//! dry-run, strict field validation) on the object the order service would commit, with the CRDs Crossplane
//! derives from the same XRDs (`crossplane xrd convert`).

use std::path::PathBuf;

use kube::api::{Patch, PatchParams};
use kube::discovery::Discovery;
use maxcloud_catalog::{Catalog, ResourceName, ServiceType, TenantSlug};
use maxcloud_testenv::controlplane::dynamic_api;
use maxcloud_testenv::ControlPlane;
use maxcloud_tests::platform::catalog_crds;
use maxcloud_tests::workspace_root;
use serde_json::{json, Map, Value};

/// A generated order: which type, a description of how it was made, the parameters.
struct Case {
    kind: String,
    how: String,
    spec: Value,
}

fn set_path(root: &mut Value, path: &[String], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        *root = value.unwrap_or(Value::Null);
        return;
    };
    let mut node = root;
    for key in parents {
        if !node.get(key).is_some_and(Value::is_object) {
            node[key.as_str()] = Value::Object(Map::new());
        }
        node = node.get_mut(key).expect("just set");
    }
    match value {
        Some(v) => node[last.as_str()] = v,
        None => {
            if let Some(obj) = node.as_object_mut() {
                obj.remove(last);
            }
        }
    }
}

/// Mutations of `seed` derived from the schema node at `path`: wrong types, enum misses, bounds just inside
/// and just outside, too short/long strings, pattern misses, removal of required fields, unknown fields.
fn mutations(schema: &Value, path: &mut Vec<String>, seed: &Value, out: &mut Vec<(String, Value)>) {
    let mut push = |how: String, value: Option<Value>| {
        let mut spec = seed.clone();
        set_path(&mut spec, path, value);
        out.push((how, spec));
    };
    let at = path.join(".");
    match schema["type"].as_str().unwrap_or("") {
        "string" => {
            push(format!("{at}: a number"), Some(json!(12345)));
            if let Some(values) = schema["enum"].as_array() {
                for v in values {
                    push(format!("{at}: enum value {v}"), Some(v.clone()));
                }
                push(format!("{at}: not in the enum"), Some(json!("not-a-choice")));
            }
            if let Some(max) = schema["maxLength"].as_u64() {
                push(format!("{at}: longer than {max}"), Some(json!("a".repeat(max as usize + 1))));
            }
            if schema["minLength"].as_u64().is_some_and(|m| m > 0) {
                push(format!("{at}: empty"), Some(json!("")));
            }
            if schema.get("pattern").is_some() {
                push(format!("{at}: pattern miss"), Some(json!("Not Valid!")));
            }
        }
        "integer" => {
            push(format!("{at}: a string"), Some(json!("7")));
            push(format!("{at}: a fraction"), Some(json!(1.5)));
            if let Some(values) = schema["enum"].as_array() {
                for v in values {
                    push(format!("{at}: enum value {v}"), Some(v.clone()));
                }
                push(format!("{at}: not in the enum"), Some(json!(9999)));
            }
            if let Some(min) = schema["minimum"].as_i64() {
                push(format!("{at}: minimum {min}"), Some(json!(min)));
                push(format!("{at}: below minimum"), Some(json!(min - 1)));
            }
            if let Some(max) = schema["maximum"].as_i64() {
                push(format!("{at}: maximum {max}"), Some(json!(max)));
                push(format!("{at}: above maximum"), Some(json!(max + 1)));
            }
        }
        "boolean" => {
            push(format!("{at}: true"), Some(json!(true)));
            push(format!("{at}: false"), Some(json!(false)));
            push(format!("{at}: a string"), Some(json!("yes")));
        }
        "array" => {
            push(format!("{at}: not an array"), Some(json!("x")));
            push(format!("{at}: empty"), Some(json!([])));
            if let Some(max) = schema["maxItems"].as_u64() {
                let item = seed_item(&schema["items"]);
                push(format!("{at}: more than {max} items"), Some(Value::Array(vec![item; max as usize + 1])));
            }
            // One element mutated in place, when the seed has one.
            let current = path.iter().try_fold(seed, |v, k| v.get(k)).cloned();
            if let Some(Value::Array(items)) = current {
                if let Some(first) = items.first() {
                    let mut inner = Vec::new();
                    mutations(&schema["items"], &mut Vec::new(), first, &mut inner);
                    for (how, item) in inner.into_iter().take(12) {
                        let mut list = items.clone();
                        list[0] = item;
                        push(format!("{at}[0] {how}"), Some(Value::Array(list)));
                    }
                    let mut doubled = items.clone();
                    doubled.push(first.clone());
                    push(format!("{at}: first item repeated"), Some(Value::Array(doubled)));
                }
            }
        }
        "object" => {
            if !path.is_empty() {
                push(format!("{at}: not an object"), Some(json!(5)));
            }
            let mut unknown = path.clone();
            unknown.push("bogusField".into());
            let mut spec = seed.clone();
            set_path(&mut spec, &unknown, Some(json!(1)));
            out.push((format!("{at}: unknown field"), spec));
            for required in schema["required"].as_array().into_iter().flatten() {
                let mut without = path.clone();
                without.push(required.as_str().unwrap_or_default().to_string());
                let mut spec = seed.clone();
                set_path(&mut spec, &without, None);
                out.push((format!("{at}: without required {required}"), spec));
            }
            for (key, child) in schema["properties"].as_object().into_iter().flatten() {
                path.push(key.clone());
                mutations(child, path, seed, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A plausible item for an array schema (to overflow maxItems).
fn seed_item(schema: &Value) -> Value {
    match schema["type"].as_str().unwrap_or("") {
        "string" => json!("a"),
        "integer" => json!(1),
        "boolean" => json!(true),
        _ => json!({}),
    }
}

fn cases(catalog: &Catalog) -> Vec<Case> {
    let mut out = Vec::new();
    let root = workspace_root().join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root).expect("examples").map(|e| e.expect("e").path()).collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("e").path()).collect();
        files.sort();
        // The first example of each type seeds the schema-driven mutations; every example is a valid case.
        for (i, file) in files.iter().enumerate() {
            let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(file).expect("read")).expect("yaml");
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let seed = doc["spec"].clone();
            out.push(Case { kind: kind.clone(), how: format!("example {}", file.display()), spec: seed.clone() });
            if i > 0 {
                continue;
            }
            let ty = catalog.get(&kind).expect("kind in catalog");
            let xrd: Value = serde_saphyr::from_str(
                &std::fs::read_to_string(workspace_root().join("xrds").join(&ty.source)).expect("xrd"),
            )
            .expect("xrd yaml");
            let schema = &xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
            let mut generated = Vec::new();
            mutations(schema, &mut Vec::new(), &seed, &mut generated);
            out.extend(generated.into_iter().map(|(how, spec)| Case { kind: kind.clone(), how, spec }));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_order_service_and_the_api_server_agree_on_every_generated_order() {
    let catalog = Catalog::load_dir(&workspace_root().join("xrds")).expect("catalog");
    let cases = cases(&catalog);
    assert!(cases.len() >= 200, "only {} generated orders", cases.len());

    let cp = ControlPlane::start().await.expect("control plane");
    // The CRDs Crossplane derives from the XRDs, installed as Crossplane would.
    let mut crds = catalog_crds();
    assert_eq!(crds.len(), catalog.len());
    crds.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mc-parity"}}));
    cp.apply(crds).await.expect("the API server accepts the CRDs Crossplane derives from the XRDs");
    let client = cp.client().await.expect("client");
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    let tenant = TenantSlug::parse("parity").expect("slug");
    let params = PatchParams::apply("maxcloud-parity").force().dry_run().validation_strict();

    let (mut valid, mut invalid, mut mismatches) = (0, 0, Vec::new());
    for (i, case) in cases.iter().enumerate() {
        let ty: &ServiceType = catalog.get(&case.kind).expect("type");
        let name = ResourceName::parse(&format!("gen-{i}")).expect("name");
        let ours = ty.validate(&case.spec);
        // The object as the order service would commit it; for refused orders, the raw parameters (what a user
        // applying it with kubectl would send).
        let spec = ours.clone().unwrap_or_else(|_| case.spec.clone());
        let object = ty.build_resource(&tenant, &name, "ord-parity", &spec);
        let (api, _) = dynamic_api(&client, &discovery, &object).expect("served kind");
        let theirs = api.patch(name.as_str(), &params, &Patch::Apply(&object)).await;
        match (&ours, &theirs) {
            (Ok(_), Ok(_)) => valid += 1,
            // Refusals: validation (422), and server-side apply refusing to build the typed object at all (500
            // "failed to create typed patch object": wrong types, duplicate list keys, undeclared fields).
            (Err(_), Err(kube::Error::Api(status)))
                if status.code == 422 || status.code == 400 || status.message.contains("typed patch object") =>
            {
                invalid += 1
            }
            _ => mismatches.push(format!(
                "{} {} ({}): order service {}, API server {}",
                case.kind,
                name.as_str(),
                case.how,
                match &ours {
                    Ok(_) => "accepts".to_string(),
                    Err(e) =>
                        format!("refuses {}", e.iter().map(ToString::to_string).take(3).collect::<Vec<_>>().join("; ")),
                },
                match &theirs {
                    Ok(_) => "accepts".to_string(),
                    Err(kube::Error::Api(status)) => format!("refuses ({}): {:.300}", status.code, status.message),
                    Err(e) => format!("fails: {e}"),
                }
            )),
        }
    }
    eprintln!("parity: {} orders, {valid} valid, {invalid} invalid, {} mismatches", cases.len(), mismatches.len());
    assert!(valid >= 40 && invalid >= 100, "a mix of valid ({valid}) and invalid ({invalid}) orders");
    assert!(mismatches.is_empty(), "{} verdicts differ:\n{}", mismatches.len(), mismatches.join("\n"));
}
