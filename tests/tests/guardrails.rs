//! Quotas and guardrails (issue 7, part 6): per-organisation limits from the platform's quota file checked when
//! orders are placed (services, databases, instances, CPU and memory at maximum scale), with errors naming the
//! field and nothing written; concurrent orders cannot slip past a limit together; the price estimate before
//! ordering (`maxcloud order --dry-run`); and the monthly invoice from the metering data (JSON and CSV, exact to
//! the cent, VAT from the price list, admins only).

use maxcloud_tests::{cli_command, record_pod_usage, repo_snapshot, Api, Options, Server};
use serde_json::{json, Value};

const QUOTAS: &str = "\
default:
  services: 2
  databases: 1
  max_scale: 15
  cpu: '12'
  memory: 16Gi
tenants:
  big-co:
    services: 3
";

async fn order(api: &Api, action: &str, kind: &str, name: &str, parameters: Value) -> (u16, Value) {
    api.post("/orders", &json!({"action": action, "kind": kind, "name": name, "parameters": parameters})).await
}

fn app(max_scale: i64) -> Value {
    json!({"image": "nginx:1.27", "scaling": {"maxScale": max_scale}})
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_are_checked_when_orders_are_placed() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("quotas.yaml");
    std::fs::write(&file, QUOTAS).unwrap();
    let env = vec![("MAXCLOUD_QUOTAS".to_string(), file.display().to_string())];
    let server = Server::start(&tmp.path().join("data"), Options { env, ..Default::default() });
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@alpha.example", "Alpha").await;
    let api = anon.with_key(&key);

    let (status, quota) = api.get("/quotas").await;
    assert_eq!(status, 200, "{quota}");
    assert_eq!(
        quota["limits"],
        json!({"services": 2, "databases": 1, "max_scale": 15, "cpu_milli": 12000, "memory_bytes": 16i64 << 30})
    );
    assert_eq!(quota["used"]["services"], 0);

    // Apps default to 1 vCPU and 512 MiB per instance: a at 5 instances, b at 10 would need 15 vCPU > 12.
    assert_eq!(order(&api, "create", "App", "a", app(5)).await.0, 201);
    let repo = server.repo_dir(&slug);
    let orders_before = api.get("/orders").await.1.as_array().unwrap().len();
    let (status, body) = order(&api, "create", "App", "b", app(10)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["field"], "parameters.resources.cpu");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("CPU at maximum scale would be 15 vCPU") && message.contains("limit is 12 vCPU"),
        "{message}"
    );
    // The typed facade names its own field.
    let (status, body) = api.post("/services", &json!({"name": "b", "image": "nginx:1.27", "max_scale": 10})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("cpu")), "{body}");
    assert_eq!(order(&api, "create", "App", "b", app(5)).await.0, 201);
    // A third service is one too many.
    let (status, body) = order(&api, "create", "App", "c", app(1)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("name")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("services would be 3"), "{body}");
    // Updates count the difference: a to 6 instances fits (11 vCPU), to 8 does not.
    let (status, body) = order(&api, "update", "App", "a", app(6)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = order(&api, "update", "App", "a", app(8)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("parameters.resources.cpu")), "{body}");
    // Memory is checked too: 2 instances of 8 GiB on top of 11 × 512 MiB exceed 16 GiB.
    let big = json!({"image": "nginx:1.27", "scaling": {"maxScale": 2}, "resources": {"memory": "8Gi"}});
    let (status, body) = order(&api, "update", "App", "b", big).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("parameters.resources.memory")), "{body}");
    // Databases: one.
    assert_eq!(order(&api, "create", "Database", "db", json!({})).await.0, 201);
    let (status, body) = order(&api, "create", "Database", "db2", json!({})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("name")), "{body}");
    let (_, quota) = api.get("/quotas").await;
    assert_eq!(quota["used"]["services"], 2);
    assert_eq!(quota["used"]["databases"], 1);
    assert_eq!(quota["used"]["max_scale"], 6 + 5 + 1, "{quota}");
    // Refused orders wrote nothing but their audit entries.
    for _ in 0..100 {
        if api.get("/orders").await.1.as_array().unwrap().iter().all(|o| o["state"] != "accepted") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let snapshot = repo_snapshot(&repo);
    assert_eq!(api.get("/orders").await.1.as_array().unwrap().len(), orders_before + 3, "b, a's update, db");
    let (_, audit) = api.get("/audit?action=orders.create").await;
    let refused = audit.as_array().unwrap().iter().filter(|e| e["status"] == 422).count();
    assert_eq!(refused, 5, "{audit}");
    // Deleting always works, and frees the slot.
    assert_eq!(order(&api, "delete", "App", "b", Value::Null).await.0, 201);
    assert_eq!(order(&api, "create", "App", "c", app(1)).await.0, 201);
    assert_ne!(repo_snapshot(&repo), snapshot);

    // An organisation with its own limit: three services.
    let (big_key, big_slug) = anon.register("ops@big.example", "Big Co").await;
    assert_eq!(big_slug, "big-co");
    let big = anon.with_key(&big_key);
    for name in ["x", "y", "z"] {
        assert_eq!(order(&big, "create", "App", name, app(1)).await.0, 201, "{name}");
    }
    assert_eq!(order(&big, "create", "App", "w", app(1)).await.0, 422);

    // Concurrent orders cannot slip past the limit together: 8 at once for 2 free slots.
    let (gamma_key, _) = anon.register("ops@gamma.example", "Gamma").await;
    let gamma = anon.with_key(&gamma_key);
    let results = futures::future::join_all((0..8).map(|i| {
        let gamma = gamma.clone();
        async move { order(&gamma, "create", "App", &format!("s{i}"), app(1)).await.0 }
    }))
    .await;
    assert_eq!(results.iter().filter(|s| **s == 201).count(), 2, "{results:?}");
    assert_eq!(results.iter().filter(|s| **s == 422).count(), 6, "{results:?}");

    // The CLI: quotas, the estimate before ordering, and a refusal in one line naming the field.
    let home = tmp.path().join("home");
    let out = cli_command(&home, &server, Some(&key)).args(["quotas"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["services", "2", "2"]), "{table}");
    assert!(table.contains("CPU at max scale") && table.contains("12 vCPU"), "{table}");
    let orders_now = api.get("/orders").await.1.as_array().unwrap().len();
    let out = cli_command(&home, &server, Some(&key))
        .args(["order", "App", "d", "--set", "image=nginx", "--set", "scaling.maxScale=3", "--dry-run"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.starts_with("estimate: EUR 0.00–"), "{stdout}");
    assert!(stdout.contains("0–3 instances of 1 vCPU, 512 MiB"), "{stdout}");
    assert_eq!(api.get("/orders").await.1.as_array().unwrap().len(), orders_now, "--dry-run orders nothing");
    let out = cli_command(&home, &server, Some(&key))
        .args(["order", "App", "d", "--set", "image=nginx", "--set", "scaling.maxScale=3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("estimate: EUR") && stderr.contains("quota exceeded: services would be 3"), "{stderr}");
    assert!(stderr.contains("(field: name)"), "{stderr}");

    // A quota file with a mistake stops the server at start, naming the field.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "default:\n  cpu: lots\n").unwrap();
    let out = std::process::Command::new(maxcloud_tests::bin("maxcloud-server"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("bad-data"))
        .arg("--quotas")
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("default.cpu"), "{stderr}");
}

/// Two replicas on one PostgreSQL (the chart's replicaCount > 1; here the second only takes orders, as with
/// `runWorker: false`, so only the first, which holds the tenant repositories, writes Git): orders of one
/// organisation placed at both at once
/// still cannot slip past a limit together — the quota check holds a PostgreSQL advisory lock of the organisation
/// until the order is stored, not only a lock of its own process.
#[tokio::test(flavor = "multi_thread")]
async fn quotas_hold_across_replicas_on_postgres() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("quotas.yaml");
    std::fs::write(&file, "default:\n  services: 3\n").unwrap();
    let db = maxcloud_tests::postgres_database("mc_quota_replicas");
    let replica = |dir: &str, no_worker: bool| {
        let env = vec![("MAXCLOUD_QUOTAS".to_string(), file.display().to_string())];
        let options = Options { env, database_url: Some(db.clone()), no_worker, ..Default::default() };
        Server::start(&tmp.path().join(dir), options)
    };
    let (one, two) = (replica("one", false), replica("two", true));
    let (key, _) = Api::new(&one).register("ops@replicas.example", "Replicas").await;
    let apis = [Api::new(&one).with_key(&key), Api::new(&two).with_key(&key)];
    assert_eq!(order(&apis[1], "create", "App", "first", app(1)).await.0, 201);
    for round in 0..3 {
        // Two free slots, 12 orders at once, alternating between the replicas.
        let results = futures::future::join_all((0..12).map(|i| {
            let api = apis[i % 2].clone();
            async move { order(&api, "create", "App", &format!("r{round}-{i}"), app(1)).await.0 }
        }))
        .await;
        assert_eq!(results.iter().filter(|s| **s == 201).count(), 2, "round {round}: {results:?}");
        assert_eq!(results.iter().filter(|s| **s == 422).count(), 10, "round {round}: {results:?}");
        let (_, services) = apis[round % 2].get("/quotas").await;
        assert_eq!(services["used"]["services"], 3, "{services}");
        // Free the two slots again for the next round.
        let (_, resources) = apis[0].get("/resources").await;
        for r in resources.as_array().unwrap().iter().filter(|r| r["name"] != "first" && r["status"] != "deleting") {
            let name = r["name"].as_str().unwrap();
            let (status, body) = order(&apis[0], "delete", "App", name, Value::Null).await;
            assert_eq!(status, 201, "{name}: {body}\n{}\n{}", one.log(), two.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn monthly_invoices_from_the_metering_data() {
    let tmp = tempfile::tempdir().unwrap();
    let prices = tmp.path().join("prices.yaml");
    std::fs::write(&prices, "currency: CHF\nvcpu_second: 0.00003\ngib_second: '0.000004'\nvat_percent: '7.7'\n")
        .unwrap();
    let env = vec![("MAXCLOUD_PRICE_LIST".to_string(), prices.display().to_string())];
    let server = Server::start(&tmp.path().join("data"), Options { env, ..Default::default() });
    let anon = Api::new(&server);
    let (key, slug) = anon.register("boss@alpha.example", "Alpha").await;
    let (other_key, _) = anon.register("eve@beta.example", "Beta").await;
    let api = anon.with_key(&key);

    const JAN: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const FEB: i64 = JAN + 31 * 86_400;
    const MI: i64 = 1 << 20;
    record_pod_usage(
        &server,
        &slug,
        &[
            // All of January: 0.5 vCPU × 2,678,400 s × 0.00003 + 0.25 GiB × 2,678,400 s × 0.000004 = 42.8544.
            ("p1", "App", "web", 500, 256 * MI, JAN, Some(FEB)),
            // From New Year's Eve: one hour in January, 3600 × (0.00003 + 0.000004) = 0.1224.
            ("p2", "App", "api", 1000, 1024 * MI, JAN - 3600, Some(JAN + 3600)),
            // 90 s: 0.00306, under a cent.
            ("p3", "Database", "shop-db", 1000, 1024 * MI, JAN, Some(JAN + 90)),
            // February: not on January's invoice.
            ("p4", "App", "web", 500, 256 * MI, FEB, Some(FEB + 3600)),
        ],
    )
    .await;

    let (status, invoice) = api.get("/usage/invoice?month=2026-01").await;
    assert_eq!(status, 200, "{invoice}");
    assert_eq!(
        invoice,
        json!({
            "number": "alpha-2026-01", "tenant": "alpha", "month": "2026-01",
            "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "final": true, "currency": "CHF",
            "lines": [
                {"kind": "App", "name": "api", "pods": 1, "vcpu_seconds": 3600.0, "gib_seconds": 3600.0, "amount": "0.12"},
                {"kind": "App", "name": "web", "pods": 1, "vcpu_seconds": 1339200.0, "gib_seconds": 669600.0, "amount": "42.85"},
                {"kind": "Database", "name": "shop-db", "pods": 1, "vcpu_seconds": 90.0, "gib_seconds": 90.0, "amount": "0.00"},
            ],
            // 42.97 × 7.7 % = 3.30869 → 3.31
            "net": "42.97", "vat_percent": "7.7", "vat": "3.31", "gross": "46.28",
        })
    );
    // CSV for spreadsheets, the same figures.
    let resp = api.req(reqwest::Method::GET, "/usage/invoice?month=2026-01&format=csv").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(resp.headers()["content-disposition"].to_str().unwrap().contains("invoice-alpha-2026-01.csv"));
    let csv = resp.text().await.unwrap();
    assert_eq!(
        csv,
        "invoice,month,currency,kind,name,pods,vcpu_seconds,gib_seconds,amount\n\
         alpha-2026-01,2026-01,CHF,App,api,1,3600.000,3600.000,0.12\n\
         alpha-2026-01,2026-01,CHF,App,web,1,1339200.000,669600.000,42.85\n\
         alpha-2026-01,2026-01,CHF,Database,shop-db,1,90.000,90.000,0.00\n\
         alpha-2026-01,2026-01,CHF,,net,,,,42.97\n\
         alpha-2026-01,2026-01,CHF,,VAT 7.7%,,,,3.31\n\
         alpha-2026-01,2026-01,CHF,,gross,,,,46.28\n"
    );
    // February so far is its own invoice; the running month is a preview.
    let (_, february) = api.get("/usage/invoice?month=2026-02").await;
    assert_eq!(february["lines"].as_array().unwrap().len(), 1, "{february}");
    let (status, current) = api.get("/usage/invoice").await;
    assert_eq!((status, &current["final"]), (200, &json!(false)), "{current}");

    // The CLI: table, JSON and CSV.
    let home = tmp.path().join("home");
    let out = cli_command(&home, &server, Some(&key)).args(["usage", "--invoice", "2026-01"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("alpha-2026-01"), "{table}");
    for row in [
        vec!["NET", "42.97"],
        vec!["VAT", "7.7%", "3.31"],
        vec!["GROSS", "46.28"],
        vec!["App", "web", "1", "1339200.000", "669600.000", "42.85"],
    ] {
        assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == row), "{row:?} in\n{table}");
    }
    let out =
        cli_command(&home, &server, Some(&key)).args(["usage", "--invoice", "2026-01", "--csv"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), csv);
    let out =
        cli_command(&home, &server, Some(&key)).args(["-o", "json", "usage", "--invoice", "2026-01"]).output().unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), invoice);
    for (args, message) in [
        (vec!["usage", "--invoice", "2026-13"], "YYYY-MM"),
        (vec!["usage", "--invoice", "January"], "YYYY-MM"),
        (vec!["usage", "--csv"], "--invoice"),
        (vec!["usage", "--invoice", "2026-01", "--from", "2026-01-01"], "--from"),
    ] {
        let out = cli_command(&home, &server, Some(&key)).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "{args:?}: {stderr}");
    }

    // Bad queries are refused by name; another organisation sees nothing of it; members get 403.
    for (query, status, field) in [
        ("month=2026-13", 400, "month"),
        ("month=2026-1", 400, "month"),
        ("month=2999-01", 422, "month"),
        ("format=xml", 400, "format"),
        ("tenant=beta", 400, "tenant"),
    ] {
        let (got, body) = api.get(&format!("/usage/invoice?{query}")).await;
        assert_eq!((got, body["error"]["field"].as_str()), (status, Some(field)), "{query}: {body}");
    }
    let (status, theirs) = anon.with_key(&other_key).get("/usage/invoice?month=2026-01").await;
    assert_eq!((status, &theirs["lines"], &theirs["net"]), (200, &json!([]), &json!("0.00")));
    let (status, invite) = api.post("/auth/invites", &json!({"email": "dev@alpha.example", "role": "member"})).await;
    assert_eq!(status, 201, "{invite}");
    let (status, joined) = anon.post("/auth/accept-invite", &json!({"token": invite["token"]})).await;
    assert_eq!(status, 201, "{joined}");
    let member = anon.with_key(joined["api_key"].as_str().unwrap());
    assert_eq!(member.get("/usage/invoice?month=2026-01").await.0, 403);
    assert_eq!(member.get("/usage?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z").await.0, 200);
}
