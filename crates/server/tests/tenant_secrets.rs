//! The tenants' Flux Secrets against a real kube-apiserver: a minted Git read token with the local provider, the
//! configured read-only credentials with a forge (rotated when they change), or none.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use maxcloud_server::tenant_secrets::{ensure, GitCredentials};
use maxcloud_store::NewKey;
use maxcloud_testenv::ControlPlane;

fn data(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn flux_secrets_hold_the_right_git_credentials() {
    let cp = ControlPlane::start().await.unwrap();
    let client = cp.client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        maxcloud_server::open_store(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await.unwrap();
    let key = |n: &str| NewKey { name: n.into(), prefix: format!("mc_{n}"), hash: format!("hash-{n}") };
    let mut tenants = Vec::new();
    for slug in ["local", "forge", "unset"] {
        let reg = store.register(&format!("{slug}@example.com"), slug, |_| slug.to_string(), key(slug)).await.unwrap();
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("mc-{slug}")}})).unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
        tenants.push(reg.tenant);
    }
    let secrets = |slug: &str| Api::<Secret>::namespaced(client.clone(), &format!("mc-{slug}"));
    let catalog = maxcloud_catalog::Catalog::load_dir(&maxcloud_server::default_xrds_dir()).unwrap();
    let repos = std::sync::Arc::new(maxcloud_gitops::Repos::new(dir.path().join("repos")));
    let config = maxcloud_orders::WorkerConfig { run_worker: false, ..Default::default() };
    let master = maxcloud_secrets::MasterKey::load_or_create(&dir.path().join("master.agekey")).unwrap();
    let orders = maxcloud_orders::OrderService::new(store.clone(), std::sync::Arc::new(catalog), repos, config)
        .with_master_key(master);

    // Local provider: a token minted for the tenant (stored hashed, the minting audited).
    assert!(ensure(&client, &orders, &tenants[0], "hook-1", &GitCredentials::Mint).await.unwrap());
    let git = secrets("local").get(maxcloud_gitops::TENANT_GIT_SECRET).await.unwrap();
    assert_eq!(data(&git, "username"), "flux");
    assert!(data(&git, "password").starts_with(maxcloud_api::auth::GIT_TOKEN_PREFIX));
    let audit = store.audit_log(Some(&tenants[0].id), 10).await.unwrap();
    assert!(audit.iter().any(|e| e.entry.action == "flux.git-token.create" && e.entry.status == 201));
    assert!(!ensure(&client, &orders, &tenants[0], "hook-1", &GitCredentials::Mint).await.unwrap(), "nothing to do");
    // The tenant's age identity for Flux's SOPS decryption: the key the order service encrypts to, unsealed.
    let sops = secrets("local").get(maxcloud_gitops::TENANT_SOPS_SECRET).await.unwrap();
    let identity = data(&sops, maxcloud_server::tenant_secrets::SOPS_IDENTITY_KEY);
    assert!(identity.starts_with("AGE-SECRET-KEY-1"), "{identity}");
    assert_eq!(identity, orders.tenant_key(&tenants[0]).await.unwrap().identity());
    let sealed = store.sops_key(&tenants[0].id).await.unwrap().unwrap();
    assert!(!sealed.sealed.contains(&identity), "the store holds the identity sealed only");

    // A forge: the configured read-only credentials, kept up to date.
    let creds = |password: &str| GitCredentials::Static { username: "flux-reader".into(), password: password.into() };
    assert!(ensure(&client, &orders, &tenants[1], "hook-1", &creds("read-1")).await.unwrap());
    let git = secrets("forge").get(maxcloud_gitops::TENANT_GIT_SECRET).await.unwrap();
    assert_eq!((data(&git, "username"), data(&git, "password")), ("flux-reader".into(), "read-1".into()));
    assert!(!ensure(&client, &orders, &tenants[1], "hook-1", &creds("read-1")).await.unwrap());
    assert!(ensure(&client, &orders, &tenants[1], "hook-2", &creds("read-2")).await.unwrap(), "rotated");
    let git = secrets("forge").get(maxcloud_gitops::TENANT_GIT_SECRET).await.unwrap();
    assert_eq!(data(&git, "password"), "read-2");
    let hook = secrets("forge").get(maxcloud_gitops::TENANT_WEBHOOK_SECRET).await.unwrap();
    assert_eq!(data(&hook, "token"), "hook-2");
    assert!(store.audit_log(Some(&tenants[1].id), 10).await.unwrap().is_empty(), "no token minted for a forge tenant");

    // None configured: only the Receiver token.
    assert!(ensure(&client, &orders, &tenants[2], "hook-1", &GitCredentials::Unset).await.unwrap());
    assert!(secrets("unset").get_opt(maxcloud_gitops::TENANT_GIT_SECRET).await.unwrap().is_none());
    assert!(secrets("unset").get_opt(maxcloud_gitops::TENANT_WEBHOOK_SECRET).await.unwrap().is_some());

    // No namespace yet: an error, to be retried.
    let ghost = maxcloud_store::Tenant { slug: "ghost".into(), ..tenants[2].clone() };
    assert!(ensure(&client, &orders, &ghost, "hook-1", &GitCredentials::Unset).await.is_err());
}
