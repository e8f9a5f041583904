//! Organisations with several users: invites, roles, and what a member may not do.

use maxcloud_tests::{cli, git, Api, Options, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn invited_members_order_but_do_not_administer() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let admin_home = tmp.path().join("admin");
    let member_home = tmp.path().join("member");
    std::fs::create_dir_all(&admin_home).unwrap();
    std::fs::create_dir_all(&member_home).unwrap();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(cli(&admin_home, &server, &["auth", "register", "--email", "boss@example.com", "--org", "Team Co"]));
    let invite: serde_json::Value = serde_json::from_str(&ok(cli(
        &admin_home,
        &server,
        &["auth", "invite", "--email", "Dev@Example.com", "-o", "json"],
    )))
    .unwrap();
    let token = invite["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("mci_"));
    assert_eq!((invite["email"].as_str(), invite["role"].as_str()), (Some("dev@example.com"), Some("member")));

    let joined: serde_json::Value =
        serde_json::from_str(&ok(cli(&member_home, &server, &["auth", "accept-invite", &token, "-o", "json"])))
            .unwrap();
    assert_eq!(joined["organization"]["slug"], "team-co");
    let member_key = joined["api_key"].as_str().unwrap().to_string();
    let again = cli(&member_home, &server, &["auth", "accept-invite", &token]);
    assert!(!again.status.success(), "an invite is used once");

    let members = ok(cli(&admin_home, &server, &["auth", "members"]));
    assert!(members.contains("boss@example.com") && members.contains("admin"), "{members}");
    assert!(members.contains("dev@example.com") && members.contains("member"), "{members}");

    // The member orders; the order is theirs in the history, and in the same tenant repo.
    ok(cli(&member_home, &server, &["deploy", "nginx", "--name", "dev-app", "--wait"]));
    let api = Api::new(&server).with_key(&member_key);
    let (_, orders) = api.get("/orders").await;
    assert_eq!(orders[0]["requester"], "dev@example.com");
    let url = server.url.replacen("http://", &format!("http://x:{member_key}@"), 1) + "/git/team-co.git";
    git(tmp.path(), &["clone", "-q", &url, "clone"]);
    let log = git(&tmp.path().join("clone"), &["log", "-1", "--format=%an %(trailers:key=Requested-By,valueonly)"]);
    assert!(log.contains("dev@example.com"), "{log}");

    // Administration is for admins.
    let order_id = orders[0]["id"].as_str().unwrap();
    for (what, status) in [
        ("invite", api.post("/auth/invites", &json!({"email": "x@example.com"})).await.0),
        ("create a git token", api.post("/auth/git-tokens", &json!({})).await.0),
        ("approve", api.post(&format!("/orders/{order_id}/approve"), &json!({})).await.0),
        ("reject", api.post(&format!("/orders/{order_id}/reject"), &json!({})).await.0),
    ] {
        assert_eq!(status, 403, "a member may not {what}");
    }
    let set = api.req(reqwest::Method::PUT, "/policies/App/create").json(&json!({"policy": "review"}));
    assert_eq!(api.send(set).await.0, 403, "a member may not set merge policies");
    assert_eq!(api.delete("/policies/App/create").await.0, 403, "nor reset them");
    let out = cli(&member_home, &server, &["auth", "invite", "--email", "y@example.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin"), "the error says why");
    assert_eq!(api.get("/services").await.1.as_array().unwrap().len(), 1);

    // Bad invite input.
    let anon = Api::new(&server);
    let (status, body) = anon.post("/auth/accept-invite", &json!({"token": "mci_nope"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (404, Some("token")));
    let (status, body) = anon.post("/auth/accept-invite", &json!({"token": "mc_notaninvite"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("token")));
    let admin_key = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(admin_home.join(".config/maxcloud/credentials")).unwrap(),
    )
    .unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = Api::new(&server).with_key(&admin_key);
    let (status, body) = admin.post("/auth/invites", &json!({"email": "dev@example.com"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (409, Some("email")), "already a member");
    let (status, body) = admin.post("/auth/invites", &json!({"email": "z@example.com", "role": "owner"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("role")));
}
