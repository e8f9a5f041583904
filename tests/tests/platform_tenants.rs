//! Tenant onboarding through the real server: registering an organisation commits the tenant's Flux
//! directory (`flux/tenants/<slug>/`) to the platform repository `<data>/repos/platform.git` in one commit;
//! the files carry what a lockdown cluster needs and no secret; a restart (replay) commits nothing; the
//! platform repository is served read-only to the platform Git token only.

use std::path::Path;

use maxcloud_tests::platform::parse_yaml_docs;
use maxcloud_tests::{git, git_output, Api, Options, Server};
use serde_json::Value;

const PLATFORM_TOKEN: &str = "mcp_platform-test-token-3c1f9a";

fn options() -> Options {
    Options { env: vec![("MAXCLOUD_PLATFORM_GIT_TOKEN".into(), PLATFORM_TOKEN.into())], ..Default::default() }
}

fn commits(repo: &Path) -> Vec<String> {
    git(repo, &["log", "--format=%H %s", "main"]).lines().map(String::from).collect()
}

fn file(repo: &Path, path: &str) -> String {
    git(repo, &["show", &format!("main:{path}")])
}

fn docs(repo: &Path, slug: &str, name: &str) -> Vec<Value> {
    parse_yaml_docs(&file(repo, &format!("flux/tenants/{slug}/{name}")))
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

/// Every blob of every commit of the repository, concatenated (to look for secrets anywhere in history).
fn all_history(repo: &Path) -> String {
    git(repo, &["log", "-p", "--all", "--format=%H%n%B"])
}

#[tokio::test]
async fn registering_commits_the_tenant_to_the_platform_repository_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, options());
    let platform = data.join("repos/platform.git");
    assert!(platform.is_dir(), "the platform repository is created at start-up");
    assert_eq!(commits(&platform).len(), 1);
    let initial = parse_yaml_docs(&file(&platform, "flux/tenants/kustomization.yaml"));
    assert_eq!(initial[0]["resources"], serde_json::json!([]));

    let api = Api::new(&server);
    let (key_a, slug_a) = api.register("alice@acme.test", "Acme Shop").await;
    assert_eq!(slug_a, "acme-shop");
    let log = commits(&platform);
    assert_eq!(log.len(), 2, "one commit per tenant: {log:?}");
    assert!(log[0].ends_with("Add tenant acme-shop"), "{log:?}");
    let changed = git(&platform, &["show", "--name-only", "--format=", "main"]);
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "flux/tenants/acme-shop/kustomization.yaml",
            "flux/tenants/acme-shop/namespace.yaml",
            "flux/tenants/acme-shop/quota.yaml",
            "flux/tenants/acme-shop/rbac.yaml",
            "flux/tenants/acme-shop/receiver.yaml",
            "flux/tenants/acme-shop/sync.yaml",
            "flux/tenants/kustomization.yaml",
        ]
    );

    // Namespace with the tenant label and Pod Security "restricted".
    let ns = &docs(&platform, &slug_a, "namespace.yaml")[0];
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["metadata"]["name"], "mc-acme-shop");
    assert_eq!(ns["metadata"]["labels"]["maxcloud.dev/tenant"], "acme-shop");
    assert_eq!(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");

    // ServiceAccount, Role on the five maxcloud.dev kinds and the tenant's own Secrets (the SOPS files Flux
    // decrypts) only, RoleBinding, all in the namespace.
    let rbac = docs(&platform, &slug_a, "rbac.yaml");
    assert_eq!(find(&rbac, "ServiceAccount")["metadata"]["name"], "maxcloud-tenant");
    let role = find(&rbac, "Role");
    assert_eq!(role["metadata"]["namespace"], "mc-acme-shop");
    let rules = role["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["apiGroups"], serde_json::json!(["maxcloud.dev"]));
    assert_eq!(
        (&rules[1]["apiGroups"], &rules[1]["resources"]),
        (&serde_json::json!([""]), &serde_json::json!(["secrets"]))
    );
    assert_eq!(
        rules[0]["resources"],
        serde_json::json!(["apps", "databases", "registries", "dnsrecords", "workspaces"])
    );
    for verb in ["get", "list", "watch", "create", "update", "patch", "delete"] {
        assert!(rules[0]["verbs"].as_array().unwrap().contains(&verb.into()), "{verb}");
    }
    assert!(rbac.iter().all(|d| d["kind"] != "ClusterRoleBinding"));

    // The Flux sync impersonates the tenant, into its namespace, from its repository.
    let sync = docs(&platform, &slug_a, "sync.yaml");
    let source = find(&sync, "GitRepository");
    assert_eq!(source["metadata"]["namespace"], "mc-acme-shop");
    assert_eq!(source["spec"]["url"], format!("{}/git/acme-shop.git", server.url), "default: the server's own URL");
    assert_eq!(source["spec"]["secretRef"]["name"], "maxcloud-git-token");
    assert!(source["spec"]["interval"].is_string());
    let ks = find(&sync, "Kustomization");
    assert_eq!(ks["spec"]["serviceAccountName"], "maxcloud-tenant");
    assert_eq!(ks["spec"]["targetNamespace"], "mc-acme-shop");
    assert_eq!(ks["spec"]["prune"], true);
    // SOPS files are decrypted with the tenant's own age key, a Secret the platform creates in the cluster.
    assert_eq!(
        ks["spec"]["decryption"],
        serde_json::json!({"provider": "sops", "secretRef": {"name": "maxcloud-sops-age"}})
    );
    assert_eq!(ks["spec"]["sourceRef"]["kind"], "GitRepository");
    assert_eq!(ks["spec"]["sourceRef"]["name"], source["metadata"]["name"]);
    let receiver = &docs(&platform, &slug_a, "receiver.yaml")[0];
    assert_eq!(receiver["kind"], "Receiver");
    assert_eq!(receiver["spec"]["type"], "generic-hmac");
    assert_eq!(receiver["spec"]["secretRef"]["name"], "maxcloud-webhook-token");
    assert_eq!(receiver["spec"]["resources"][0]["kind"], "GitRepository");
    assert_eq!(receiver["spec"]["resources"][0]["name"], source["metadata"]["name"]);
    let quota = docs(&platform, &slug_a, "quota.yaml");
    assert!(quota.iter().any(|d| d["kind"] == "ResourceQuota") && quota.iter().any(|d| d["kind"] == "LimitRange"));

    // A second tenant: its own directory and a RoleBinding that covers only its namespace.
    let (key_b, slug_b) = api.register("bob@beta.test", "Beta GmbH").await;
    assert_eq!(commits(&platform).len(), 3);
    let binding = docs(&platform, &slug_b, "rbac.yaml").into_iter().find(|d| d["kind"] == "RoleBinding").unwrap();
    assert_eq!(binding["metadata"]["namespace"], "mc-beta-gmbh");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "maxcloud-tenant", "namespace": "mc-beta-gmbh"}])
    );
    let tenants = parse_yaml_docs(&file(&platform, "flux/tenants/kustomization.yaml"));
    assert_eq!(tenants[0]["resources"], serde_json::json!(["acme-shop", "beta-gmbh"]));

    // A Git read token made now must not show up either.
    let (status, token) =
        api.with_key(&key_a).send(api.with_key(&key_a).req(reqwest::Method::POST, "/auth/git-tokens")).await;
    assert_eq!(status, 201, "{token}");
    let git_token = token["token"].as_str().map(String::from);
    assert!(git_token.is_some());

    // No secret in any file of any commit.
    let history = all_history(&platform);
    for secret in
        [Some(key_a.clone()), Some(key_b.clone()), Some(PLATFORM_TOKEN.to_string()), git_token].into_iter().flatten()
    {
        assert!(!history.contains(&secret), "a secret was committed to the platform repository");
    }
    assert!(!history.contains("mc_"), "no API key or token prefix in the platform repository");

    // The organisation name "Platform" cannot take over the platform repository.
    let (_, slug_p) = api.register("carol@platform.test", "Platform").await;
    assert_eq!(slug_p, "platform-org");
    assert_eq!(commits(&platform).len(), 4);

    // Served read-only to the platform token only.
    let base = server.url.trim_start_matches("http://");
    let clone_dir = tmp.path().join("clones");
    std::fs::create_dir_all(&clone_dir).unwrap();
    let url = |password: &str, repo: &str| format!("http://token:{password}@{base}/git/{repo}.git");
    let out = git_output(&clone_dir, &["clone", "-q", &url(PLATFORM_TOKEN, "platform"), "platform"]);
    assert!(out.status.success(), "platform token clones: {}", String::from_utf8_lossy(&out.stderr));
    assert!(clone_dir.join("platform/flux/tenants/beta-gmbh/sync.yaml").is_file());
    let out = git_output(&clone_dir, &["clone", "-q", &url(&key_a, "platform"), "denied"]);
    assert!(!out.status.success(), "a tenant API key must not read the platform repository");
    let out = git_output(&clone_dir, &["clone", "-q", &url(&key_a, "acme-shop"), "own"]);
    assert!(out.status.success(), "tenant keys still read their own repository");
    let cloned = clone_dir.join("platform");
    git(&cloned, &["-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m", "evil"]);
    let out = git_output(&cloned, &["push", "-q", "origin", "HEAD:main"]);
    assert!(!out.status.success(), "the platform repository is read-only");

    // Replay: a restart onboards every stored tenant again, which changes nothing. (The restarted server listens
    // on another free port, so it is given the first one's URL: a changed URL would rightly update every tenant.)
    let before = commits(&platform);
    let git_base = format!("{}/git", server.url);
    drop(server);
    let mut opts = options();
    opts.env.push(("MAXCLOUD_TENANT_GIT_BASE_URL".into(), git_base));
    let server = Server::start(&data, opts);
    assert_eq!(commits(&platform), before, "a replay commits nothing");
    drop(server);
}

#[tokio::test]
async fn the_platform_repository_is_not_served_without_a_platform_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let (key, _) = Api::new(&server).register("alice@acme.test", "Acme Shop").await;
    let base = server.url.trim_start_matches("http://");
    let out = git_output(tmp.path(), &["clone", "-q", &format!("http://token:{key}@{base}/git/platform.git"), "p"]);
    assert!(!out.status.success());
    let resp = reqwest::Client::new()
        .get(format!("{}/git/platform.git/info/refs?service=git-upload-pack", server.url))
        .basic_auth("token", Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_tenant_git_base_url_is_configurable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let opts = Options {
        env: vec![("MAXCLOUD_TENANT_GIT_BASE_URL".into(), "https://api.maxcloud.dev/git/".into())],
        ..Default::default()
    };
    let server = Server::start(&data, opts);
    let (_, slug) = Api::new(&server).register("alice@acme.test", "Acme Shop").await;
    let sync = docs(&data.join("repos/platform.git"), &slug, "sync.yaml");
    assert_eq!(find(&sync, "GitRepository")["spec"]["url"], "https://api.maxcloud.dev/git/acme-shop.git");
}
