//! The catalog in a running server lists every type in xrds/ (no Rust per type), every example is orderable with
//! `maxcloud order KIND NAME -f` and `POST /api/v1/orders`, and the very file the order service commits to the
//! tenant repo renders through its composition with the real Crossplane and validates against the upstream CRDs.

use std::path::Path;
use std::time::Duration;

use maxcloud_tests::platform::{crds, has_upstream_schema, parse_yaml_docs, render_with, to_yaml, validate, Functions};
use maxcloud_tests::{cli_command, git, workspace_root, Api, Options, Server};
use serde_json::{json, Value};

fn examples() -> Vec<(String, Value)> {
    let root = workspace_root().join("examples");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root).expect("examples/").map(|e| e.expect("entry").path()).collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").path()).collect();
        files.sort();
        for file in files {
            let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).expect("read")).expect("YAML");
            out.push((file.strip_prefix(&root).expect("prefix").display().to_string(), doc));
        }
    }
    out
}

fn maxcloud(home: &Path, server: &Server, key: &str, args: &[&str]) -> Value {
    let out = cli_command(home, server, Some(key)).args(args).output().expect("run maxcloud");
    assert!(out.status.success(), "maxcloud {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Waits until the order has left `accepted` (merged, or waiting for review in pr_open).
/// Records `domains` as verified for the tenant's App `app`, as a successful `domains verify` does.
async fn verified_domains(server: &Server, slug: &str, app: &str, domains: &[String]) {
    let store = maxcloud_store::Store::connect(&server.sqlite_url()).await.expect("the server's database");
    let tenant = store.tenant_by_slug(slug).await.unwrap().expect("tenant");
    let service = store.resource_by_name(&tenant.id, "App", app).await.unwrap().expect("the App");
    for domain in domains {
        store.claim_domain(&tenant.id, domain, &service.id, app, "test-token").await.expect("claim");
        store.verify_domain(&tenant.id, domain).await.expect("verify");
    }
    store.close().await;
}

async fn settled(api: &Api, id: &str) -> Value {
    for _ in 0..800 {
        let (status, order) = api.get(&format!("/orders/{id}")).await;
        assert_eq!(status, 200, "{order}");
        if order["state"] != "accepted" {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("order {id} still accepted after 20 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_is_orderable_and_what_lands_in_git_renders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key, slug) = anon.register("platform@example.com", "Acme").await;
    let api = anon.with_key(&key);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");

    // The catalog served by the running server lists all five types, each with its JSON Schema.
    let (status, catalog) = api.get("/catalog").await;
    assert_eq!(status, 200, "{catalog}");
    let items = catalog.as_array().or_else(|| catalog["items"].as_array()).expect("catalog list");
    let mut kinds: Vec<&str> = items.iter().map(|t| t["kind"].as_str().expect("kind")).collect();
    kinds.sort();
    assert_eq!(kinds, ["App", "DNSRecord", "Database", "Registry", "Workspace"]);
    for item in items {
        assert!(!item["description"].as_str().unwrap_or("").is_empty(), "{item}");
    }

    let mut placed = Vec::new();
    for (i, (name, example)) in examples().into_iter().enumerate() {
        let kind = example["kind"].as_str().expect("kind").to_string();
        let resource = example["metadata"]["name"].as_str().expect("name").to_string();
        // An App with custom domains is ordered once its domains are verified for it: created without them, the
        // verification recorded as `maxcloud domains add`/`verify` records it (that flow runs against a real DNS
        // server in tests/tests/domains.rs), then ordered whole as an update.
        let domains: Vec<String> = example["spec"]["domains"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if kind == "App" && !domains.is_empty() {
            let mut bare = example["spec"].clone();
            bare.as_object_mut().expect("spec").remove("domains");
            let (status, order) =
                api.post("/orders", &json!({"kind": kind, "name": resource, "parameters": bare})).await;
            assert_eq!(status, 201, "{name}: {order}");
            api.wait_order(order["id"].as_str().unwrap(), "merged", Duration::from_secs(20)).await;
            verified_domains(&server, &slug, &resource, &domains).await;
            let (status, order) = api
                .post(
                    "/orders",
                    &json!({"action": "update", "kind": kind, "name": resource, "parameters": example["spec"]}),
                )
                .await;
            assert_eq!(status, 201, "{name}: {order}");
            placed.push((name, kind, resource, order["id"].as_str().expect("order id").to_string()));
            continue;
        }
        // Alternate the two front doors: the CLI with a parameters file, and the REST API.
        let order = if i % 2 == 0 {
            let file = tmp.path().join(format!("params-{i}.yaml"));
            std::fs::write(&file, to_yaml(&example["spec"])).expect("write params");
            let file = file.display().to_string();
            maxcloud(&home, &server, &key, &["order", &kind, &resource, "-f", &file, "-o", "json"])
        } else {
            let (status, order) =
                api.post("/orders", &json!({"kind": kind, "name": resource, "parameters": example["spec"]})).await;
            assert_eq!(status, 201, "{name}: {order}");
            order
        };
        assert_eq!(order["kind"], kind.as_str(), "{name}: {order}");
        placed.push((name, kind, resource, order["id"].as_str().expect("order id").to_string()));
    }
    // Orders that need review (Database, Registry, Workspace creation) wait in pr_open until approved.
    for (name, kind, _, id) in &placed {
        let order = settled(&api, id).await;
        if order["state"] == "pr_open" {
            assert!(matches!(kind.as_str(), "Database" | "Registry" | "Workspace"), "{name}: {kind} needs no review");
            let (status, body) = api.post(&format!("/orders/{id}/approve"), &json!({})).await;
            assert_eq!(status, 200, "{name}: approve: {body}");
        } else {
            assert!(matches!(kind.as_str(), "App" | "DNSRecord"), "{name}: {kind} is created only after review");
        }
        let order = api.wait_order(id, "merged", Duration::from_secs(20)).await;
        assert_eq!(order["state"], "merged", "{name}: {order}");
    }

    // Render each committed file exactly as Flux would apply it.
    let repo = server.repo_dir(&slug);
    let functions = Functions::start();
    let environment = workspace_root().join("tests/fixtures/platform/environment.yaml");
    let schemas = [
        workspace_root().join("xrds"),
        crds("knative-serving", "KNATIVE_SERVING_VERSION"),
        crds("cloudnative-pg", "CNPG_VERSION"),
        crds("external-dns", "EXTERNAL_DNS_VERSION"),
    ];
    let files = git(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    for (name, kind, resource, id) in &placed {
        let kind_dir = match kind.as_str() {
            "App" => "apps",
            "Database" => "databases",
            "Registry" => "registries",
            "DNSRecord" => "dnsrecords",
            "Workspace" => "workspaces",
            other => panic!("unknown kind {other}"),
        };
        let path = format!("{kind_dir}/{resource}.yaml");
        assert!(files.lines().any(|l| l == path), "{name}: {path} on main:\n{files}");
        let committed = git(&repo, &["show", &format!("main:{path}")]);
        let object = parse_yaml_docs(&committed).remove(0);
        assert_eq!(object["metadata"]["namespace"], format!("mc-{slug}"));
        assert_eq!(object["metadata"]["labels"]["maxcloud.dev/tenant"], slug.as_str());
        assert_eq!(object["metadata"]["annotations"]["maxcloud.dev/order-id"], id.as_str());
        let xr = tmp.path().join(format!("{kind_dir}-{resource}.yaml"));
        std::fs::write(&xr, &committed).expect("write");
        let singular = kind.to_lowercase();
        let rendered = render_with(
            &xr,
            &workspace_root().join(format!("compositions/{singular}.yaml")),
            &workspace_root().join(format!("xrds/{singular}.yaml")),
            &functions,
            None,
            Some(&environment),
        );
        assert!(!rendered.composed.is_empty(), "{name}");
        let checkable: String = std::iter::once(&rendered.xr)
            .chain(rendered.composed.iter())
            .filter(|d| has_upstream_schema(d))
            .map(|d| format!("---\n{}", to_yaml(d)))
            .collect();
        let out = tmp.path().join("rendered.yaml");
        std::fs::write(&out, checkable).expect("write");
        let (ok, report) = validate(&schemas, &out);
        assert!(ok, "{name}: {report}");
    }
}
