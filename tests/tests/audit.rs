//! The audit log (BSI C5): every mutating call — who, tenant, what, when, from where, result — queryable by the
//! organisation's admins through `GET /api/v1/audit` and `maxcloud audit`, exportable as JSON lines, never
//! another tenant's, never for members; bad queries are refused by name.

use maxcloud_tests::{cli, Api, Options, Server};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn admins_read_and_export_their_audit_log() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key, _) = anon.register("boss@example.com", "Audit Co").await;
    let (other_key, _) = anon.register("eve@example.com", "Other Co").await;
    let api = anon.with_key(&key);
    let other = anon.with_key(&other_key);

    // Calls to audit: accepted, refused, and one for somebody a front end acted for.
    assert_eq!(
        api.post("/orders", &json!({"kind": "App", "name": "shop", "parameters": {"image": "nginx"}})).await.0,
        201
    );
    let (status, _) =
        api.post("/orders", &json!({"kind": "App", "name": "bad", "parameters": {"scaling": {"maxScale": 0}}})).await;
    assert_eq!(status, 422);
    let rb = api
        .req(reqwest::Method::POST, "/orders")
        .header("x-maxcloud-on-behalf-of", "user:default/jane")
        .json(&json!({"kind": "App", "name": "blog", "parameters": {"image": "nginx"}}));
    assert_eq!(api.send(rb).await.0, 201);
    assert_eq!(
        other.post("/orders", &json!({"kind": "App", "name": "theirs", "parameters": {"image": "x"}})).await.0,
        201
    );

    let (status, log) = api.get("/audit").await;
    assert_eq!(status, 200, "{log}");
    let entries = log.as_array().unwrap();
    let orders: Vec<&Value> = entries.iter().filter(|e| e["action"] == "orders.create").collect();
    assert_eq!(orders.len(), 3, "{log}");
    // Newest first; who, what, when, from where, result.
    assert_eq!(orders[0]["actor"], "boss@example.com for user:default/jane");
    assert_eq!(orders[0]["status"], 201);
    assert_eq!(orders[1]["status"], 422);
    assert!(orders[1]["detail"].as_str().unwrap().contains("parameters.scaling.maxScale"), "{log}");
    assert_eq!(orders[2]["target"].as_str().map(|t| t.starts_with("App/shop order/")), Some(true));
    assert!(entries.iter().all(|e| e["source"] == "127.0.0.1"), "from where: {log}");
    assert!(entries.iter().all(|e| e["at"].as_str().unwrap().ends_with('Z')));
    assert!(!log.to_string().contains("theirs") && !log.to_string().contains("eve@"), "another tenant's entries");

    // Filters: action, window, limit.
    assert_eq!(api.get("/audit?action=orders.create&limit=1").await.1.as_array().unwrap().len(), 1);
    let newest = orders[0]["at"].as_str().unwrap().to_string();
    let (_, older) = api.get(&format!("/audit?action=orders.create&until={}", newest.replace('+', "%2B"))).await;
    assert_eq!(older.as_array().unwrap().len(), 2, "{older}");
    assert_eq!(api.get("/audit?since=2100-01-01T00:00:00Z").await.1, json!([]));

    // Export as JSON lines.
    let resp = api.req(reqwest::Method::GET, "/audit?format=jsonl&action=orders.create").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], orders[0].clone());

    // Bad queries: refused naming the parameter, and (a GET) nothing written.
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("action=orders%20create", "action"),
        ("format=csv", "format"),
        ("tenant=other-co", "tenant"),
    ] {
        let (status, body) = api.get(&format!("/audit?{query}")).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
    assert_eq!(api.get("/audit").await.1.as_array().unwrap().len(), entries.len(), "queries are not audited");
    assert_eq!(anon.get("/audit").await.0, 401);

    // Members may not read it.
    let (_, invite) = api.post("/auth/invites", &json!({"email": "dev@example.com"})).await;
    let (_, joined) = anon.post("/auth/accept-invite", &json!({"token": invite["token"]})).await;
    let member = anon.with_key(joined["api_key"].as_str().unwrap());
    assert_eq!(member.get("/audit").await.0, 403);

    // The CLI: a table, and the JSON lines export.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--api-key", key.as_str()];
        all.extend_from_slice(args);
        let out = cli(&home, &server, &all);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, table, err) = run(&["audit", "--action", "orders.create"]);
    assert!(ok, "{err}");
    assert!(
        table.contains("ACTOR") && table.contains("boss@example.com for user:default/jane") && table.contains("422"),
        "{table}"
    );
    let (ok, jsonl, err) = run(&["audit", "--jsonl", "--limit", "2"]);
    assert!(ok, "{err}");
    assert_eq!(jsonl.lines().count(), 2, "{jsonl}");
    assert!(jsonl.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    let (ok, _, err) = run(&["audit", "--since", "2026-02-01", "--until", "2026-01-01"]);
    assert!(!ok && err.contains("--until"), "{err}");
    let (ok, _, err) = run(&["audit", "--limit", "0"]);
    assert!(!ok && err.contains("--limit"), "{err}");
}

