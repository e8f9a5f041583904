//! The bad-input matrix: every refused request gets the right status and a JSON error naming the field,
//! and changes nothing — no order, commit, branch or resource (the audit log may note the refusal).

use std::time::Duration;

use maxcloud_store::Store;
use maxcloud_tests::{git_output, repo_snapshot, Api, Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    key: Option<String>,
    body: Body,
    headers: Vec<(&'static str, String)>,
    status: u16,
    field: Option<&'static str>,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn case(
    what: &'static str,
    method: Method,
    path: impl Into<String>,
    key: Option<&str>,
    body: Body,
    status: u16,
    field: Option<&'static str>,
) -> Case {
    Case { what, method, path: path.into(), key: key.map(String::from), body, headers: vec![], status, field }
}

async fn snapshot(store: &Store, server: &Server, slugs: &[&str]) -> String {
    let counts = store.table_counts().await.unwrap();
    let repos: Vec<String> = slugs.iter().map(|s| repo_snapshot(&server.repo_dir(s))).collect();
    format!("{counts:?}\n{}", repos.join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key_a, slug_a) = anon.register("a@example.com", "Tenant A").await;
    let (key_b, slug_b) = anon.register("b@example.com", "Tenant B").await;
    let a = anon.with_key(&key_a);
    let b = anon.with_key(&key_b);

    // Tenant A owns a merged service, and has a revoked key.
    let (status, svc) = a.post("/services", &json!({"name": "shop", "image": "nginx:latest"})).await;
    assert_eq!(status, 201, "{svc}");
    let service_id = svc["id"].as_str().unwrap().to_string();
    let order_id = svc["order_id"].as_str().unwrap().to_string();
    a.wait_order(&order_id, "merged", Duration::from_secs(20)).await;
    let (status, revoked) = a.post("/auth/api-keys", &json!({"name": "old"})).await;
    assert_eq!(status, 201);
    let revoked_key = revoked["api_key"].as_str().unwrap().to_string();
    assert_eq!(a.delete(&format!("/auth/api-keys/{}", revoked["id"].as_str().unwrap())).await.0, 204);
    let (_, keys_b) = b.get("/auth/api-keys").await;
    let key_b_id = keys_b[0]["id"].as_str().unwrap().to_string();

    let store = Store::connect(&server.sqlite_url()).await.unwrap();
    let before = snapshot(&store, &server, &[&slug_a, &slug_b]).await;

    let ka = Some(key_a.as_str());
    let app = |params: Value| Body::Json(json!({"kind": "App", "name": "web", "parameters": params}));
    let post = Method::POST;
    let mut cases = vec![
        case(
            "malformed JSON",
            post.clone(),
            "/orders",
            ka,
            Body::Raw("application/json", b"{\"kind\": \"App\",".to_vec()),
            400,
            None,
        ),
        case(
            "unknown field",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "App", "name": "web", "extra": 1})),
            400,
            Some("extra"),
        ),
        case(
            "wrong type",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "App", "name": 7})),
            422,
            Some("name"),
        ),
        case("missing kind", post.clone(), "/orders", ka, Body::Json(json!({"name": "web"})), 422, None),
        case(
            "name not DNS-1123",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "App", "name": "Bad_Name", "parameters": {"image": "nginx"}})),
            422,
            Some("name"),
        ),
        case(
            "name starts with a digit",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "App", "name": "1shop", "parameters": {"image": "nginx"}})),
            422,
            Some("name"),
        ),
        case(
            "name too long",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "App", "name": "a".repeat(64), "parameters": {"image": "nginx"}})),
            422,
            Some("name"),
        ),
        case(
            "bad image",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "NGINX latest"})),
            422,
            Some("parameters.image"),
        ),
        case("missing image", post.clone(), "/orders", ka, app(json!({"port": 80})), 422, Some("parameters.image")),
        case(
            "outside schema",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx", "scaling": {"maxScale": 1000}})),
            422,
            Some("parameters.scaling.maxScale"),
        ),
        case(
            "port out of range",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx", "port": 70000})),
            422,
            Some("parameters.port"),
        ),
        case(
            "CEL min > max",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx", "scaling": {"minScale": 5, "maxScale": 2}})),
            422,
            Some("parameters.scaling.minScale"),
        ),
        case(
            "unknown parameter",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx", "replicas": 3})),
            422,
            Some("parameters.replicas"),
        ),
        case(
            "bad enum",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx", "visibility": "secret"})),
            422,
            Some("parameters.visibility"),
        ),
        case(
            "parameters not an object",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "App", "name": "web", "parameters": [1]})),
            422,
            Some("parameters"),
        ),
        case(
            "unknown kind",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"kind": "Mainframe", "name": "web"})),
            422,
            Some("kind"),
        ),
        case(
            "unknown action",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"action": "destroy", "kind": "App", "name": "shop"})),
            422,
            Some("action"),
        ),
        case(
            "update of missing resource",
            post.clone(),
            "/orders",
            ka,
            Body::Json(json!({"action": "update", "kind": "App", "name": "nope", "parameters": {"image": "nginx"}})),
            404,
            None,
        ),
        case(
            "duplicate name",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx"})).rename("shop"),
            409,
            Some("name"),
        ),
        case(
            "oversize body",
            post.clone(),
            "/orders",
            ka,
            app(json!({"image": "nginx", "args": vec!["x".repeat(1000); 300]})),
            413,
            None,
        ),
        case(
            "wrong content type",
            post.clone(),
            "/orders",
            ka,
            Body::Raw("text/plain", b"kind=App".to_vec()),
            415,
            None,
        ),
        case("no API key", post.clone(), "/orders", None, app(json!({"image": "nginx"})), 401, None),
        case(
            "invalid API key",
            post.clone(),
            "/orders",
            Some("mc_0000000000000000000000000000000000000000000000000"),
            app(json!({"image": "nginx"})),
            401,
            None,
        ),
        case("not an API key", post.clone(), "/orders", Some("hunter2"), app(json!({"image": "nginx"})), 401, None),
        case(
            "revoked API key",
            post.clone(),
            "/orders",
            Some(revoked_key.as_str()),
            app(json!({"image": "nginx"})),
            401,
            None,
        ),
        case(
            "other tenant's order",
            Method::GET,
            format!("/orders/{order_id}"),
            Some(key_b.as_str()),
            Body::None,
            404,
            None,
        ),
        case(
            "approve other tenant's order",
            post.clone(),
            format!("/orders/{order_id}/approve"),
            Some(key_b.as_str()),
            Body::None,
            404,
            None,
        ),
        case(
            "other tenant's service",
            Method::GET,
            format!("/services/{service_id}"),
            Some(key_b.as_str()),
            Body::None,
            404,
            None,
        ),
        case(
            "delete other tenant's service",
            Method::DELETE,
            format!("/services/{service_id}"),
            Some(key_b.as_str()),
            Body::None,
            404,
            None,
        ),
        case(
            "redeploy other tenant's service",
            Method::PUT,
            format!("/services/{service_id}"),
            Some(key_b.as_str()),
            Body::Json(json!({"name": "shop", "image": "nginx"})),
            404,
            None,
        ),
        case(
            "redeploy under another name",
            Method::PUT,
            format!("/services/{service_id}"),
            ka,
            Body::Json(json!({"name": "other", "image": "nginx"})),
            422,
            Some("name"),
        ),
        case(
            "redeploy with a bad image",
            Method::PUT,
            format!("/services/{service_id}"),
            ka,
            Body::Json(json!({"name": "shop", "image": "UPPER/case"})),
            422,
            Some("image"),
        ),
        case(
            "delete other tenant's key",
            Method::DELETE,
            format!("/auth/api-keys/{key_b_id}"),
            ka,
            Body::None,
            404,
            None,
        ),
        case(
            "approve auto-merged order",
            post.clone(),
            format!("/orders/{order_id}/approve"),
            ka,
            Body::None,
            409,
            None,
        ),
        case(
            "service: bad name",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "-web", "image": "nginx"})),
            422,
            Some("name"),
        ),
        case(
            "service: bad image",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "web", "image": "nginx::1"})),
            422,
            Some("image"),
        ),
        case(
            "service: max_scale 0",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "web", "image": "nginx", "max_scale": 0})),
            422,
            Some("max_scale"),
        ),
        case(
            "service: min > max",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "web", "image": "nginx", "min_scale": 9, "max_scale": 3})),
            422,
            Some("min_scale"),
        ),
        case(
            "service: bad env name",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "web", "image": "nginx", "env_vars": {"1X": "y"}})),
            422,
            Some("env_vars"),
        ),
        case(
            "service: unknown field",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "web", "image": "nginx", "replicas": 2})),
            400,
            Some("replicas"),
        ),
        case(
            "service: bad memory",
            post.clone(),
            "/services",
            ka,
            Body::Json(json!({"name": "web", "image": "nginx", "memory": "lots"})),
            422,
            Some("memory"),
        ),
        case(
            "register: bad email",
            post.clone(),
            "/auth/register",
            None,
            Body::Json(json!({"email": "not-an-email", "org_name": "X"})),
            422,
            Some("email"),
        ),
        case(
            "register: empty org",
            post.clone(),
            "/auth/register",
            None,
            Body::Json(json!({"email": "x@example.com", "org_name": "  "})),
            422,
            Some("org_name"),
        ),
        case(
            "register: org without letters",
            post.clone(),
            "/auth/register",
            None,
            Body::Json(json!({"email": "x@example.com", "org_name": "!!!"})),
            422,
            Some("org_name"),
        ),
        case(
            "register: taken email",
            post.clone(),
            "/auth/register",
            None,
            Body::Json(json!({"email": "A@example.com", "org_name": "Again"})),
            409,
            Some("email"),
        ),
        case("list: bad limit", Method::GET, "/orders?limit=0", ka, Body::None, 400, Some("limit")),
        case("usage: no key", Method::GET, "/usage", None, Body::None, 401, None),
        case("usage: bad from", Method::GET, "/usage?from=yesterday", ka, Body::None, 400, Some("from")),
        case("usage: date only", Method::GET, "/usage?to=2026-01-01", ka, Body::None, 400, Some("to")),
        case(
            "usage: empty window",
            Method::GET,
            "/usage?from=2026-02-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            ka,
            Body::None,
            422,
            Some("to"),
        ),
        case(
            "usage: over a year",
            Method::GET,
            "/usage?from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z",
            ka,
            Body::None,
            422,
            Some("to"),
        ),
    ];
    let mut long_key = case(
        "idempotency key too long",
        post.clone(),
        "/orders",
        ka,
        app(json!({"image": "nginx"})),
        400,
        Some("Idempotency-Key"),
    );
    long_key.headers.push(("Idempotency-Key", "k".repeat(300)));
    cases.push(long_key);

    for c in cases {
        let api = match &c.key {
            Some(k) => anon.with_key(k),
            None => anon.clone(),
        };
        let mut rb = api.req(c.method.clone(), &c.path);
        for (h, v) in &c.headers {
            rb = rb.header(*h, v);
        }
        rb = match c.body {
            Body::None => rb,
            Body::Json(v) => rb.json(&v),
            Body::Raw(ct, bytes) => rb.header("content-type", ct).body(bytes),
        };
        let (status, body) = api.send(rb).await;
        assert_eq!(status, c.status, "{}: {body}", c.what);
        let err = &body["error"];
        assert!(
            err["code"].is_string() && err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: {body}",
            c.what
        );
        if let Some(field) = c.field {
            assert_eq!(err["field"], field, "{}: {body}", c.what);
        }
        let after = snapshot(&store, &server, &[&slug_a, &slug_b]).await;
        assert_eq!(before, after, "{} changed stored state", c.what);
    }

    // Git: no credentials, wrong tenant, bad token, and pushes are all refused.
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let url = |key: &str, slug: &str| {
        server.url.replacen("http://", &format!("http://token:{key}@"), 1) + &format!("/git/{slug}.git")
    };
    for (what, key, slug) in [
        ("other tenant's repo", key_b.as_str(), slug_a.as_str()),
        ("revoked key", revoked_key.as_str(), slug_a.as_str()),
        ("garbage password", "letmein", slug_a.as_str()),
    ] {
        let out = git_output(&work, &["clone", "-q", &url(key, slug), &format!("clone-{}", what.replace(' ', "-"))]);
        assert!(!out.status.success(), "{what}: clone must fail");
    }
    let no_auth =
        reqwest::get(format!("{}/git/{slug_a}.git/info/refs?service=git-upload-pack", server.url)).await.unwrap();
    assert_eq!(no_auth.status(), 401);
    assert!(no_auth.headers().contains_key("www-authenticate"));
    let wrong = reqwest::Client::new()
        .get(format!("{}/git/{slug_a}.git/info/refs?service=git-upload-pack", server.url))
        .basic_auth("token", Some(&key_b))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let push = reqwest::Client::new()
        .get(format!("{}/git/{slug_a}.git/info/refs?service=git-receive-pack", server.url))
        .basic_auth("token", Some(&key_a))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 403);
    assert_eq!(before, snapshot(&store, &server, &[&slug_a, &slug_b]).await);

    // Refusals of mutating calls are in the audit log.
    let audit = store.audit_log(Some(&store.tenant_by_slug(&slug_a).await.unwrap().unwrap().id), 500).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.entry.status == 422 && e.entry.detail.as_deref().is_some_and(|d| d.contains("scaling.maxScale"))));
    let anonymous = store.audit_log(None, 500).await.unwrap();
    assert!(anonymous.iter().any(|e| e.entry.status == 401));
}

trait Rename {
    fn rename(self, name: &str) -> Body;
}

impl Rename for Body {
    fn rename(self, name: &str) -> Body {
        match self {
            Body::Json(mut v) => {
                v["name"] = json!(name);
                Body::Json(v)
            }
            other => other,
        }
    }
}
