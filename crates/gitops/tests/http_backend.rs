//! `git http-backend` run for real against a tenant repository.

use bytes::Bytes;
use maxcloud_gitops::http_backend::{is_read_only_request, run, CgiRequest};
use maxcloud_gitops::{Repos, Signature};

fn setup() -> (tempfile::TempDir, Repos) {
    let dir = tempfile::tempdir().unwrap();
    let repos = Repos::new(dir.path());
    let author = Signature { name: "max-cloud".into(), email: "orders@max-cloud.test".into() };
    repos.init_tenant("acme-shop", "# readme\n", &author).unwrap();
    (dir, repos)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn info_refs_for_upload_pack() {
    let (_dir, repos) = setup();
    let main = repos.main_commit("acme-shop").unwrap();
    let resp = run(
        repos.root(),
        CgiRequest {
            method: "GET".into(),
            repo: "acme-shop.git".into(),
            path_info_rest: "/info/refs".into(),
            query: "service=git-upload-pack".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(header(&resp.headers, "Content-Type"), Some("application/x-git-upload-pack-advertisement"));
    let body = String::from_utf8_lossy(&resp.body);
    assert!(body.starts_with("001e# service=git-upload-pack\n"), "{body}");
    assert!(body.contains(&format!("{main} refs/heads/main")), "{body}");
}

#[tokio::test]
async fn protocol_v2_ls_refs_and_fetch_over_post() {
    let (_dir, repos) = setup();
    let main = repos.main_commit("acme-shop").unwrap();
    let req = |path: &str, query: &str, body: Bytes| CgiRequest {
        method: if body.is_empty() { "GET" } else { "POST" }.into(),
        repo: "acme-shop.git".into(),
        path_info_rest: path.into(),
        query: query.into(),
        content_type: (!body.is_empty()).then(|| "application/x-git-upload-pack-request".into()),
        git_protocol: Some("version=2".into()),
        body,
        ..Default::default()
    };
    let caps = run(repos.root(), req("/info/refs", "service=git-upload-pack", Bytes::new())).await.unwrap();
    assert_eq!(caps.status, 200);
    assert!(String::from_utf8_lossy(&caps.body).contains("version 2"));

    // ls-refs with a ref prefix, in pkt-line framing.
    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }
    let body = format!("{}0001{}0000", pkt("command=ls-refs\n"), pkt("ref-prefix refs/heads/\n"));
    let resp = run(repos.root(), req("/git-upload-pack", "", Bytes::from(body))).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(header(&resp.headers, "Content-Type"), Some("application/x-git-upload-pack-result"));
    let text = String::from_utf8_lossy(&resp.body);
    assert!(text.contains(&format!("{main} refs/heads/main")), "{text}");

    // A large (1 MiB) request body must not deadlock the pipes; http-backend answers with an
    // error for the garbage, but the round trip completes.
    let big = Bytes::from(vec![b'0'; 1 << 20]);
    let resp = run(repos.root(), req("/git-upload-pack", "", big)).await.unwrap();
    assert!(resp.status >= 200);
}

#[tokio::test]
async fn push_is_refused_and_bad_names_rejected() {
    let (_dir, repos) = setup();
    assert!(!is_read_only_request("/info/refs", "service=git-receive-pack"));
    assert!(!is_read_only_request("/git-receive-pack", ""));
    assert!(is_read_only_request("/info/refs", "service=git-upload-pack"));
    assert!(is_read_only_request("/git-upload-pack", ""));

    // Even if a caller forgot the check, the repository config refuses receive-pack.
    let resp = run(
        repos.root(),
        CgiRequest {
            method: "GET".into(),
            repo: "acme-shop.git".into(),
            path_info_rest: "/info/refs".into(),
            query: "service=git-receive-pack".into(),
            remote_user: "alice".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 403);

    for repo in ["../etc.git", "acme-shop", ".hidden.git", "a/b.git"] {
        let err = run(
            repos.root(),
            CgiRequest {
                method: "GET".into(),
                repo: repo.into(),
                path_info_rest: "/info/refs".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, maxcloud_gitops::GitError::NotFound(_)), "{repo}: {err}");
    }

    // A missing repository is a 404 from http-backend itself.
    let resp = run(
        repos.root(),
        CgiRequest {
            method: "GET".into(),
            repo: "nobody.git".into(),
            path_info_rest: "/info/refs".into(),
            query: "service=git-upload-pack".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 404);
}
