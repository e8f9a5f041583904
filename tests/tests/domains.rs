//! Custom domains (issue 7, part 5): `maxcloud domains add|verify|list|remove`. A domain reaches the App (and so
//! its DomainMapping) only after its TXT record `_maxcloud-challenge.<domain>` holds the organisation's token, as
//! served by a real authoritative DNS server (hickory-server) on loopback that the order service is pointed at with
//! `--dns-resolver`. Wrong tokens, another organisation's verified domain, malformed names and other tenants'
//! service ids are refused by field and write nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::authority::{AuthorityObject, Catalog as Zones, ZoneType};
use hickory_server::store::in_memory::InMemoryAuthority;
use hickory_server::ServerFuture;
use maxcloud_catalog::Catalog;
use maxcloud_store::Store;
use maxcloud_tests::{cli_command, git, repo_snapshot, workspace_root, Api, Options, Server};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// An authoritative name server for the zone `test.` on 127.0.0.1 (UDP and TCP on one port).
struct Dns {
    addr: SocketAddr,
    zone: Arc<InMemoryAuthority>,
    serial: AtomicU32,
    _server: ServerFuture<Zones>,
}

impl Dns {
    async fn start() -> Dns {
        let origin = Name::from_ascii("test.").unwrap();
        let mut zone = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
        let soa = SOA::new(
            Name::from_ascii("ns.test.").unwrap(),
            Name::from_ascii("hostmaster.test.").unwrap(),
            1,
            3600,
            600,
            86400,
            60,
        );
        zone.upsert_mut(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1);
        let zone = Arc::new(zone);
        let mut zones = Zones::new();
        zones.upsert(LowerName::new(&origin), vec![zone.clone() as Arc<dyn AuthorityObject>]);
        // UDP and TCP on one port: a free UDP port whose TCP twin is free too.
        let mut tries = 0;
        let (udp, tcp, addr) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp, addr),
                Err(_) if tries < 50 => tries += 1,
                Err(e) => panic!("no port free for both UDP and TCP: {e}"),
            }
        };
        let mut server = ServerFuture::new(zones);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5));
        Dns { addr, zone, serial: AtomicU32::new(1), _server: server }
    }

    /// Publishes a TXT record (added to the name's record set).
    async fn txt(&self, name: &str, value: &str) {
        let serial = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
        let record = Record::from_rdata(
            Name::from_ascii(format!("{name}.")).unwrap(),
            60,
            RData::TXT(TXT::new(vec![value.into()])),
        );
        assert!(self.zone.upsert(record, serial).await, "TXT {name} not added");
    }
}

