//! The README walkthrough, end to end: the CLI as a process against a running server, the real `git`
//! CLI cloning the tenant repo over smart HTTP.

use std::time::Duration;

use maxcloud_tests::{cli, git, git_output, Api, Options, Server};

fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_walkthrough() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // maxcloud auth register --email me@example.com --org "Acme Shop"
    let out = stdout(&cli(
        &home,
        &server,
        &["auth", "register", "--email", "me@example.com", "--org", "Acme Shop", "-o", "json"],
    ));
    let reg: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = reg["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("mc_"), "{key}");
    assert_eq!(reg["organization"]["slug"], "acme-shop");
    let creds = std::fs::read_to_string(home.join(".config/maxcloud/credentials")).unwrap();
    assert!(creds.contains(&key), "credentials are stored");

    // maxcloud deploy nginx:latest --name shop --env GREETING=hallo --min-scale 0 --max-scale 5 --wait
    let out = cli(
        &home,
        &server,
        &[
            "deploy",
            "nginx:latest",
            "--name",
            "shop",
            "--env",
            "GREETING=hallo",
            "--min-scale",
            "0",
            "--max-scale",
            "5",
            "--wait",
        ],
    );
    let text = stdout(&out);
    assert!(text.contains("shop"), "{text}");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("merged"), "deploy --wait follows the order to merged: {progress}");

    // maxcloud list
    let out = stdout(&cli(&home, &server, &["list", "-o", "json"]));
    let services: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(services.as_array().unwrap().len(), 1);
    let svc = &services[0];
    assert_eq!(svc["name"], "shop");
    assert_eq!(svc["image"], "nginx:latest");
    assert_eq!(svc["env_vars"]["GREETING"], "hallo");
    assert_eq!((svc["min_scale"].as_i64(), svc["max_scale"].as_i64()), (Some(0), Some(5)));
    assert_eq!(svc["status"], "pending", "no cluster: merged but not ready");
    let table = stdout(&cli(&home, &server, &["list"]));
    assert!(table.contains("NAME") && table.contains("shop"), "{table}");

    // maxcloud orders
    let out = stdout(&cli(&home, &server, &["orders", "-o", "json"]));
    let orders: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(orders[0]["state"], "merged");
    assert_eq!(orders[0]["pull_request"]["state"], "merged");
    assert_eq!(orders[0]["pull_request"]["branch"], format!("order/{}", orders[0]["id"].as_str().unwrap()));

    // git clone http://token:$MAXCLOUD_API_KEY@127.0.0.1:PORT/git/acme-shop.git
    let clone_url = server.url.replacen("http://", &format!("http://token:{key}@"), 1) + "/git/acme-shop.git";
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["clone", "-q", &clone_url]);
    let file = std::fs::read_to_string(work.join("acme-shop/apps/shop.yaml")).unwrap();
    assert!(file.contains("kind: App"), "{file}");
    assert!(file.contains("apiVersion: maxcloud.dev/v1alpha1"), "{file}");
    assert!(file.contains("namespace: mc-acme-shop"), "{file}");
    assert!(file.contains("image: nginx:latest"), "{file}");
    assert!(file.contains("GREETING"), "{file}");
    assert!(file.contains("maxcloud.dev/tenant: acme-shop"), "{file}");
    assert!(std::fs::read_to_string(work.join("acme-shop/README.md")).unwrap().contains("acme-shop"));
    let log = git(&work.join("acme-shop"), &["log", "--format=%s", "main"]);
    assert_eq!(log.lines().count(), 2, "initial commit + one order: {log}");
    let repo = work.join("acme-shop");
    let status = git_output(&repo, &["push", "origin", "HEAD:refs/heads/evil"]);
    assert!(!status.status.success(), "pushes are refused");

    // Deploying to the same name again redeploys: an update order, a second commit.
    let out = cli(
        &home,
        &server,
        &[
            "deploy",
            "nginx:1.27",
            "--name",
            "shop",
            "--env",
            "GREETING=servus",
            "--max-scale",
            "5",
            "--wait",
            "-o",
            "json",
        ],
    );
    let redeployed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (redeployed["image"].as_str(), redeployed["env_vars"]["GREETING"].as_str()),
        (Some("nginx:1.27"), Some("servus"))
    );
    assert_eq!(redeployed["id"], svc["id"], "same service");
    git(&repo, &["pull", "-q", "--ff-only"]);
    assert!(std::fs::read_to_string(repo.join("apps/shop.yaml")).unwrap().contains("image: nginx:1.27"));
    let subjects = git(&repo, &["log", "--format=%s", "main"]);
    assert!(subjects.lines().next().unwrap().starts_with("update App shop"), "{subjects}");
    // Flags left out keep their values: a new image only.
    let out = cli(&home, &server, &["deploy", "nginx:1.28", "--name", "shop", "--wait", "-o", "json"]);
    let redeployed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(redeployed["image"], "nginx:1.28");
    assert_eq!(redeployed["env_vars"]["GREETING"], "servus", "env kept");
    assert_eq!((redeployed["min_scale"].as_i64(), redeployed["max_scale"].as_i64()), (Some(0), Some(5)), "scale kept");

    // maxcloud delete shop
    let out = stdout(&cli(&home, &server, &["delete", "shop", "--wait"]));
    assert!(out.contains("shop"), "{out}");
    let api = Api::new(&server).with_key(&key);
    let (_, orders) = api.get("/orders").await;
    let delete = orders.as_array().unwrap().iter().find(|o| o["action"] == "delete").unwrap().clone();
    let delete = api.wait_order(delete["id"].as_str().unwrap(), "merged", Duration::from_secs(20)).await;
    assert_eq!(delete["state"], "merged");
    git(&repo, &["pull", "-q", "--ff-only"]);
    assert!(!repo.join("apps/shop.yaml").exists(), "the delete PR removed the file");
    let out = stdout(&cli(&home, &server, &["list", "-o", "json"]));
    assert_eq!(out.trim(), "[]");

    // The status of a missing service is a one-line error with a non-zero exit.
    let out = cli(&home, &server, &["status", "shop"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
