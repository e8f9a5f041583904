//! The container registry (issue 7, part 3): a real CNCF Distribution registry (`crates/testenv/src/registry.rs`,
//! built from its Go module) trusts the token endpoint of a real `maxcloud-server dev` (its generated ES256 key,
//! published as a JWKS in the data directory). A tenant pushes images it owns with `maxcloud push` (an OCI image
//! layout and a docker archive the test builds), pulls them back byte for byte and lists them with
//! `maxcloud images`; another tenant gets no access to them — the token service grants nothing, the registry
//! refuses — and never sees them. Forged and mis-scoped tokens are refused by the registry; bad token requests
//! and bad `push` input are refused with precise errors and write nothing.

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use maxcloud_registry::{Access, Claims, SigningKey};
use maxcloud_testenv::registry::{Registry, TokenAuth};
use maxcloud_tests::{cli_command, Api, Options, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SERVICE: &str = "max-cloud-registry";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An uncompressed tar holding `files`.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A one-layer image: (layer tar, config JSON).
fn image_parts(text: &str) -> (Vec<u8>, Vec<u8>) {
    let layer = tar_of(&[("hello.txt", text.as_bytes())]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    (layer, config)
}

/// Writes an OCI image layout of a one-layer image into `dir`; returns the manifest's digest.
fn write_oci_layout(dir: &Path, text: &str) -> String {
    let (layer, config) = image_parts(text);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for blob in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(&sha256(blob)[7..]), blob).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion": "1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
         "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    sha256(&manifest)
}

/// A classic `docker save` archive of a one-layer image; returns (archive, config, layer).
fn docker_archive(text: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (layer, config) = image_parts(text);
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let manifest = json!([{"Config": config_name, "RepoTags": ["builder:latest"], "Layers": ["0123abcd/layer.tar"]}]);
    let manifest = manifest.to_string();
    let archive = tar_of(&[
        ("manifest.json", manifest.as_bytes()),
        (&config_name, &config),
        ("0123abcd/VERSION", b"1.0"),
        ("0123abcd/layer.tar", &layer),
    ]);
    (archive, config, layer)
}

/// The claims of a token, read without checking it.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Replaces a token's claims and keeps its header and signature: a tampered token.
fn tampered(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = claims(token);
    edit(&mut payload);
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2])
}

struct Env {
    server: Server,
    registry: Registry,
    http: reqwest::Client,
    _tmp: tempfile::TempDir,
}

impl Env {
    fn token_url(&self) -> String {
        self.server.api("/registry/token")
    }

    /// `GET /registry/token` with Basic `anyone:<password>` and `query`: (status, body, WWW-Authenticate).
    async fn token_request(&self, password: Option<&str>, query: &[(&str, &str)]) -> (u16, Value, String) {
        let mut rb = self.http.get(self.token_url()).query(query);
        if let Some(p) = password {
            rb = rb.basic_auth("anyone", Some(p));
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let challenge =
            resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, resp.json().await.unwrap_or(Value::Null), challenge)
    }

