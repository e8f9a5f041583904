//! Tenant secrets (issue 7, part 1): `maxcloud secrets set|list|delete` and `/api/v1/secrets`. Values are encrypted
//! to the tenant's own age key before anything is stored and reach Git only as SOPS files; every object of every
//! repository, the database and the server's log are scanned for the plain texts. Apps read secrets with
//! `--secret-env`. Bad input is refused by name and writes nothing; another tenant's secrets answer 404.
//! (That Flux decrypts the files into the tenant namespace is shown in `flux_sync`.)

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use maxcloud_secrets::{decrypt_secret, TenantKey};
use maxcloud_tests::{cli_command, git, git_output, repo_snapshot, Api, Options, Server};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn put(api: &Api, name: &str, body: &Value) -> (u16, Value) {
    api.send(api.req(reqwest::Method::PUT, &format!("/secrets/{name}")).json(body)).await
}

/// Every object of every repository under `repos` (all refs, all history, notes included) as text.
fn all_git_objects(repos: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(repos).unwrap() {
        let repo = entry.unwrap().path();
        let objects = git(&repo, &["rev-list", "--all", "--objects"]);
        for id in objects.lines().filter_map(|l| l.split_whitespace().next()) {
            text.push_str(&String::from_utf8_lossy(&git_output(&repo, &["cat-file", "-p", id]).stdout));
        }
    }
    text
}

/// Every byte the server keeps in its data directory (database, WAL, keys, repositories) and its log.
fn all_server_bytes(server: &Server) -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<u8>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.extend(bytes);
            }
        }
    }
    let mut out = Vec::new();
    walk(&server.data_dir, &mut out);
    out.extend(server.log().into_bytes());
    out
}