/// "From where" behind an ingress: the client `X-Forwarded-For` names is believed only from `--trusted-proxies`;
/// anybody else's header is ignored, so nobody picks the address the audit log records.
#[tokio::test(flavor = "multi_thread")]
async fn forwarded_clients_are_recorded_only_behind_trusted_proxies() {
    let tmp = tempfile::tempdir().unwrap();
    let order = json!({"kind": "App", "name": "shop", "parameters": {"image": "nginx"}});
    let sources = |log: &Value| -> Vec<String> {
        log.as_array().unwrap().iter().map(|e| e["source"].as_str().unwrap_or("").to_string()).collect()
    };

    // Untrusted: the TCP peer, whatever the header says.
    let plain = Server::start(&tmp.path().join("plain"), Options::default());
    let anon = Api::new(&plain);
    let (key, _) = anon.register("ops@example.com", "Plain Co").await;
    let api = anon.with_key(&key);
    let spoofed = api.req(reqwest::Method::POST, "/orders").header("x-forwarded-for", "203.0.113.7").json(&order);
    assert_eq!(api.send(spoofed).await.0, 201);
    let (_, log) = api.get("/audit?action=orders.create").await;
    assert_eq!(sources(&log), ["127.0.0.1"], "{log}");

    // Trusted (the test is the proxy, on loopback): the rightmost hop outside the trusted networks.
    let proxied = Server::start(
        &tmp.path().join("proxied"),
        Options {
            env: vec![("MAXCLOUD_TRUSTED_PROXIES".into(), "127.0.0.0/8, 10.0.0.0/8".into())],
            ..Default::default()
        },
    );
    let anon = Api::new(&proxied);
    let (key, slug) = anon.register("ops@example.com", "Proxied Co").await;
    let api = anon.with_key(&key);
    for (i, forwarded) in [
        vec!["203.0.113.7"],
        // A forged entry the client wrote on the left, then the load balancer's own address (trusted).
        vec!["198.51.100.66, 203.0.113.8", "10.1.2.3"],
        vec!["[2001:db8::5]:443"],
        vec![],
    ]
    .into_iter()
    .enumerate()
    {
        let mut rb = api.req(reqwest::Method::POST, "/orders");
        for value in forwarded {
            rb = rb.header("x-forwarded-for", value);
        }
        let order = json!({"kind": "App", "name": format!("app-{i}"), "parameters": {"image": "nginx"}});
        assert_eq!(api.send(rb.json(&order)).await.0, 201);
    }
    let (_, log) = api.get("/audit?action=orders.create").await;
    // Newest first.
    assert_eq!(sources(&log), ["127.0.0.1", "2001:db8::5", "203.0.113.8", "203.0.113.7"], "{log}");
    // The registry's push grants are recorded the same way.
    let rb = api
        .req(
            reqwest::Method::GET,
            &format!("/registry/token?service=max-cloud-registry&scope=repository:{slug}/shop:push"),
        )
        .header("x-forwarded-for", "203.0.113.9");
    assert_eq!(api.send(rb).await.0, 200);
    let (_, log) = api.get("/audit?action=registry.token").await;
    assert_eq!(sources(&log), ["203.0.113.9"], "{log}");

    // A bad network stops the server, naming the flag.
    let out = std::process::Command::new(maxcloud_tests::bin("maxcloud-server"))
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("bad"))
        .args(["--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--trusted-proxies") && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );
}

/// An API key acts in its own organisation: `X-Maxcloud-Tenant` naming another is refused (403, naming the
/// header) and nothing is ordered; naming its own is fine (the CLI sends it from the credentials file).
#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_cannot_name_another_organisation() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@example.com", "Key Co").await;
    anon.register("eve@example.com", "Other Co").await;
    let api = anon.with_key(&key);
    let order = json!({"kind": "App", "name": "shop", "parameters": {"image": "nginx"}});
    let rb = api.req(reqwest::Method::POST, "/orders").header("x-maxcloud-tenant", "other-co").json(&order);
    let (status, body) = api.send(rb).await;
    assert_eq!((status, body["error"]["field"].as_str()), (403, Some("x-maxcloud-tenant")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&format!("{slug:?}")), "{body}");
    assert_eq!(api.get("/orders").await.1, json!([]), "nothing ordered");
    let rb = api.req(reqwest::Method::POST, "/orders").header("x-maxcloud-tenant", &slug).json(&order);
    assert_eq!(api.send(rb).await.0, 201);

    // The CLI: --tenant names the organisation; a malformed one is refused before any request.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = cli(&home, &server, &["--api-key", &key, "--tenant", "other-co", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("{slug:?}")) && err.contains("--tenant"), "{err}");
    let out = cli(&home, &server, &["--api-key", &key, "--tenant", "Not A Slug", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--tenant"), "{err}");
    let out = cli(&home, &server, &["--api-key", &key, "--tenant", &slug, "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("shop"));
}
