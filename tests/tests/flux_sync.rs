//! The loop up to the cluster, without Crossplane: orders → the order service's tenant repo → real Flux
//! (source-, kustomize- and notification-controller with the platform's lockdown flags) pulling it over Git smart
//! HTTP from the running order service → objects in a real kube-apiserver with RBAC, applied as the tenant's
//! ServiceAccount.
//!
//! Each tenant is onboarded exactly as the platform does it: the files the server committed to its platform
//! repository (`flux/tenants/<slug>/`: namespace, quota, RBAC, GitRepository + Kustomization, Receiver) plus the
//! two Secrets the platform creates in the cluster (Git read token, Receiver HMAC token). The App type is
//! installed as the CRD Crossplane generates from `xrds/app.yaml` (`crossplane xrd convert`).
//!
//! Shown here: an App order lands in the tenant namespace with the order's labels (merge → present measured with
//! and without poking the tenant's Receiver), tenant isolation is enforced by the API server (a compromised
//! tenant repo can neither reach another namespace nor create kinds outside `maxcloud.dev`, and the
//! Kustomization reports the refusal), and a delete order makes Flux prune the object.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use maxcloud_testenv::flux::condition;
use maxcloud_testenv::{ControlPlane, Flux};
use maxcloud_tests::cluster::{
    app_crd, onboard, order_merged, Env, APP, CLUSTER_ROLE_BINDING, CONFIG_MAP, GIT_REPOSITORY, KUSTOMIZATION,
    TEST_INTERVAL,
};
use maxcloud_tests::{git, git_output, Api};
use serde_json::json;

const SECRET: (&str, &str, &str) = ("", "v1", "Secret");