    /// A token for `scope` as the holder of `key`.
    async fn token(&self, key: &str, scope: &str) -> String {
        let (status, body, _) = self.token_request(Some(key), &[("service", SERVICE), ("scope", scope)]).await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// `method` on the registry's `/v2/<path>` with `token`: (status, body bytes, headers).
    async fn v2(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
        let mut rb = self
            .http
            .request(method, format!("{}/v2/{path}", self.registry.url()))
            .header("accept", format!("{MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, resp.bytes().await.unwrap().to_vec(), headers)
    }

    /// `maxcloud ARGS` as the holder of `key`, off the async threads: (success, stdout, stderr).
    async fn cli(&self, home: &Path, key: Option<&str>, args: &[&str]) -> (bool, String, String) {
        let mut cmd = cli_command(home, &self.server, key);
        cmd.args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }
}

async fn start() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = maxcloud_testenv::process::free_port().unwrap();
    let server = Server::start(
        &data,
        Options {
            env: vec![("MAXCLOUD_REGISTRY_URL".into(), format!("http://127.0.0.1:{port}"))],
            ..Default::default()
        },
    );
    let auth = TokenAuth {
        realm: server.api("/registry/token"),
        service: SERVICE.into(),
        issuer: "max-cloud".into(),
        jwks: data.join("registry/jwks.json"),
    };
    let registry = Registry::start_on(port, &auth).await.expect("registry");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    Env { server, registry, http, _tmp: tmp }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_push_pull_and_list_only_their_own_images() {
    let env = start().await;
    let anon = Api::new(&env.server);
    let (a_key, a_slug) = anon.register("ops@acme.example", "Acme").await;
    let (b_key, b_slug) = anon.register("eve@globex.example", "Globex").await;
    let home = tempfile::tempdir().unwrap();

    // The registry sends clients to the server's token endpoint.
    let (status, _, headers) = env.v2(reqwest::Method::GET, "", None).await;
    assert_eq!(status, 401);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert_eq!(challenge, format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", env.token_url()));

    // Where images go.
    let (status, info) = anon.with_key(&a_key).get("/registry").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["host"], env.registry.host());
    assert_eq!((info["prefix"].as_str(), info["insecure"].as_bool()), (Some(a_slug.as_str()), Some(true)));
    assert_eq!(info["actions"], json!(["pull", "push", "delete"]), "an admin");

    // Tenant A pushes an OCI image layout and a docker archive.
    let layout = home.path().join("layout");
    let digest = write_oci_layout(&layout, "hello from acme");
    let (ok, out, err) = env
        .cli(home.path(), Some(&a_key), &["push", layout.to_str().unwrap(), "--name", "web:1.0", "-o", "json"])
        .await;
    assert!(ok, "push: {err}");
    let pushed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pushed["reference"], format!("{}/{a_slug}/web:1.0", env.registry.host()));
    assert_eq!((pushed["digest"].as_str(), pushed["format"].as_str()), (Some(digest.as_str()), Some("oci-layout")));
    assert_eq!(pushed["layers"], 1);

    let (archive, archive_config, archive_layer) = docker_archive("built by docker save");
    let archive_path = home.path().join("builder.tar");
    std::fs::write(&archive_path, &archive).unwrap();
    let (ok, out, err) =
        env.cli(home.path(), Some(&a_key), &["push", archive_path.to_str().unwrap(), "--name", "tools/builder"]).await;
    assert!(ok, "push docker archive: {err}");
    assert!(out.contains(&format!("{}/{a_slug}/tools/builder:latest", env.registry.host())), "{out}");
    assert!(out.contains("docker-archive"), "{out}");
    // Pushing the same image again under another tag sends no blob again.
    let (ok, out, err) = env
        .cli(home.path(), Some(&a_key), &["push", layout.to_str().unwrap(), "--name", "web:stable", "-o", "json"])
        .await;
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["uploaded_bytes"], 0);

    // Pulled back byte for byte, by tag and by digest.
    let pull = env.token(&a_key, &format!("repository:{a_slug}/web:pull")).await;
    let (status, manifest, headers) =
        env.v2(reqwest::Method::GET, &format!("{a_slug}/web/manifests/1.0"), Some(&pull)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&manifest));
    assert_eq!(sha256(&manifest), digest);
    assert_eq!(headers["docker-content-digest"].to_str().unwrap(), digest);
    let on_disk = std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
    assert_eq!(manifest, on_disk);
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    for descriptor in [&manifest["config"], &manifest["layers"][0]] {
        let blob_digest = descriptor["digest"].as_str().unwrap();
        let (status, blob, _) =
            env.v2(reqwest::Method::GET, &format!("{a_slug}/web/blobs/{blob_digest}"), Some(&pull)).await;
        assert_eq!(status, 200);
        assert_eq!(sha256(&blob), blob_digest);
    }
    let (status, _, _) = env.v2(reqwest::Method::GET, &format!("{a_slug}/web/manifests/{digest}"), Some(&pull)).await;
    assert_eq!(status, 200);
    // The docker archive became an OCI manifest over its config and its layer tar.
    let pull_builder = env.token(&a_key, &format!("repository:{a_slug}/tools/builder:pull")).await;
    let (status, manifest, _) =
        env.v2(reqwest::Method::GET, &format!("{a_slug}/tools/builder/manifests/latest"), Some(&pull_builder)).await;
    assert_eq!(status, 200);
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["config"]["digest"], sha256(&archive_config));
    assert_eq!(manifest["layers"][0]["digest"], sha256(&archive_layer));

    // `maxcloud images` lists them.
    let (ok, out, err) = env.cli(home.path(), Some(&a_key), &["images", "-o", "json"]).await;
    assert!(ok, "{err}");
    let images: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(images["prefix"], a_slug.as_str());
    assert_eq!(
        images["images"],
        json!([
            {"repository": format!("{a_slug}/tools/builder"), "name": "tools/builder",
             "reference": format!("{}/{a_slug}/tools/builder", env.registry.host()), "tags": ["latest"]},
            {"repository": format!("{a_slug}/web"), "name": "web",
             "reference": format!("{}/{a_slug}/web", env.registry.host()), "tags": ["1.0", "stable"]},
        ])
    );
    let (ok, table, _) = env.cli(home.path(), Some(&a_key), &["images"]).await;
    assert!(ok && table.contains("tools/builder") && table.contains("1.0, stable"), "{table}");

    // A member of A pushes and pulls too, but may not delete.
    let (status, invite) =
        anon.with_key(&a_key).post("/auth/invites", &json!({"email": "dev@acme.example", "role": "member"})).await;
    assert_eq!(status, 201, "{invite}");
    let (status, joined) = anon.post("/auth/accept-invite", &json!({"token": invite["token"]})).await;
    assert_eq!(status, 201, "{joined}");
    let member_key = joined["api_key"].as_str().unwrap().to_string();
    let (_, info) = anon.with_key(&member_key).get("/registry").await;
    assert_eq!(info["actions"], json!(["pull", "push"]));
    let (ok, _, err) =
        env.cli(home.path(), Some(&member_key), &["push", layout.to_str().unwrap(), "--name", "web:member"]).await;
    assert!(ok, "a member pushes: {err}");
    let member_all = env.token(&member_key, &format!("repository:{a_slug}/web:*")).await;
    assert_eq!(claims(&member_all)["access"][0]["actions"], json!(["pull", "push"]));
    let member_delete = env.token(&member_key, &format!("repository:{a_slug}/web:delete")).await;
    assert_eq!(claims(&member_delete)["access"], json!([]));
    let (status, _, _) =
        env.v2(reqwest::Method::DELETE, &format!("{a_slug}/web/manifests/{digest}"), Some(&member_delete)).await;
    assert_eq!(status, 401, "a member cannot delete");

    // Every grant to change the registry is in the audit log: who, from where, which repository and actions.
    let (status, log) = anon.with_key(&a_key).get("/audit?action=registry.token").await;
    assert_eq!(status, 200, "{log}");
    let grants: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_string(), e["target"].as_str().unwrap().to_string()))
        .collect();
    assert!(grants.contains(&("ops@acme.example".into(), format!("{a_slug}/web:pull,push"))), "{log}");
    assert!(grants.contains(&("ops@acme.example".into(), format!("{a_slug}/tools/builder:pull,push"))), "{log}");
    assert!(grants.contains(&("dev@acme.example".into(), format!("{a_slug}/web:pull,push"))), "{log}");
    assert!(log.as_array().unwrap().iter().all(|e| e["source"] == "127.0.0.1" && e["status"] == 200), "{log}");

    // Tenant B asks for A's repository: a token with nothing in it, which the registry refuses.
    let (status, body, _) = env
        .token_request(Some(&b_key), &[("service", SERVICE), ("scope", &format!("repository:{a_slug}/web:pull,push"))])
        .await;
    assert_eq!(status, 200, "{body}");
    let b_token = body["token"].as_str().unwrap().to_string();
    assert_eq!(claims(&b_token)["access"], json!([]), "nothing granted on another tenant's repository");
    let (status, _, headers) =
        env.v2(reqwest::Method::GET, &format!("{a_slug}/web/manifests/1.0"), Some(&b_token)).await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    let (status, _, _) = env.v2(reqwest::Method::GET, &format!("{a_slug}/web/blobs/{digest}"), Some(&b_token)).await;
    assert_eq!(status, 401);
    let (status, _, _) = env.v2(reqwest::Method::POST, &format!("{a_slug}/web/blobs/uploads/"), Some(&b_token)).await;
    assert_eq!(status, 401, "B cannot start an upload into A's repository");
    let (status, _, _) =
        env.v2(reqwest::Method::DELETE, &format!("{a_slug}/web/manifests/{digest}"), Some(&b_token)).await;
    assert_eq!(status, 401);
    // Its own token for its own repository does not open A's either.
    let b_own = env.token(&b_key, &format!("repository:{b_slug}/web:pull,push")).await;
    let (status, _, _) = env.v2(reqwest::Method::GET, &format!("{a_slug}/web/manifests/1.0"), Some(&b_own)).await;
    assert_eq!(status, 401);
    // No tenant gets the catalog.
    let catalog = env.token(&a_key, "registry:catalog:*").await;
    assert_eq!(claims(&catalog)["access"], json!([]));
    let (status, _, _) = env.v2(reqwest::Method::GET, "_catalog", Some(&catalog)).await;
    assert_eq!(status, 401);
    // B sees no image of A's, pushes its own, and A does not see B's.
    let (ok, out, _) = env.cli(home.path(), Some(&b_key), &["images", "-o", "json"]).await;
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["images"], json!([]));
    let b_layout = home.path().join("b-layout");
    write_oci_layout(&b_layout, "hello from globex");
    let (ok, _, err) =
        env.cli(home.path(), Some(&b_key), &["push", b_layout.to_str().unwrap(), "--name", "web:1.0"]).await;
    assert!(ok, "{err}");
    let (_, out, _) = env.cli(home.path(), Some(&a_key), &["images", "-o", "json"]).await;
    assert!(!out.contains(&b_slug), "{out}");
    // B's refused asks left nothing in A's audit log, and B's own log names only its own repositories.
    let (_, log) = anon.with_key(&a_key).get("/audit?action=registry.token").await;
    assert!(!log.to_string().contains("eve@"), "{log}");
    let (_, log) = anon.with_key(&b_key).get("/audit?action=registry.token").await;
    let targets: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["target"].as_str().unwrap()).collect();
    assert!(!targets.is_empty() && targets.iter().all(|t| t.starts_with(&format!("{b_slug}/"))), "{log}");
    let (_, out, _) = env.cli(home.path(), Some(&b_key), &["images", "-o", "json"]).await;
    let b_images: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(b_images["images"].as_array().unwrap().len(), 1);
    assert!(!out.contains(&format!("{a_slug}/")), "{out}");
    // A's image is what A pushed, untouched.
    let (_, manifest, _) = env.v2(reqwest::Method::GET, &format!("{a_slug}/web/manifests/1.0"), Some(&pull)).await;
    assert_eq!(sha256(&manifest), digest);
    assert_eq!(
        env.registry.stored_repositories(),
        [format!("{a_slug}/tools/builder"), format!("{a_slug}/web"), format!("{b_slug}/web")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_mis_scoped_tokens_are_refused_by_the_registry() {
    let env = start().await;
    let anon = Api::new(&env.server);
    let (a_key, a_slug) = anon.register("ops@acme.example", "Acme").await;
    let (b_key, b_slug) = anon.register("eve@globex.example", "Globex").await;
    let home = tempfile::tempdir().unwrap();
    let layout = home.path().join("layout");
    let digest = write_oci_layout(&layout, "forgery target");
    let (ok, _, err) =
        env.cli(home.path(), Some(&a_key), &["push", layout.to_str().unwrap(), "--name", "web:1.0"]).await;
    assert!(ok, "{err}");
    let path = format!("{a_slug}/web/manifests/1.0");
    let repo = format!("{a_slug}/web");

    // The server's real key (what an attacker does not have) signs a control token the registry accepts: each
    // forgery below differs from it in one way only.
    let real =
        SigningKey::from_pem(&std::fs::read_to_string(env.server.data_dir.join("registry/token-key.pem")).unwrap())
            .unwrap();
    let access = |name: &str, actions: &[&str]| {
        vec![Access {
            resource_type: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }]
    };
    let good = Claims::new("max-cloud", SERVICE, "ops@acme.example", access(&repo, &["pull"]), 300);
    assert_eq!(env.v2(reqwest::Method::GET, &path, Some(&good.sign(&real).unwrap())).await.0, 200, "control");

    let refused = |name: &str, status: u16| assert_eq!(status, 401, "{name} must be refused");
    // Another key, with its own kid (not in the JWKS) …
    let other = SigningKey::generate();
    refused("another key", env.v2(reqwest::Method::GET, &path, Some(&good.sign(&other).unwrap())).await.0);
    // … or claiming the real key's kid.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(real.kid().to_string());
    let other_pem = other.to_pem().to_string();
    let forged =
        jsonwebtoken::encode(&header, &good, &jsonwebtoken::EncodingKey::from_ec_pem(other_pem.as_bytes()).unwrap())
            .unwrap();
    refused("another key under the real kid", env.v2(reqwest::Method::GET, &path, Some(&forged)).await.0);
    // Wrong issuer, wrong audience, expired, not yet valid.
    let variant = |edit: &dyn Fn(&mut Claims)| {
        let mut c = good.clone();
        edit(&mut c);
        c.sign(&real).unwrap()
    };
    for (name, token) in [
        ("wrong issuer", variant(&|c| c.iss = "evil".into())),
        ("wrong audience", variant(&|c| c.aud = "another-registry".into())),
        (
            "expired",
            variant(&|c| {
                c.exp -= 600;
                c.iat -= 900;
                c.nbf -= 900;
            }),
        ),
        ("not yet valid", variant(&|c| c.nbf += 600)),
        ("scope for another repository", variant(&|c| c.access = access(&format!("{a_slug}/other"), &["pull"]))),
        ("push only", variant(&|c| c.access = access(&repo, &["push"]))),
    ] {
        refused(name, env.v2(reqwest::Method::GET, &path, Some(&token)).await.0);
    }
    // B's own token with A's repository edited into its claims: the signature no longer matches.
    let b_token = env.token(&b_key, &format!("repository:{b_slug}/web:pull,push")).await;
    let edited = tampered(&b_token, |c| {
        c["access"] = json!([{"type": "repository", "name": repo, "actions": ["pull", "push"]}])
    });
    refused("another tenant's scope edited in", env.v2(reqwest::Method::GET, &path, Some(&edited)).await.0);
    refused(
        "… also for a push",
        env.v2(reqwest::Method::POST, &format!("{repo}/blobs/uploads/"), Some(&edited)).await.0,
    );
    // Unsigned (`alg: none`) and HMAC-signed tokens.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": real.kid()}).to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&good).unwrap())
    );
    refused("alg none", env.v2(reqwest::Method::GET, &path, Some(&none)).await.0);
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(real.kid().to_string());
    let hmac =
        jsonwebtoken::encode(&hs, &good, &jsonwebtoken::EncodingKey::from_secret(real.kid().as_bytes())).unwrap();
    refused("HS256", env.v2(reqwest::Method::GET, &path, Some(&hmac)).await.0);
    refused("garbage", env.v2(reqwest::Method::GET, &path, Some("not-a-token")).await.0);
    // An API key is no registry token.
    refused("an API key", env.v2(reqwest::Method::GET, &path, Some(&a_key)).await.0);

    // The image is untouched and the real token still works.
    let pull = env.token(&a_key, &format!("repository:{repo}:pull")).await;
    let (status, manifest, _) = env.v2(reqwest::Method::GET, &path, Some(&pull)).await;
    assert_eq!((status, sha256(&manifest)), (200, digest));
    assert_eq!(env.registry.stored_repositories(), [repo]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_token_requests_and_bad_push_input_are_refused_precisely() {
    let env = start().await;
    let anon = Api::new(&env.server);
    let (key, slug) = anon.register("ops@acme.example", "Acme").await;
    let own = format!("repository:{slug}/web:pull,push");

    // A good request, by Basic and by Bearer: the token service's answer as the spec shapes it.
    let (status, body, _) = env.token_request(Some(&key), &[("service", SERVICE), ("scope", &own)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let c = claims(body["token"].as_str().unwrap());
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str(), c["sub"].as_str()),
        (Some("max-cloud"), Some(SERVICE), Some("ops@acme.example"))
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert_eq!(
        c["access"],
        json!([{"type": "repository", "name": format!("{slug}/web"), "actions": ["pull", "push"]}])
    );
    let bearer = env.http.get(env.token_url()).query(&[("service", SERVICE), ("scope", &own)]).bearer_auth(&key);
    let resp = bearer.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    // Several scopes (repeated and space-separated): the granted subset; none at all: a login check.
    let (status, body, _) = env
        .token_request(
            Some(&key),
            &[
                ("service", SERVICE),
                ("scope", &format!("repository:{slug}/a:pull repository:globex/b:pull")),
                ("scope", "registry:catalog:*"),
                ("account", "whoever"),
                ("client_id", "docker"),
                ("offline_token", "true"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": format!("{slug}/a"), "actions": ["pull"]}])
    );
    let (status, body, _) = env.token_request(Some(&key), &[("service", SERVICE)]).await;
    assert_eq!(status, 200);
    let login = body["token"].as_str().unwrap();
    assert_eq!(claims(login)["access"], json!([]));
    // What `docker login` then checks: the registry's base endpoint takes the token.
    assert_eq!(env.v2(reqwest::Method::GET, "", Some(login)).await.0, 200);

    // Credentials: 401 asking for Basic.
    let basic = |name: &str, (status, body, challenge): (u16, Value, String)| {
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}");
        assert_eq!(challenge, "Basic realm=\"max-cloud registry\"", "{name}");
    };
    basic("none", env.token_request(None, &[("service", SERVICE), ("scope", &own)]).await);
    basic(
        "revoked key",
        env.token_request(Some("mc_0000000000000000000000000000000000000000000000"), &[("service", SERVICE)]).await,
    );
    basic("not an API key", env.token_request(Some("hunter2"), &[("service", SERVICE)]).await);
    let resp = env
        .http
        .get(env.token_url())
        .query(&[("service", SERVICE)])
        .header("authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Parameters: 400 naming the parameter.
    let bad = |query: Vec<(&'static str, String)>, field: &'static str| {
        let env = &env;
        let key = key.clone();
        async move {
            let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body, _) = env.token_request(Some(&key), &q).await;
            assert_eq!(status, 400, "{query:?}: {body}");
            assert_eq!(body["error"]["field"], field, "{query:?}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(field), "{body}");
        }
    };
    bad(vec![("scope", own.clone())], "service").await;
    bad(vec![("service", "docker.io".into()), ("scope", own.clone())], "service").await;
    bad(vec![("service", SERVICE.into()), ("service", SERVICE.into())], "service").await;
    for scope in [
        "repository",
        "repository:acme/web",
        "image:acme/web:pull",
        "repository:Acme/Web:pull",
        "repository:acme/web:fly",
        "repository:acme//web:pull",
        "repository(plugin:acme/web:pull",
        "",
    ] {
        bad(vec![("service", SERVICE.into()), ("scope", scope.into())], "scope").await;
    }
    bad(vec![("service", SERVICE.into()), ("offline_token", "maybe".into())], "offline_token").await;
    bad(vec![("service", SERVICE.into()), ("account", "a".repeat(300))], "account").await;
    bad(vec![("service", SERVICE.into()), ("scopes", own.clone())], "scopes").await;

    // `maxcloud push` input: one line naming what is wrong; nothing reaches the registry.
    let home = tempfile::tempdir().unwrap();
    let layout = home.path().join("layout");
    write_oci_layout(&layout, "bad input");
    let layout = layout.to_str().unwrap().to_string();
    let refused = |args: Vec<String>, wanted: &'static str| {
        let env = &env;
        let key = key.clone();
        let home = home.path().to_path_buf();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, _, err) = env.cli(&home, Some(&key), &args).await;
            assert!(!ok, "{args:?} must fail");
            assert!(err.contains(wanted), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
    };
    let push = |image: &str, name: &str| vec!["push".to_string(), image.to_string(), "--name".into(), name.to_string()];
    refused(push("/nonexistent/image", "web"), "LOCAL-IMAGE /nonexistent/image").await;
    refused(push(home.path().to_str().unwrap(), "web"), "neither an OCI image layout").await;
    let not_tar = home.path().join("image.tar");
    std::fs::write(&not_tar, b"this is no tar").unwrap();
    refused(push(not_tar.to_str().unwrap(), "web"), "LOCAL-IMAGE").await;
    for (name, wanted) in [
        ("Web", "--name \"Web\""),
        ("web:", "the tag must not be empty"),
        ("web:-1", "--name \"web:-1\""),
        ("a//b", "--name \"a//b\""),
        ("web/", "--name"),
        ("we b", "--name"),
        (":1", "the name must not be empty"),
    ] {
        refused(push(&layout, name), wanted).await;
    }
    let long_tag = format!("web:{}", "t".repeat(129));
    refused(push(&layout, &long_tag), "at most 128").await;
    // A corrupt layout: a blob that is not what its digest says.
    let corrupt = home.path().join("corrupt");
    write_oci_layout(&corrupt, "soon corrupt");
    let blobs = corrupt.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::read(&path).unwrap().len() > 1000 {
            std::fs::write(&path, tar_of(&[("hello.txt", b"tampered")])).unwrap();
        }
    }
    refused(push(corrupt.to_str().unwrap(), "web"), "does not match its digest").await;
    // Without credentials.
    let (ok, _, err) = env.cli(home.path(), None, &["push", &layout, "--name", "web"]).await;
    assert!(!ok && err.contains("API key"), "{err}");
    let (ok, _, err) = env.cli(home.path(), None, &["images"]).await;
    assert!(!ok && err.contains("API key"), "{err}");

    assert!(env.registry.stored_repositories().is_empty(), "nothing written: {:?}", env.registry.stored_repositories());
    let (status, images) = anon.with_key(&key).get("/registry/images").await;
    assert_eq!((status, images["images"].clone()), (200, json!([])));
    // Documented in the OpenAPI document with their wire types.
    let (_, doc) = anon.get("/openapi.json").await;
    for path in ["/api/v1/registry/token", "/api/v1/registry", "/api/v1/registry/images"] {
        assert!(doc["paths"][path]["get"]["operationId"].is_string(), "OpenAPI lacks {path}");
    }
    for schema in ["RegistryToken", "RegistryInfo", "RegistryImages", "RegistryImage"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "OpenAPI lacks {schema}");
    }
    // The registry endpoints need a key too.
    assert_eq!(anon.get("/registry").await.0, 401);
    assert_eq!(anon.get("/registry/images").await.0, 401);
}

#[test]
fn the_server_publishes_its_key_and_refuses_half_a_registry_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // `dev` generates the key and its JWKS; `registry-jwks` prints the same JWKS from the key file.
    let server = Server::start(&data, Options::default());
    let key_file = data.join("registry/token-key.pem");
    let out = std::process::Command::new(maxcloud_tests::bin("maxcloud-server"))
        .args(["registry-jwks", "--registry-key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let written: Value = serde_json::from_slice(&std::fs::read(data.join("registry/jwks.json")).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(
        printed["keys"][0]["kid"],
        SigningKey::from_pem(&std::fs::read_to_string(&key_file).unwrap()).unwrap().kid()
    );
    drop(server);
    // A restart keeps the key (tokens issued before stay valid).
    let again = Server::start(&data, Options::default());
    let rewritten: Value = serde_json::from_slice(&std::fs::read(data.join("registry/jwks.json")).unwrap()).unwrap();
    assert_eq!(rewritten, written);
    drop(again);

    // A registry that cannot be reached: listing answers 503, tokens are still issued; without a registry URL
    // `push` says there is none.
    let closed = maxcloud_testenv::process::free_port().unwrap();
    let unreachable = Server::start(
        &tmp.path().join("unreachable"),
        Options {
            env: vec![("MAXCLOUD_REGISTRY_URL".into(), format!("http://127.0.0.1:{closed}"))],
            ..Default::default()
        },
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let anon = Api::new(&unreachable);
        let (key, _) = anon.register("ops@acme.example", "Acme").await;
        let (status, body) = anon.with_key(&key).get("/registry/images").await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("unavailable")), "{body}");
        let (status, info) = anon.with_key(&key).get("/registry").await;
        assert_eq!((status, info["host"].as_str()), (200, Some(format!("127.0.0.1:{closed}").as_str())));
        let tokens = anon.req(reqwest::Method::GET, "/registry/token?service=max-cloud-registry").bearer_auth(&key);
        assert_eq!(anon.send(tokens).await.0, 200);
    });
    drop(unreachable);
    let no_url = Server::start(&tmp.path().join("no-url"), Options::default());
    let (key, layout) = runtime.block_on(async {
        let (key, _) = Api::new(&no_url).register("ops@acme.example", "Acme").await;
        let (status, body) = Api::new(&no_url).with_key(&key).get("/registry/images").await;
        assert_eq!(status, 503, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("--registry-url"), "{body}");
        (key, tmp.path().join("layout"))
    });
    write_oci_layout(&layout, "nowhere to go");
    let out = cli_command(tmp.path(), &no_url, Some(&key))
        .args(["push", layout.to_str().unwrap(), "--name", "web"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no container registry connected"), "{err}");
    drop(no_url);

    let server_fails = |args: &[&str], wanted: &str| {
        let out = std::process::Command::new(maxcloud_tests::bin("maxcloud-server"))
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(wanted), "{args:?}: {err}");
    };
    let not_a_key = tmp.path().join("not-a-key.pem");
    std::fs::write(&not_a_key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    server_fails(&["registry-jwks", "--registry-key-file", not_a_key.to_str().unwrap()], "PKCS#8");
    server_fails(&["registry-jwks", "--registry-key-file", "/nonexistent.pem"], "/nonexistent.pem");
    let serve_dir = tmp.path().join("serve");
    let serve_dir = serve_dir.to_str().unwrap();
    server_fails(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", serve_dir, "--registry-url", "http://127.0.0.1:5000"],
        "--registry-key-file",
    );
    server_fails(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", serve_dir, "--registry-key-file", "/nonexistent.pem"],
        "/nonexistent.pem",
    );
}