fn maxcloud(home: &Path, server: &Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = cli_command(home, server, Some(key)).args(args).output().expect("run maxcloud");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Every stored row count (but the audit log) and both tenants' repositories.
async fn snapshot(store: &Store, server: &Server, slugs: &[&str]) -> String {
    let counts = store.table_counts().await.unwrap();
    let repos: Vec<String> = slugs.iter().map(|s| repo_snapshot(&server.repo_dir(s))).collect();
    format!("{counts:?}\n{}", repos.join("\n"))
}

fn domains_on_main(repo: &Path, catalog: &Catalog, name: &str) -> Value {
    let text = git(repo, &["show", &format!("main:apps/{name}.yaml")]);
    let app: Value = serde_saphyr::from_str(&text).unwrap();
    if let Err(errors) = catalog.get("App").unwrap().validate(&app["spec"]) {
        panic!("apps/{name}.yaml on main is not a valid App: {errors:?}\n{text}");
    }
    app["spec"].get("domains").cloned().unwrap_or(json!([]))
}

async fn deploy(api: &Api, name: &str) -> String {
    let (status, svc) = api.post("/services", &json!({"name": name, "image": "nginx:1.27"})).await;
    assert_eq!(status, 201, "{svc}");
    api.wait_order(svc["order_id"].as_str().unwrap(), "merged", WAIT).await;
    svc["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn domains_are_ordered_only_once_their_txt_record_proves_ownership() {
    let dns = Dns::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let server = Server::start(
        &tmp.path().join("data"),
        Options { env: vec![("MAXCLOUD_DNS_RESOLVER".into(), dns.addr.to_string())], ..Default::default() },
    );
    let store = Store::connect(&server.sqlite_url()).await.unwrap();
    let catalog = Catalog::load_dir(&workspace_root().join("xrds")).unwrap();
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@acme.example", "Acme").await;
    let (other_key, other_slug) = anon.register("eve@beta.example", "Beta").await;
    let api = anon.with_key(&key);
    let other = anon.with_key(&other_key);
    let id = deploy(&api, "shop").await;
    let other_id = deploy(&other, "web").await;
    let repo = server.repo_dir(&slug);
    let slugs = [slug.as_str(), other_slug.as_str()];

    // Adding: pending, with the record to create; nothing ordered.
    let before = snapshot(&store, &server, &slugs).await;
    let (ok, stdout, stderr) = maxcloud(&home, &server, &key, &["domains", "add", "shop", "shop.acme.test"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("pending") && stdout.contains("maxcloud domains verify shop shop.acme.test"), "{stdout}");
    let (_, list) = api.get(&format!("/services/{id}/domains")).await;
    let claim = list[0].clone();
    assert_eq!(
        (claim["domain"].as_str(), claim["state"].as_str()),
        (Some("shop.acme.test"), Some("pending")),
        "{list}"
    );
    assert_eq!(claim["verification"]["type"], "TXT");
    assert_eq!(claim["verification"]["name"], "_maxcloud-challenge.shop.acme.test");
    let value = claim["verification"]["value"].as_str().unwrap().to_string();
    assert!(value.starts_with("maxcloud-verify=") && value.len() > 40, "{value}");
    assert!(stdout.contains(&format!("_maxcloud-challenge.shop.acme.test TXT \"{value}\"")), "{stdout}");
    let after = snapshot(&store, &server, &slugs).await;
    assert_eq!(before.replace("\"custom_domains\": 0", "\"custom_domains\": 1"), after, "only the claim is stored");

    // Verifying without the record, and with a wrong token: refused with the record to create, nothing written.
    let verify_path = format!("/services/{id}/domains/shop.acme.test/verify");
    let (status, err) = api.post(&verify_path, &json!({})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str(), err["error"]["field"].as_str()),
        (422, Some("domain_not_verified"), Some("domain")),
        "{err}"
    );
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("_maxcloud-challenge.shop.acme.test")
            && message.contains(&value)
            && message.contains("no TXT record"),
        "{message}"
    );
    dns.txt("_maxcloud-challenge.shop.acme.test", "maxcloud-verify=0123456789abcdef0123456789abcdef").await;
    let (ok, _, stderr) = maxcloud(&home, &server, &key, &["domains", "verify", "shop", "shop.acme.test"]);
    assert!(
        !ok && stderr.starts_with("error: ")
            && stderr.contains("is not verified")
            && stderr.contains("found \"maxcloud-verify=0123"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(snapshot(&store, &server, &slugs).await, after, "refused verifications wrote something");
    assert_eq!(domains_on_main(&repo, &catalog, "shop"), json!([]));

    // The right token (beside the wrong one): verified and ordered; on main once merged, the App still valid.
    dns.txt("_maxcloud-challenge.shop.acme.test", &value).await;
    let (ok, stdout, stderr) = maxcloud(&home, &server, &key, &["domains", "verify", "shop", "shop.acme.test"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("shop.acme.test verified (order "), "{stdout}");
    let (_, list) = api.get(&format!("/services/{id}/domains")).await;
    api.wait_order(list[0]["order_id"].as_str().unwrap(), "merged", WAIT).await;
    assert_eq!(domains_on_main(&repo, &catalog, "shop"), json!(["shop.acme.test"]));
    let (_, list) = api.get(&format!("/services/{id}/domains")).await;
    assert_eq!(list[0]["state"], "active", "{list}");
    assert!(list[0]["verified_at"].is_string());
    // Verifying again changes nothing.
    let head = git(&repo, &["rev-parse", "main"]);
    let (status, again) = api.post(&verify_path, &json!({})).await;
    assert_eq!((status, again["state"].as_str()), (200, Some("active")), "{again}");
    assert_eq!(git(&repo, &["rev-parse", "main"]), head);

    // Another organisation cannot add a domain verified by this one, to any of its services.
    let before = snapshot(&store, &server, &slugs).await;
    let (status, err) =
        other.post(&format!("/services/{other_id}/domains"), &json!({"domain": "shop.acme.test"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (409, Some("domain")), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("another organisation"), "{err}");
    let (ok, _, stderr) = maxcloud(&home, &server, &other_key, &["domains", "add", "web", "shop.acme.test"]);
    assert!(!ok && stderr.contains("verified by another organisation (field: domain)"), "{stderr}");
    // Nor through the generic order path.
    for (action, name) in [("update", "web"), ("create", "copycat")] {
        let params = json!({"image": "nginx:1.27", "domains": ["web.beta.test", "shop.acme.test"]});
        let body = json!({"kind": "App", "action": action, "name": name, "parameters": params});
        let (status, err) = other.post("/orders", &body).await;
        assert_eq!((status, err["error"]["field"].as_str()), (409, Some("parameters.domains[1]")), "{err}");
    }
    // A domain nobody verified does not pass the generic order path either: ownership is proven by the TXT record
    // of `domains add`, never by naming the domain in an order.
    for (action, name) in [("update", "web"), ("create", "copycat")] {
        let params = json!({"image": "nginx:1.27", "domains": ["unproven.beta.test"]});
        let body = json!({"kind": "App", "action": action, "name": name, "parameters": params});
        let (status, err) = other.post("/orders", &body).await;
        assert_eq!((status, err["error"]["code"].as_str()), (422, Some("domain_not_verified")), "{err}");
        assert_eq!(err["error"]["field"], "parameters.domains[0]", "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("maxcloud domains add"), "{err}");
    }
    assert_eq!(snapshot(&store, &server, &slugs).await, before);

    // Both claim blog.acme.test, each with its own token: only the one whose token is published gets it, and the
    // other is refused even once its own record appears.
    let (status, mine) = api.post(&format!("/services/{id}/domains"), &json!({"domain": "blog.acme.test"})).await;
    assert_eq!(status, 202, "{mine}");
    let (status, theirs) =
        other.post(&format!("/services/{other_id}/domains"), &json!({"domain": "blog.acme.test"})).await;
    assert_eq!(status, 202, "{theirs}");
    assert_ne!(mine["verification"]["value"], theirs["verification"]["value"], "tokens are per organisation");
    dns.txt("_maxcloud-challenge.blog.acme.test", mine["verification"]["value"].as_str().unwrap()).await;
    let (status, err) = other.post(&format!("/services/{other_id}/domains/blog.acme.test/verify"), &json!({})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("domain")), "another's token is not theirs: {err}");
    let (status, ok_body) = api.post(&format!("/services/{id}/domains/blog.acme.test/verify"), &json!({})).await;
    // `verified`, or already `active` when the worker merged the order before the answer was built.
    assert!(status == 200 && matches!(ok_body["state"].as_str(), Some("verified" | "active")), "{ok_body}");
    api.wait_order(ok_body["order_id"].as_str().unwrap(), "merged", WAIT).await;
    dns.txt("_maxcloud-challenge.blog.acme.test", theirs["verification"]["value"].as_str().unwrap()).await;
    let before = snapshot(&store, &server, &slugs).await;
    let (status, err) = other.post(&format!("/services/{other_id}/domains/blog.acme.test/verify"), &json!({})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (409, Some("domain")), "{err}");
    assert_eq!(snapshot(&store, &server, &slugs).await, before);
    assert_eq!(domains_on_main(&server.repo_dir(&other_slug), &catalog, "web"), json!([]));

    // Adding again once the record is there verifies at once.
    let (status, www) = api.post(&format!("/services/{id}/domains"), &json!({"domain": "www.acme.test"})).await;
    assert_eq!((status, www["state"].as_str()), (202, Some("pending")), "{www}");
    dns.txt("_maxcloud-challenge.www.acme.test", www["verification"]["value"].as_str().unwrap()).await;
    let (status, www) = api.post(&format!("/services/{id}/domains"), &json!({"domain": "www.acme.test"})).await;
    assert!(status == 201 && matches!(www["state"].as_str(), Some("verified" | "active")), "{www}");
    api.wait_order(www["order_id"].as_str().unwrap(), "merged", WAIT).await;
    assert_eq!(domains_on_main(&repo, &catalog, "shop"), json!(["shop.acme.test", "blog.acme.test", "www.acme.test"]));
    let (ok, table, stderr) = maxcloud(&home, &server, &key, &["domains", "list", "shop"]);
    assert!(ok, "{stderr}");
    assert!(table.contains("www.acme.test") && table.contains("active") && table.contains("TXT RECORD"), "{table}");

    // Malformed names are refused by name before anything is stored or looked up.
    let before = snapshot(&store, &server, &slugs).await;
    let long = format!("{}.test", vec!["a".repeat(57); 4].join("."));
    assert_eq!(long.len(), 236);
    for (domain, says) in [
        ("Shop.Acme.test", "lower case"),
        ("bücher.acme.test", "punycode"),
        ("*.acme.test", "wildcard"),
        (long.as_str(), "longer than 233"),
        ("localhost", "fully qualified"),
        ("shop..acme.test", "empty label"),
        ("shop.acme.test.", "trailing dot"),
        ("shop_1.acme.test", "'_'"),
        ("", "empty"),
    ] {
        let (status, err) = api.post(&format!("/services/{id}/domains"), &json!({"domain": domain})).await;
        assert_eq!((status, err["error"]["field"].as_str()), (422, Some("domain")), "{domain}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(says), "{domain}: {err}");
    }
    let (ok, _, stderr) = maxcloud(&home, &server, &key, &["domains", "add", "shop", "*.acme.test"]);
    assert!(!ok && stderr.contains("wildcard") && stderr.contains("(field: domain)"), "{stderr}");
    let (status, err) = api.post(&format!("/services/{id}/domains"), &json!({"domain": "a.test", "ttl": 5})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("ttl")), "{err}");
    let (status, err) = api.post(&format!("/services/{id}/domains"), &json!({})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("domain")), "{err}");
    let (status, _) = api.post(&format!("/services/{id}/domains/Nope.test/verify"), &json!({})).await;
    assert_eq!(status, 422);
    let (status, _) = api.post(&format!("/services/{id}/domains/unclaimed.acme.test/verify"), &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(snapshot(&store, &server, &slugs).await, before, "malformed names wrote something");
    // A domain already on one of the organisation's services cannot go to another of them.
    let second = deploy(&api, "admin").await;
    let before = snapshot(&store, &server, &slugs).await;
    let (status, err) = api.post(&format!("/services/{second}/domains"), &json!({"domain": "shop.acme.test"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (409, Some("domain")), "{err}");
    assert_eq!(snapshot(&store, &server, &slugs).await, before);

    // Without a key: 401 on every domain endpoint.
    assert_eq!(anon.get(&format!("/services/{id}/domains")).await.0, 401);
    assert_eq!(anon.post(&format!("/services/{id}/domains"), &json!({"domain": "x.acme.test"})).await.0, 401);
    assert_eq!(anon.post(&format!("/services/{id}/domains/shop.acme.test/verify"), &json!({})).await.0, 401);
    assert_eq!(anon.delete(&format!("/services/{id}/domains/shop.acme.test")).await.0, 401);

    // Another organisation's service ids: 404 on every domain endpoint, nothing written.
    let before = snapshot(&store, &server, &slugs).await;
    assert_eq!(other.get(&format!("/services/{id}/domains")).await.0, 404);
    assert_eq!(other.post(&format!("/services/{id}/domains"), &json!({"domain": "x.beta.test"})).await.0, 404);
    assert_eq!(other.post(&format!("/services/{id}/domains/shop.acme.test/verify"), &json!({})).await.0, 404);
    assert_eq!(other.delete(&format!("/services/{id}/domains/shop.acme.test")).await.0, 404);
    // Nor through its own service.
    assert_eq!(other.delete(&format!("/services/{other_id}/domains/shop.acme.test")).await.0, 404);
    assert_eq!(snapshot(&store, &server, &slugs).await, before);

    // Removing: an order takes the domain off the App; the claim goes, the domain is free again.
    let (ok, stdout, stderr) = maxcloud(&home, &server, &key, &["domains", "remove", "shop", "www.acme.test"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("removed www.acme.test from shop (order "), "{stdout}");
    let order = stdout.trim().rsplit("order ").next().unwrap().trim_end_matches(')').to_string();
    api.wait_order(&order, "merged", WAIT).await;
    assert_eq!(domains_on_main(&repo, &catalog, "shop"), json!(["shop.acme.test", "blog.acme.test"]));
    let (status, _) = other.post(&format!("/services/{other_id}/domains"), &json!({"domain": "www.acme.test"})).await;
    assert_eq!(status, 202, "a removed domain can be claimed by others");
    // A pending claim goes without an order.
    let head = git(&repo, &["rev-parse", "main"]);
    api.post(&format!("/services/{id}/domains"), &json!({"domain": "later.acme.test"})).await;
    assert_eq!(api.delete(&format!("/services/{id}/domains/later.acme.test")).await.0, 204);
    assert_eq!(git(&repo, &["rev-parse", "main"]), head);

    // Deploys keep the verified domains (they change only through these endpoints).
    let (status, svc) = api
        .send(
            api.req(reqwest::Method::PUT, &format!("/services/{id}"))
                .json(&json!({"name": "shop", "image": "nginx:1.28"})),
        )
        .await;
    assert_eq!(status, 200, "{svc}");
    api.wait_order(svc["order_id"].as_str().unwrap(), "merged", WAIT).await;
    assert_eq!(domains_on_main(&repo, &catalog, "shop"), json!(["shop.acme.test", "blog.acme.test"]));

    // A name server that gives no answer (it refuses names outside its zone) is not a missing record: 502 naming the
    // domain, still pending, nothing ordered.
    let (status, org) = api.post(&format!("/services/{id}/domains"), &json!({"domain": "shop.acme.org"})).await;
    assert_eq!((status, org["state"].as_str()), (202, Some("pending")), "{org}");
    let before = snapshot(&store, &server, &slugs).await;
    let (status, err) = api.post(&format!("/services/{id}/domains/shop.acme.org/verify"), &json!({})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str(), err["error"]["field"].as_str()),
        (502, Some("dns_unavailable"), Some("domain")),
        "{err}"
    );
    assert!(err["error"]["message"].as_str().unwrap().contains("Refused"), "{err}");
    assert_eq!(snapshot(&store, &server, &slugs).await, before);

    // Deleting the service lets the domain go: another organisation can claim it once the deletion is merged.
    let resp = api.req(reqwest::Method::DELETE, &format!("/services/{id}")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let removal = resp.headers()["x-maxcloud-order"].to_str().unwrap().to_string();
    api.wait_order(&removal, "merged", WAIT).await;
    let (status, body) =
        other.post(&format!("/services/{other_id}/domains"), &json!({"domain": "shop.acme.test"})).await;
    assert_eq!((status, body["state"].as_str()), (202, Some("pending")), "{body}");

    // Every call above is in the audit log under the domains actions.
    let (_, log) = api.get("/audit?action=services.domains.verify&limit=1000").await;
    let statuses: Vec<i64> = log.as_array().unwrap().iter().map(|e| e["status"].as_i64().unwrap()).collect();
    assert!(statuses.contains(&200) && statuses.contains(&422), "{statuses:?}");
}
