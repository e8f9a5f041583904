//! Merge policies per organisation, kind and action: the catalog's defaults, an organisation's own, bad input,
//! isolation between organisations, and orders following them (with the embedded local provider).

use std::time::Duration;

use maxcloud_tests::{cli, Api, Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

async fn put(api: &Api, path: &str, body: Value) -> (u16, Value) {
    api.send(api.req(Method::PUT, path).json(&body)).await
}

fn policy<'a>(list: &'a Value, kind: &str, action: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|p| p["kind"] == kind && p["action"] == action).expect("policy listed")
}

#[tokio::test(flavor = "multi_thread")]
async fn organisations_choose_their_merge_policies() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key, _) = anon.register("boss@policy.example", "Policy Co").await;
    let (other_key, _) = anon.register("boss@other.example", "Other Co").await;
    let api = anon.with_key(&key);
    let other = anon.with_key(&other_key);

    // The catalog's defaults: Apps merge at once, Databases need review, Database deletes too.
    let (status, list) = api.get("/policies").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 5 * 3, "every kind and action");
    assert_eq!(
        (policy(&list, "App", "create")["policy"].as_str(), policy(&list, "App", "create")["custom"].as_bool()),
        (Some("auto"), Some(false))
    );
    assert_eq!(policy(&list, "Database", "create")["policy"], "review");
    assert_eq!(policy(&list, "Database", "delete")["policy"], "review");
    assert_eq!(policy(&list, "DNSRecord", "delete")["policy"], "auto");

    // Bad input: each refused with the field named, nothing stored.
    let review = json!({"policy": "review"});
    for (path, body, status, field) in [
        ("/policies/Nope/create", review.clone(), 422, "kind"),
        ("/policies/App/destroy", review.clone(), 422, "action"),
        ("/policies/App/create", json!({"policy": "maybe"}), 422, "policy"),
        ("/policies/App/create", json!({"policy": "review", "reviewers": ["not a login!"]}), 422, "reviewers[0]"),
        ("/policies/App/create", json!({"policy": "review", "required_approvals": 0}), 422, "required_approvals"),
        ("/policies/App/create", json!({"policy": "review", "required_approvals": 11}), 422, "required_approvals"),
        (
            "/policies/App/create",
            json!({"policy": "review", "reviewers": ["a", "b"], "required_approvals": 1}),
            422,
            "required_approvals",
        ),
        ("/policies/App/create", json!({"policy": "auto", "reviewers": ["lead"]}), 422, "reviewers"),
        ("/policies/App/create", json!({"policy": "review", "approvals": 2}), 400, "approvals"),
        ("/policies/App/create", json!({"reviewers": []}), 422, "policy"),
    ] {
        let (got, body) = put(&api, path, body.clone()).await;
        assert_eq!((got, body["error"]["field"].as_str()), (status, Some(field)), "{path} {body}");
    }
    let (status, body) = api
        .send(api.req(Method::PUT, "/policies/App/create").header("content-type", "application/json").body("{"))
        .await;
    assert_eq!(status, 400, "malformed JSON: {body}");
    assert!(api.get("/policies").await.1.as_array().unwrap().iter().all(|p| p["custom"] == false), "nothing stored");
    assert_eq!(anon.send(anon.req(Method::PUT, "/policies/App/create").json(&review)).await.0, 401);

    // Apps need review by `lead` in this organisation only.
    let (status, set) = put(&api, "/policies/apps/create", json!({"policy": "review", "reviewers": ["lead"]})).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (set["kind"].as_str(), set["policy"].as_str(), set["required_approvals"].as_i64(), set["updated_by"].as_str()),
        (Some("App"), Some("review"), Some(1), Some("boss@policy.example"))
    );
    assert_eq!(policy(&other.get("/policies").await.1, "App", "create")["policy"], "auto", "another organisation's");
    assert_eq!(other.delete("/policies/App/create").await.0, 404, "it has none of its own");

    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let shown = cli(&home, &server, &["--api-key", &key, "policies"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let app_line = shown.lines().find(|l| l.starts_with("App") && l.contains("create")).unwrap();
    assert!(
        app_line.contains("review") && app_line.contains("lead") && app_line.contains("boss@policy.example"),
        "{shown}"
    );

    let (status, order) =
        api.post("/orders", &json!({"kind": "App", "name": "web", "parameters": {"image": "nginx"}})).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let order = api.wait_order(id, "pr_open", Duration::from_secs(20)).await;
    assert_eq!(order["pull_request"]["merge_policy"], "review");
    assert_eq!(order["pull_request"]["required_reviewers"], json!(["lead"]));
    let pending = cli(&home, &server, &["--api-key", &key, "orders", "--pending"]);
    let pending = String::from_utf8_lossy(&pending.stdout).into_owned();
    assert!(pending.contains(id) && pending.contains("pending") && pending.contains("#1"), "{pending}");
    assert!(other.get("/orders?review=pending").await.1.as_array().unwrap().is_empty(), "not another's");
    let out = cli(&home, &server, &["--api-key", &key, "orders", "approve", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    api.wait_order(id, "merged", Duration::from_secs(20)).await;

    // Back to the catalog's default: the next App is merged at once.
    let out = cli(&home, &server, &["--api-key", &key, "policies", "reset", "App", "create"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&home, &server, &["--api-key", &key, "policies", "set", "App", "create", "auto", "--reviewer", "x"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--reviewer"),
        "checked before sending"
    );
    let (_, order) =
        api.post("/orders", &json!({"kind": "App", "name": "api", "parameters": {"image": "nginx"}})).await;
    let order = api.wait_order(order["id"].as_str().unwrap(), "merged", Duration::from_secs(20)).await;
    assert_eq!(order["pull_request"]["merge_policy"], "auto");
}
