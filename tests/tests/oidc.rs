//! OIDC login against a local issuer the test runs: axum on 127.0.0.1 serving the discovery document and the
//! JWKS, tokens signed with keys generated here (ES256 with p256, RS256 with rsa). A valid token works with the
//! role its groups claim gives; every bad token is refused with its own message and writes nothing; a key
//! rotation is picked up; roles follow the claims.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use maxcloud_store::Store;
use maxcloud_tests::{cli_command, Api, Options, Server};
use serde_json::{json, Value};

const AUDIENCE: &str = "maxcloud-api";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key of the test issuer and its public JWK.
struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn es256(kid: &str) -> Key {
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::ecdsa::SigningKey::random(&mut rand08::rngs::OsRng);
    let pem = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let point = secret.verifying_key().to_encoded_point(false);
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                    "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())}),
    }
}

fn rs256(kid: &str) -> Key {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let secret = rsa::RsaPrivateKey::new(&mut rand08::rngs::OsRng, 2048).unwrap();
    let der = secret.to_pkcs1_der().unwrap();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": b64(&secret.n().to_bytes_be()), "e": b64(&secret.e().to_bytes_be())}),
    }
}

/// The local identity provider: discovery and JWKS on loopback; the key set can be swapped (rotation).
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/realms/acme", listener.local_addr().unwrap());
    let jwks: Arc<Mutex<Vec<Value>>> = Default::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/protocol/openid-connect/certs"),
                           "id_token_signing_alg_values_supported": ["RS256", "ES256"]});
    let (keys, count) = (jwks.clone(), fetches.clone());
    let app = axum::Router::new()
        .route(
            "/realms/acme/.well-known/openid-configuration",
            axum::routing::get(move || {
                let d = discovery.clone();
                async move { axum::Json(d) }
            }),
        )
        .route(
            "/realms/acme/protocol/openid-connect/certs",
            axum::routing::get(move || {
                let keys = keys.clone();
                count.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(json!({"keys": *keys.lock().unwrap()})) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { url, jwks, fetches }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of a valid token for `sub` with `groups`; tweak them per case.
fn claims(issuer: &str, sub: &str, email: &str, groups: &[&str]) -> Value {
    json!({"iss": issuer, "aud": [AUDIENCE, "account"], "sub": sub, "email": email, "email_verified": true,
           "iat": now(), "nbf": now() - 5, "exp": now() + 300, "groups": groups})
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// A token with a hand-made header (alg none, HS256 with the public key as secret).
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(signature))
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

async fn counts(server: &Server) -> std::collections::BTreeMap<String, i64> {
    let store = Store::connect(&server.sqlite_url()).await.unwrap();
    let counts = store.table_counts().await.unwrap();
    store.close().await;
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_tokens_map_to_tenants_and_roles() {
    let idp = issuer().await;
    let ec = es256("ec-1");
    idp.jwks.lock().unwrap().push(ec.jwk.clone());
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        Options {
            env: vec![
                ("MAXCLOUD_OIDC_ISSUER".into(), idp.url.clone()),
                ("MAXCLOUD_OIDC_AUDIENCE".into(), AUDIENCE.into()),
                ("MAXCLOUD_OIDC_JWKS_REFETCH_SECONDS".into(), "1".into()),
            ],
            ..Options::default()
        },
    );
    let anon = Api::new(&server);
    let (key_a, slug_a) = anon.register("boss@a.example", "Org A").await;
    let (key_b, slug_b) = anon.register("boss@b.example", "Org B").await;
    let a_key = anon.with_key(&key_a);
    let (status, svc) = a_key.post("/services", &json!({"name": "shop", "image": "nginx:latest"})).await;
    assert_eq!(status, 201, "{svc}");
    let service_id = svc["id"].as_str().unwrap().to_string();
    let (status, _) = anon.with_key(&key_b).post("/services", &json!({"name": "blog", "image": "nginx:latest"})).await;
    assert_eq!(status, 201);

    // An admin of org A by the groups claim: sees A's services, may invite; audited under the SSO user.
    let admin_group = format!("maxcloud:{slug_a}:admin");
    let admin = anon.with_key(&sign(&ec, &claims(&idp.url, "u-1", "Alice@SSO.example", &[&admin_group])));
    let (status, st) = admin.get("/auth/status").await;
    assert_eq!(status, 200, "{st}");
    assert_eq!((st["user"]["email"].as_str(), st["role"].as_str()), (Some("alice@sso.example"), Some("admin")));
    assert_eq!(st["organization"]["slug"], slug_a.as_str());
    let (status, services) = admin.get("/services").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = services.as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["shop"], "only org A's services");
    let (status, orders) = admin.get("/orders").await;
    assert_eq!((status, orders.as_array().unwrap().len()), (200, 1));
    let (status, inv) = admin.post("/auth/invites", &json!({"email": "new@a.example"})).await;
    assert_eq!(status, 201, "{inv}");
    let (_, audit) = a_key.get("/audit").await;
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"].as_str().is_some_and(|t| t.starts_with("invite/")))
        .unwrap();
    assert_eq!(entry["actor"], "alice@sso.example", "{entry}");
    let (_, members) = a_key.get("/auth/members").await;
    assert!(members
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user"]["email"] == "alice@sso.example" && m["role"] == "admin"));

    // A member by the claim: reads, but admin calls are refused.
    let member_group = format!("maxcloud:{slug_a}:member");
    let member = anon.with_key(&sign(&ec, &claims(&idp.url, "u-2", "bob@sso.example", &[&member_group])));
    assert_eq!(member.get("/services").await.0, 200);
    for (what, status) in [
        ("list invites", member.get("/auth/invites").await.0),
        ("invite", member.post("/auth/invites", &json!({"email": "c@a.example"})).await.0),
        ("create a git token", member.post("/auth/git-tokens", &json!({})).await.0),
        ("read the audit log", member.get("/audit").await.0),
    ] {
        assert_eq!(status, 403, "a member may not {what}");
    }

    // Another tenant's claim: B's view only; A's ids are 404; asking for A by header is 403.
    let b_group = format!("maxcloud:{slug_b}:admin");
    let b_user = anon.with_key(&sign(&ec, &claims(&idp.url, "u-3", "carol@sso.example", &[&b_group])));
    let (status, services) = b_user.get("/services").await;
    assert_eq!((status, services[0]["name"].as_str()), (200, Some("blog")));
    assert_eq!(b_user.get(&format!("/services/{service_id}")).await.0, 404);
    assert_eq!(b_user.delete(&format!("/services/{service_id}")).await.0, 404);
    let (status, body) =
        b_user.send(b_user.req(reqwest::Method::GET, "/services").header("x-maxcloud-tenant", &slug_a)).await;
    assert_eq!(status, 403);
    assert!(message(&body).contains(&format!("no role in organisation \"{slug_a}\"")), "{body}");

    // Refusals: each with its own message, nothing written.
    let before = counts(&server).await;
    let other = es256("ec-1"); // same kid, another key: the signature cannot verify
    let mut cases: Vec<(&str, String, u16, &str)> = Vec::new();
    let mut c = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    c["iss"] = json!("https://evil.example/realms/acme");
    cases.push(("wrong issuer", sign(&ec, &c), 401, "issuer (iss)"));
    let mut c = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    c["aud"] = json!("another-app");
    cases.push(("wrong audience", sign(&ec, &c), 401, "audience (aud)"));
    cases.push((
        "bad signature",
        sign(&other, &claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group])),
        401,
        "signature",
    ));
    let mut c = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    c["exp"] = json!(now() - 120);
    cases.push(("expired", sign(&ec, &c), 401, "expired"));
    let mut c = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    c["nbf"] = json!(now() + 600);
    cases.push(("not yet valid", sign(&ec, &c), 401, "not valid yet"));
    let mut c = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    c.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp", sign(&ec, &c), 401, "\"exp\""));
    let unknown = es256("kid-nobody-knows");
    cases.push((
        "unknown kid",
        sign(&unknown, &claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group])),
        401,
        "kid",
    ));
    let good = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    cases.push((
        "alg none",
        raw_token(&json!({"alg": "none", "kid": "ec-1"}), &good, b""),
        401,
        "\"none\" is not accepted",
    ));
    let hs_secret = serde_json::to_vec(&ec.jwk).unwrap();
    let hs = jsonwebtoken::encode(
        &Header { kid: Some("ec-1".into()), ..Header::new(Algorithm::HS256) },
        &good,
        &EncodingKey::from_secret(&hs_secret),
    )
    .unwrap();
    cases.push(("HS256 with the public key as secret", hs, 401, "\"HS256\" is not accepted"));
    let rs_header = raw_token(&json!({"alg": "RS256", "kid": "ec-1"}), &good, b"sig");
    cases.push(("RS256 header on an EC key", rs_header, 401, "does not fit the type of the key"));
    cases.push((
        "no groups claim",
        sign(&ec, &claims(&idp.url, "u-9", "eve@sso.example", &[])),
        403,
        "grants no max-cloud organisation",
    ));
    cases.push((
        "foreign group values only",
        sign(
            &ec,
            &claims(&idp.url, "u-9", "eve@sso.example", &["admins", "other:org-a:admin", "maxcloud:org-a:owner"]),
        ),
        403,
        "grants no max-cloud organisation",
    ));
    cases.push((
        "an organisation that does not exist",
        sign(&ec, &claims(&idp.url, "u-9", "eve@sso.example", &["maxcloud:nope:admin"])),
        403,
        "do not exist: nope",
    ));
    let mut c = claims(&idp.url, "u-9", "eve@sso.example", &[&admin_group]);
    c.as_object_mut().unwrap().remove("email");
    cases.push(("no e-mail", sign(&ec, &c), 403, "no e-mail address"));
    for (what, token, want, needle) in cases {
        let caller = anon.with_key(&token);
        let (status, body) = caller.get("/services").await;
        assert_eq!(status, want, "{what}: {body}");
        assert!(message(&body).contains(needle), "{what}: {body}");
        // A mutating call is refused the same way (and audited without a tenant).
        let (status, _) = caller.post("/services", &json!({"name": "x", "image": "nginx"})).await;
        assert_eq!(status, want, "{what} (POST)");
    }
    // The issuer from a correct token but an organisation not granted by the header.
    assert_eq!(counts(&server).await, before, "refused tokens write nothing (no user, identity, membership, order)");

    // A token granting two organisations must name one.
    let both = anon.with_key(&sign(&ec, &claims(&idp.url, "u-4", "dan@sso.example", &[&member_group, &b_group])));
    let (status, body) = both.get("/services").await;
    assert_eq!((status, body["error"]["field"].as_str()), (403, Some("x-maxcloud-tenant")), "{body}");
    let (status, body) =
        both.send(both.req(reqwest::Method::GET, "/auth/status").header("x-maxcloud-tenant", &slug_b)).await;
    assert_eq!((status, body["role"].as_str()), (200, Some("admin")), "{body}");
    let (status, body) =
        both.send(both.req(reqwest::Method::GET, "/services").header("x-maxcloud-tenant", "Bad Slug!")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("x-maxcloud-tenant")));

    // Roles follow the claims on every request: demoted, then removed from org A.
    let demoted = anon.with_key(&sign(&ec, &claims(&idp.url, "u-1", "alice@sso.example", &[&member_group])));
    assert_eq!(demoted.get("/auth/invites").await.0, 403, "the admin role was removed in the IdP");
    let (_, members) = a_key.get("/auth/members").await;
    assert!(members
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user"]["email"] == "alice@sso.example" && m["role"] == "member"));
    let moved = anon.with_key(&sign(&ec, &claims(&idp.url, "u-1", "alice@sso.example", &[&b_group])));
    assert_eq!(moved.get("/services").await.1[0]["name"], "blog");
    let (_, members) = a_key.get("/auth/members").await;
    assert!(!members.as_array().unwrap().iter().any(|m| m["user"]["email"] == "alice@sso.example"), "{members}");

    // Key rotation: the issuer adds an RSA key with a new kid; the server fetches the JWKS again.
    let rsa_key = rs256("rsa-2");
    idp.jwks.lock().unwrap().push(rsa_key.jwk.clone());
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the refetch interval of 1 s
    let fetched = idp.fetches.load(Ordering::SeqCst);
    let rotated = anon.with_key(&sign(&rsa_key, &claims(&idp.url, "u-1", "alice@sso.example", &[&admin_group])));
    let (status, body) = rotated.get("/auth/status").await;
    assert_eq!((status, body["role"].as_str()), (200, Some("admin")), "{body}");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), fetched + 1, "one JWKS fetch for the new kid");
    // Unknown kids do not make the server hammer the issuer: at most one fetch per interval.
    let bogus = es256("bogus");
    for _ in 0..5 {
        let t = anon.with_key(&sign(&bogus, &claims(&idp.url, "u-1", "alice@sso.example", &[&admin_group])));
        assert_eq!(t.get("/services").await.0, 401);
    }
    assert!(idp.fetches.load(Ordering::SeqCst) <= fetched + 2, "rate-limited refetches");

    // The CLI: `auth login --token` checks and stores the token; later commands use it.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let token = sign(&ec, &claims(&idp.url, "u-1", "alice@sso.example", &[&admin_group]));
    let out = cli_command(&home, &server, None).args(["auth", "login", "--token", &token]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Logged in as alice@sso.example") && text.contains("as admin"), "{text}");
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".config/maxcloud/credentials")).unwrap()).unwrap();
    assert_eq!((creds["api_key"].as_str(), creds["org"].as_str()), (Some(token.as_str()), Some(slug_a.as_str())));
    let out = cli_command(&home, &server, None).args(["list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("shop"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli_command(&home, &server, None).args(["auth", "invites"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut c = claims(&idp.url, "u-1", "alice@sso.example", &[&admin_group]);
    c["exp"] = json!(now() - 3600);
    let expired = sign(&ec, &c);
    let out =
        cli_command(&home, &server, None).env("MAXCLOUD_TOKEN", &expired).args(["auth", "login"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.starts_with("error: ") && err.contains("expired"), "{err}");
    let creds_after: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".config/maxcloud/credentials")).unwrap()).unwrap();
    assert_eq!(creds_after, creds, "a refused login leaves the stored credentials alone");
    let out = cli_command(&home, &server, None).args(["auth", "login", "--token", "not-a-jwt"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--token must be a JWT"));

    // A token granting two organisations: the CLI names one with --tenant (X-Maxcloud-Tenant), at login and after.
    let both = sign(&ec, &claims(&idp.url, "u-4", "dan@sso.example", &[&member_group, &b_group]));
    let out = cli_command(&home, &server, None).args(["auth", "login", "--token", &both]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("several organisations") && err.contains("--tenant"), "{err}");
    let out = cli_command(&home, &server, None)
        .args(["--tenant", &slug_b, "auth", "login", "--token", &both])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("as admin"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".config/maxcloud/credentials")).unwrap()).unwrap();
    assert_eq!(creds["org"].as_str(), Some(slug_b.as_str()));
    let out = cli_command(&home, &server, None).args(["list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("blog") && !text.contains("shop"), "the stored organisation: {text}");
    let out = cli_command(&home, &server, None).args(["--tenant", &slug_a, "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shop") && !text.contains("blog"), "--tenant: {text}");
    let out = cli_command(&home, &server, None).env("MAXCLOUD_TENANT", "nobody").args(["list"]).output().unwrap();
    assert!(!out.status.success(), "an organisation the token does not grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn jwts_without_oidc_configured_are_refused() {
    let idp = issuer().await;
    let ec = es256("ec-1");
    idp.jwks.lock().unwrap().push(ec.jwk.clone());
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (_, slug) = anon.register("boss@a.example", "Org A").await;
    let token = sign(&ec, &claims(&idp.url, "u-1", "a@sso.example", &[&format!("maxcloud:{slug}:admin")]));
    let (status, body) = anon.with_key(&token).get("/services").await;
    assert_eq!(status, 401);
    assert!(message(&body).contains("--oidc-issuer"), "{body}");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 0, "no issuer is contacted");
    // The issuer must be reachable for a configured server to verify; an unreachable one is 503, not 401.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = format!("http://127.0.0.1:{closed}/realms/acme");
    let server2 = Server::start(
        &tmp.path().join("data2"),
        Options {
            env: vec![
                ("MAXCLOUD_OIDC_ISSUER".into(), gone.clone()),
                ("MAXCLOUD_OIDC_AUDIENCE".into(), AUDIENCE.into()),
            ],
            ..Options::default()
        },
    );
    let anon2 = Api::new(&server2);
    anon2.register("boss@a.example", "Org A").await;
    let token = sign(&ec, &claims(&gone, "u-1", "a@sso.example", &["maxcloud:org-a:admin"]));
    for _ in 0..2 {
        // The second time within the refetch interval: the same reason, from the cache of the failure.
        let (status, body) = anon2.with_key(&token).get("/services").await;
        assert_eq!(status, 503, "{body}");
        assert!(message(&body).contains("keys are unavailable"), "{body}");
    }
}