fn maxcloud(home: &Path, server: &Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = cli_command(home, server, Some(key)).args(args).output().expect("run maxcloud");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_reach_git_only_encrypted_to_the_tenants_key() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@alpha.example", "Alpha").await;
    let (other_key, other_slug) = anon.register("eve@beta.example", "Beta").await;
    let api = anon.with_key(&key);
    let other = anon.with_key(&other_key);

    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let certificate = format!("-----BEGIN CERT-----\n{}\n-----END CERT-----\n", uuid::Uuid::new_v4().simple());
    let cert_file = tmp.path().join("tls.crt");
    std::fs::write(&cert_file, &certificate).unwrap();

    // Set with the CLI: KEY=VALUE and --from-file.
    let (ok, stdout, stderr) = maxcloud(
        &home,
        &server,
        &key,
        &[
            "secrets",
            "set",
            "db",
            &format!("password={password}"),
            "user=app",
            "--from-file",
            &format!("tls.crt={}", cert_file.display()),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("password, tls.crt, user") && stdout.contains("secrets/db.yaml"), "{stdout}");
    assert!(!stdout.contains(&password), "values are never shown: {stdout}");
    let (status, db) = api.get("/secrets/db").await;
    assert_eq!(status, 200, "{db}");
    assert_eq!(db["keys"], json!(["password", "tls.crt", "user"]));
    let order = api.wait_order(db["order_id"].as_str().unwrap(), "merged", WAIT).await;
    assert_eq!((order["kind"].as_str(), order["action"].as_str()), (Some("Secret"), Some("create")), "{order}");

    // On main: a SOPS file that only the tenant's key opens, with the values and the tenant's namespace.
    let repo = server.repo_dir(&slug);
    let file = git(&repo, &["show", "main:secrets/db.yaml"]);
    assert!(file.contains("ENC[AES256_GCM,data:") && file.contains("encrypted_regex: ^(data|stringData)$"), "{file}");
    let tenant_key = TenantKey::parse(&server.tenant_key(&slug)).unwrap();
    let opened = decrypt_secret(&file, &tenant_key).unwrap();
    assert_eq!(opened.namespace, format!("mc-{slug}"));
    assert_eq!(opened.data["password"], password);
    assert_eq!(opened.data["tls.crt"], certificate);
    assert_eq!(opened.data["user"], "app");
    let other_tenant_key = TenantKey::parse(&server.tenant_key(&other_slug)).unwrap();
    assert!(decrypt_secret(&file, &other_tenant_key).is_err(), "another tenant's key cannot open it");
    // The commit's texts name the keys only.
    let message = git(&repo, &["log", "-1", "--format=%B", "main"]);
    assert!(message.contains("Secret") && !message.contains(&password), "{message}");

    // Replacing: the secret holds exactly the new keys.
    let rotated = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = put(&api, "db", &json!({"data": {"password": rotated}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"], json!(["password"]));
    api.wait_order(body["order_id"].as_str().unwrap(), "merged", WAIT).await;
    let opened = decrypt_secret(&git(&repo, &["show", "main:secrets/db.yaml"]), &tenant_key).unwrap();
    assert_eq!(opened.data, [("password".to_string(), rotated.clone())].into());

    // An App reads it with --secret-env.
    let (ok, stdout, stderr) = maxcloud(
        &home,
        &server,
        &key,
        &["deploy", "nginx:1.27", "--name", "shop", "--secret-env", "DB_PASSWORD=db:password", "--wait"],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("DB_PASSWORD=db:password"), "{stdout}");
    let app = git(&repo, &["show", "main:apps/shop.yaml"]);
    let app: Value = serde_saphyr::from_str(&app).unwrap();
    assert_eq!(app["spec"]["secretEnv"], json!([{"name": "DB_PASSWORD", "secretName": "db", "key": "password"}]));

    // Listing shows names and keys only.
    let (ok, stdout, _) = maxcloud(&home, &server, &key, &["secrets", "list"]);
    assert!(ok && stdout.contains("db") && stdout.contains("password") && !stdout.contains(&rotated), "{stdout}");
    let (_, list) = api.get("/secrets").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // Resources are the catalog's kinds: secrets have their own list.
    let (_, resources) = api.get("/resources").await;
    assert!(resources.as_array().unwrap().iter().all(|r| r["kind"] != "Secret"), "{resources}");

    // Another tenant: nothing of A's, and its own secret of the same name is its own.
    assert_eq!(other.get("/secrets").await.1, json!([]));
    assert_eq!(other.get("/secrets/db").await.0, 404);
    assert_eq!(other.delete("/secrets/db").await.0, 404);
    let theirs = format!("theirs-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = put(&other, "db", &json!({"data": {"password": theirs}})).await;
    assert_eq!(status, 201, "{body}");
    other.wait_order(body["order_id"].as_str().unwrap(), "merged", WAIT).await;
    let opened = decrypt_secret(&git(&repo, &["show", "main:secrets/db.yaml"]), &tenant_key).unwrap();
    assert_eq!(opened.data["password"], rotated, "A's secret unchanged");

    // Delete: the file leaves main, the secret the list.
    let (ok, _, stderr) = maxcloud(&home, &server, &key, &["secrets", "delete", "db"]);
    assert!(ok, "{stderr}");
    for _ in 0..300 {
        if api.get("/secrets/db").await.0 == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.get("/secrets/db").await.0, 404);
    assert!(!git_output(&repo, &["cat-file", "-e", "main:secrets/db.yaml"]).status.success(), "file removed");

    // No plain text anywhere: not in any object of any repository (history and notes included), not in the
    // database, its WAL, the key files or the server's log. Base64 forms are checked too.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let plain = [password.clone(), rotated.clone(), theirs.clone(), certificate.lines().nth(1).unwrap().to_string()];
    let objects = all_git_objects(&server.data_dir.join("repos"));
    assert!(objects.contains("ENC[AES256_GCM"), "the scan sees the encrypted files");
    let bytes = String::from_utf8_lossy(&all_server_bytes(&server)).into_owned();
    for value in &plain {
        for form in [value.clone(), b64(value)] {
            assert!(!objects.contains(&form), "{form} found in a Git object");
            assert!(!bytes.contains(&form), "{form} found in the server's files or log");
        }
    }
    let (_, audit) = api.get("/audit?action=secrets.update").await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
    assert!(audit.to_string().contains("keys=password") && !audit.to_string().contains(&rotated), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_secret_requests_are_refused_by_name_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@alpha.example", "Alpha").await;
    let api = anon.with_key(&key);
    let (status, body) = put(&api, "kept", &json!({"data": {"k": "v"}})).await;
    assert_eq!(status, 201, "{body}");
    api.wait_order(body["order_id"].as_str().unwrap(), "merged", WAIT).await;
    let repo = server.repo_dir(&slug);
    let before = (repo_snapshot(&repo), api.get("/orders").await.1.as_array().unwrap().len());

    let big = "x".repeat(70_000);
    for (name, body, status, field) in [
        ("Bad_Name", json!({"data": {"k": "v"}}), 422, "name"),
        ("maxcloud-git-token", json!({"data": {"k": "v"}}), 422, "name"),
        ("ok", json!({"data": {}}), 422, "data"),
        ("ok", json!({"data": {"bad key": "v"}}), 422, "data.bad key"),
        ("ok", json!({"data": {"..": "v"}}), 422, "data..."),
        ("ok", json!({"data": {"big": big}}), 422, "data.big"),
        ("ok", json!({"data": {"k": 5}}), 422, "data.k"),
        ("ok", json!({"values": {"k": "v"}}), 400, "values"),
        ("ok", json!({}), 422, "data"),
    ] {
        let (got, answer) = put(&api, name, &body).await;
        let field_named = answer["error"]["field"].as_str();
        assert_eq!((got, field_named), (status, Some(field)), "{name} {body}: {answer}");
    }
    let not_json = api.req(reqwest::Method::PUT, "/secrets/ok").header("content-type", "application/json").body("{");
    assert_eq!(api.send(not_json).await.0, 400);
    let anonymous = anon.send(anon.req(reqwest::Method::PUT, "/secrets/ok").json(&json!({"data": {"k": "v"}}))).await;
    assert_eq!(anonymous.0, 401);
    assert_eq!(api.delete("/secrets/missing").await.0, 404);
    assert_eq!(api.delete("/secrets/Bad_Name").await.1["error"]["field"], "name");

    // Apps: secret references are checked by name before anything is ordered.
    for (secret_env, field) in [
        (json!({"1BAD": {"secret": "db", "key": "k"}}), "secret_env"),
        (json!({"OK": {"secret": "Bad_Name", "key": "k"}}), "secret_env"),
        (json!({"OK": {"secret": "db", "key": "bad key"}}), "secret_env"),
        (json!({"OK": {"secret": "db"}}), "secret_env.OK.key"),
    ] {
        let (status, body) =
            api.post("/services", &json!({"name": "app", "image": "nginx", "secret_env": secret_env})).await;
        assert!(status == 422 || status == 400, "{secret_env}: {status} {body}");
        assert!(body["error"]["field"].as_str().unwrap_or_default().starts_with(field), "{secret_env}: {body}");
    }

    // The CLI refuses malformed arguments before calling the server.
    for (args, message) in [
        (vec!["secrets", "set", "ok"], "give at least one KEY=VALUE"),
        (vec!["secrets", "set", "ok", "novalue"], "expected KEY=VALUE"),
        (vec!["secrets", "set", "ok", "=v"], "the key before '=' is empty"),
        (vec!["secrets", "set", "ok", "k=1", "k=2"], "given twice"),
        (vec!["secrets", "set", "ok", "--from-file", "k=/nonexistent/file"], "cannot read /nonexistent/file"),
        (vec!["deploy", "nginx", "--name", "app", "--secret-env", "DB=nocolon"], "expected VAR=SECRET:KEY"),
        (vec!["secrets", "set", "Bad_Name", "k=v"], "name"),
    ] {
        let out = cli_command(&home, &server, Some(&key)).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "{args:?}: {stderr}");
    }
    let after = (repo_snapshot(&repo), api.get("/orders").await.1.as_array().unwrap().len());
    assert_eq!(before, after, "refused requests wrote nothing");
    assert_eq!(api.get("/secrets").await.1.as_array().unwrap().len(), 1);
}