/// Commits `files` (path → content; None deletes) on main of a bare repo with the `git` CLI: a test-only intrusion
/// simulating a compromised tenant repo (the order service is its only legitimate writer).
fn intrude(bare: &Path, scratch: &Path, message: &str, files: &[(&str, Option<&str>)]) {
    if !scratch.exists() {
        let parent = scratch.parent().expect("parent");
        let out = git_output(parent, &["clone", "-q", &bare.display().to_string(), &scratch.display().to_string()]);
        assert!(out.status.success(), "clone: {}", String::from_utf8_lossy(&out.stderr));
    } else {
        git(scratch, &["pull", "-q", "--ff-only", "origin", "main"]);
    }
    for (path, content) in files {
        let file = scratch.join(path);
        match content {
            Some(text) => {
                std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
                std::fs::write(&file, text).expect("write");
            }
            None => std::fs::remove_file(&file).expect("remove"),
        }
    }
    git(scratch, &["add", "-A"]);
    git(scratch, &["-c", "user.name=Mallory", "-c", "user.email=mallory@example.com", "commit", "-q", "-m", message]);
    git(scratch, &["push", "-q", "origin", "HEAD:main"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_reach_the_cluster_through_flux_and_tenants_stay_isolated() {
    let cp = ControlPlane::start().await.expect("control plane starts");
    eprintln!("control plane ready in {:?}", cp.startup);
    let flux = Flux::start(&cp).await.unwrap_or_else(|e| panic!("Flux starts: {e}"));
    eprintln!("{}", flux.report());
    let tmp = tempfile::tempdir().expect("tempdir");
    // The order service pokes each tenant's Receiver after a merge; its status aggregator watches the tenants'
    // Kustomizations, so merged orders become `applied`.
    let kubeconfig = cp.kubeconfig.clone();
    let env = Env::start(cp, flux, tmp.path(), (&kubeconfig, None));
    env.cp.apply(vec![app_crd()]).await.expect("install the App CRD");

    let anon = Api::new(&env.server);
    let a = onboard(&env, &anon, "alice@alpha.example", "Alpha").await;
    let b = onboard(&env, &anon, "bob@beta.example", "Beta").await;
    eprintln!("tenants {} and {} onboarded; {}", a.slug, b.slug, env.flux.report());

    // 1. Tenant A orders an App: merged → the order service calls A's Receiver → Flux pulls A's repo at once
    // (not at the GitRepository's interval).
    let shop = order_merged(&a, json!({"kind": "App", "name": "shop", "parameters": {"image": "nginx:1.27"}})).await;
    let (app, via_service) = env
        .wait_for(
            "App shop in tenant A's namespace (order service's Receiver call)",
            Duration::from_secs(90),
            || async { env.get(APP, &a.ns, "shop").await },
        )
        .await;
    let labels = &app["metadata"]["labels"];
    assert_eq!(labels["maxcloud.dev/order-id"], shop.as_str(), "{app}");
    assert_eq!(labels["maxcloud.dev/tenant"], a.slug.as_str(), "{app}");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "maxcloud", "{app}");
    assert_eq!(app["spec"]["image"], "nginx:1.27", "{app}");
    // The aggregator saw Flux apply a revision containing the merge commit: the order is `applied` (it stays
    // there: no Crossplane runs in this test to make the App ready).
    let order = a.api.wait_order(&shop, "applied", Duration::from_secs(30)).await;
    assert_eq!(order["state"], "applied", "{order}");
    assert!(order.to_string().contains("applied by Flux at main@sha1:"), "{order}");
    // Applied by Flux as the tenant's ServiceAccount, into the tenant's namespace only.
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "maxcloud-tenant", "{app}");
    assert_eq!(env.names(APP, None).await, [format!("{}/shop", a.ns)]);

    // 2. A second order, and the tenant's Receiver called right after the merge: applied at once.
    let api_order =
        order_merged(&a, json!({"kind": "App", "name": "api", "parameters": {"image": "nginx:1.27"}})).await;
    let poked = Instant::now();
    env.poke(&a.ns, &api_order).await;
    let (app, _) = env
        .wait_for("App api in tenant A's namespace (Receiver)", Duration::from_secs(30), || async {
            env.get(APP, &a.ns, "api").await
        })
        .await;
    let with_poke = poked.elapsed();
    assert_eq!(app["metadata"]["labels"]["maxcloud.dev/order-id"], api_order.as_str(), "{app}");
    eprintln!(
        "merge → App present: {via_service:?} with the order service's Receiver call (interval {TEST_INTERVAL}), \
         {with_poke:?} with a direct call"
    );
    assert!(
        via_service < Duration::from_secs(10),
        "the order service's Receiver call did not trigger the sync: {via_service:?}"
    );
    assert!(with_poke < Duration::from_secs(10), "the Receiver call did not speed up the sync: {with_poke:?}");

    // Tenant B's orders land in B's namespace only.
    order_merged(&b, json!({"kind": "App", "name": "blog", "parameters": {"image": "nginx:1.27"}})).await;
    env.poke(&b.ns, "blog").await;
    env.wait_for("App blog in tenant B's namespace", Duration::from_secs(30), || async {
        env.get(APP, &b.ns, "blog").await
    })
    .await;
    assert_eq!(
        env.names(APP, None).await,
        [format!("{}/api", a.ns), format!("{}/shop", a.ns), format!("{}/blog", b.ns)]
    );

    // Secrets: set through the order service and committed SOPS-encrypted; Flux decrypts them with the tenant's
    // own age key (the Secret the platform created beside the Git token) into the tenant's namespace only.
    let value = format!("s3cr3t-{}", std::process::id());
    let put = |api: &Api, body: serde_json::Value| {
        let api = api.clone();
        async move { api.send(api.req(reqwest::Method::PUT, "/secrets/db").json(&body)).await }
    };
    let (status, body) = put(&a.api, json!({"data": {"password": value, "user": "app"}})).await;
    assert_eq!(status, 201, "{body}");
    let (secret, decrypted_after) = env
        .wait_for("Secret db decrypted by Flux into tenant A's namespace", Duration::from_secs(60), || async {
            env.get(SECRET, &a.ns, "db").await
        })
        .await;
    let decoded = |secret: &serde_json::Value, key: &str| {
        let text = secret["data"][key].as_str().unwrap_or_default();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).expect("base64")).expect("UTF-8")
    };
    eprintln!("secret set → decrypted in the cluster: {decrypted_after:?}");
    assert_eq!((decoded(&secret, "password"), decoded(&secret, "user")), (value.clone(), "app".to_string()));
    assert_eq!(secret["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"], "maxcloud-tenant", "{secret}");
    assert!(secret.get("sops").is_none(), "applied decrypted: {secret}");
    let order = a.api.wait_order(body["order_id"].as_str().unwrap(), "applied", Duration::from_secs(30)).await;
    assert_eq!(order["state"], "applied", "{order}");
    let in_git = git(&env.server.repo_dir(&a.slug), &["show", "main:secrets/db.yaml"]);
    assert!(!in_git.contains(&value) && in_git.contains("ENC[AES256_GCM"), "{in_git}");
    assert!(env.get(SECRET, &b.ns, "db").await.is_none(), "tenant B's namespace has no copy");
    // A replaced value reaches the cluster the same way.
    let rotated = format!("{value}-rotated");
    let (status, body) = put(&a.api, json!({"data": {"password": rotated}})).await;
    assert_eq!(status, 200, "{body}");
    env.wait_for("the rotated value in tenant A's Secret", Duration::from_secs(60), || async {
        let secret = env.get(SECRET, &a.ns, "db").await?;
        (decoded(&secret, "password") == rotated).then_some(())
    })
    .await;

    // 3. Tenant isolation, enforced by the API server. A compromised tenant repo (written here behind the order
    // service's back) names tenant B's namespace: the Kustomization's targetNamespace puts it into A's.
    let bare = env.server.repo_dir(&a.slug);
    let scratch = tmp.path().join("intruder");
    let into_b = format!(
        "apiVersion: maxcloud.dev/v1alpha1\nkind: App\nmetadata:\n  name: intruder\n  namespace: {}\nspec:\n  image: nginx:1.27\n",
        b.ns
    );
    intrude(&bare, &scratch, "an App for tenant B", &[("apps/intruder.yaml", Some(&into_b))]);
    env.poke(&a.ns, "intrusion 1").await;
    env.wait_for("App intruder (retargeted into tenant A's namespace)", Duration::from_secs(30), || async {
        env.get(APP, &a.ns, "intruder").await
    })
    .await;
    assert!(env.get(APP, &b.ns, "intruder").await.is_none(), "tenant A's repo reached tenant B's namespace");

    // Kinds outside maxcloud.dev: a ConfigMap (for tenant B's namespace, retargeted into A's), then a
    // ClusterRoleBinding making A's ServiceAccount cluster-admin. The tenant's ServiceAccount may create neither:
    // each apply is refused by the API server and reported on the Kustomization.
    let config_map =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: evil\n  namespace: {}\ndata:\n  x: y\n", b.ns);
    let escalation = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: evil\nroleRef:\n  \
         apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: \
         ServiceAccount\n    name: maxcloud-tenant\n    namespace: {}\n",
        a.ns
    );
    // One at a time (the previous file removed), so that each refusal is the one reported.
    for (what, file, text, previous, refused) in [
        ("a ConfigMap", "misc/evil.yaml", config_map.as_str(), None, "configmaps"),
        ("cluster-admin", "misc/escalation.yaml", escalation.as_str(), Some("misc/evil.yaml"), "clusterrolebindings"),
    ] {
        let mut files = vec![(file, Some(text))];
        files.extend(previous.map(|p| (p, None)));
        intrude(&bare, &scratch, what, &files);
        let intrusion = git(&bare, &["rev-parse", "main"]).trim().to_string();
        env.poke(&a.ns, what).await;
        let (message, refused_after) = env
            .wait_for(&format!("tenant A's Kustomization to refuse {what}"), Duration::from_secs(60), || async {
                let k = env.kustomization(&a.ns).await;
                let attempted = k["status"]["lastAttemptedRevision"].as_str().unwrap_or_default().contains(&intrusion);
                match condition(&k, "Ready") {
                    Some((status, _, message)) if attempted && status == "False" => Some(message),
                    _ => None,
                }
            })
            .await;
        eprintln!("{what} refused after {refused_after:?}: {message}");
        assert!(message.contains("(Forbidden)") && message.contains(refused), "not a forbidden {refused}: {message}");
        assert!(message.contains(&format!("User \"system:serviceaccount:{}:maxcloud-tenant\"", a.ns)), "{message}");
        let k = env.kustomization(&a.ns).await;
        assert!(
            !k["status"]["lastAppliedRevision"].as_str().unwrap_or_default().contains(&intrusion),
            "the refused revision counts as applied: {}",
            k["status"]
        );
    }
    assert!(env.names(CONFIG_MAP, Some(&a.ns)).await.iter().all(|n| !n.ends_with("/evil")));
    assert!(env.names(CONFIG_MAP, Some(&b.ns)).await.iter().all(|n| !n.ends_with("/evil")));
    assert!(env.names(CLUSTER_ROLE_BINDING, None).await.iter().all(|n| !n.ends_with("/evil")));
    assert!(env.get(APP, &b.ns, "intruder").await.is_none());
    // Tenant B is unaffected.
    let kb = env.kustomization(&b.ns).await;
    assert_eq!(condition(&kb, "Ready").map(|c| c.0).as_deref(), Some("True"), "{}", kb["status"]);

    // The repo is repaired (the intruding files removed): A's Kustomization recovers and prunes the intruder.
    intrude(&bare, &scratch, "repair", &[("apps/intruder.yaml", None), ("misc/escalation.yaml", None)]);
    let repaired = git(&bare, &["rev-parse", "main"]).trim().to_string();
    env.poke(&a.ns, "repair").await;
    env.wait_for("tenant A's Kustomization to apply the repaired repo", Duration::from_secs(60), || async {
        let k = env.kustomization(&a.ns).await;
        let applied = k["status"]["lastAppliedRevision"].as_str().unwrap_or_default().contains(&repaired);
        (applied && condition(&k, "Ready").map(|c| c.0).as_deref() == Some("True")).then_some(())
    })
    .await;
    assert!(env.get(APP, &a.ns, "intruder").await.is_none(), "the intruder was not pruned");

    // 4. The controllers' lockdown flags (flux/components/flux-lockdown) hold: a Kustomization naming no
    // ServiceAccount impersonates the namespace's `default` one (--default-service-account=default), which may
    // apply nothing; one in tenant B's namespace cannot use tenant A's GitRepository (--no-cross-namespace-refs).
    let kustomization = |name: &str, ns: &str, source_ns: &str, sa: Option<&str>| {
        let mut spec = json!({
            "interval": "10m", "path": "./", "prune": false, "targetNamespace": ns,
            "sourceRef": {"kind": "GitRepository", "name": "maxcloud-tenant", "namespace": source_ns},
        });
        if let Some(sa) = sa {
            spec["serviceAccountName"] = json!(sa);
        }
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": name, "namespace": ns}, "spec": spec})
    };
    env.cp
        .apply(vec![
            kustomization("no-service-account", &a.ns, &a.ns, None),
            kustomization("borrowed-source", &b.ns, &a.ns, Some("maxcloud-tenant")),
        ])
        .await
        .expect("apply Kustomizations");
    for (ns, name, expected) in [
        (&a.ns, "no-service-account", format!("User \"system:serviceaccount:{}:default\"", a.ns)),
        (&b.ns, "borrowed-source", "cross-namespace references have been blocked".to_string()),
    ] {
        let (message, _) = env
            .wait_for(&format!("Kustomization {ns}/{name} to fail"), Duration::from_secs(30), || async {
                let k = env.get(KUSTOMIZATION, ns, name).await?;
                condition(&k, "Ready").filter(|c| c.0 == "False" && c.2.contains(&expected)).map(|c| c.2)
            })
            .await;
        eprintln!("{ns}/{name}: {message}");
    }
    assert!(env.get(APP, &b.ns, "api").await.is_none() && env.get(APP, &b.ns, "shop").await.is_none());

    // 5. A delete order: the PR removing apps/shop.yaml is merged (Apps' delete policy is auto), Flux prunes.
    order_merged(&a, json!({"action": "delete", "kind": "App", "name": "shop"})).await;
    let merged = Instant::now();
    env.poke(&a.ns, "delete shop").await;
    env.wait_for("App shop to be pruned", Duration::from_secs(30), || async {
        env.get(APP, &a.ns, "shop").await.is_none().then_some(())
    })
    .await;
    eprintln!("delete merge → App gone: {:?}", merged.elapsed());
    assert_eq!(env.names(APP, None).await, [format!("{}/api", a.ns), format!("{}/blog", b.ns)]);
    let repo = env.get(GIT_REPOSITORY, &a.ns, "maxcloud-tenant").await.expect("GitRepository");
    eprintln!("tenant A's GitRepository artifact: {}", repo["status"]["artifact"]["revision"]);
    eprintln!("{}", env.flux.report());
}
