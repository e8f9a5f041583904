//! The GitHub provider against the local mock of GitHub (`maxcloud_testenv::github`), served under GHES's
//! `/api/v3`, with real repositories behind it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;
use maxcloud_forge::github::{GitHub, GitHubAuth, GitHubConfig};
use maxcloud_forge::{
    Forge, ForgeError, ForgeKind, Label, Merge, NewPullRequest, PrState, Protection, Repo, RetryPolicy, Status,
    StatusState, Verdict,
};
use maxcloud_testenv::github::{
    Fault, GitHubMock, MockLabel, Mode, Recorded, APP_ID, APP_SLUG, INSTALLATION_ID, OWNER, PAT, PAT_LOGIN,
};
use serde_json::json;

/// Fast retries for tests.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

/// A provider for the mock, with the credentials of its mode.
fn github(mock: &GitHubMock) -> GitHub {
    let auth = match mock.mode() {
        Mode::Token => GitHubAuth::Token(PAT.to_string()),
        Mode::App => GitHubAuth::App {
            app_id: APP_ID,
            installation_id: INSTALLATION_ID,
            private_key_pem: mock.app_private_key().to_string(),
        },
    };
    GitHub::new(GitHubConfig { api_url: mock.api_url.clone(), owner: OWNER.into(), auth, retry: fast_retry() }).unwrap()
}

/// Every request: a documented route under the API base, GitHub's headers once each, `Bearer` credentials of the
/// right kind, JSON bodies with their content type and documented fields; and the mock found nothing wrong.
fn assert_well_formed(mock: &GitHubMock) {
    assert!(!mock.requests().is_empty());
    mock.assert_well_formed();
}

/// The requests as `METHOD path`.
fn calls(mock: &GitHubMock) -> Vec<String> {
    mock.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn only(mock: &GitHubMock, method: Method, path: &str) -> Recorded {
    let found: Vec<Recorded> = mock.requests().into_iter().filter(|r| r.is(&method, path)).collect();
    assert_eq!(found.len(), 1, "{method} {path}: {:#?}", calls(mock));
    found.into_iter().next().unwrap()
}

fn epoch() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A commit on `branch` writing one file.
fn push_file(mock: &GitHubMock, repo: &str, branch: &str, path: &str, content: &str) -> String {
    mock.commit(repo, branch, &[(path, Some(content))], &format!("write {path}"))
}

/// `git ARGS` in the mock's bare repository.
fn git(mock: &GitHubMock, repo: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(mock.repo_dir(repo)).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository with `main` and a branch `order/1` one commit ahead of it: (main, order/1).
fn with_branches(mock: &GitHubMock, repo: &str) -> (String, String) {
    mock.add_repo(repo);
    let base = push_file(mock, repo, "main", "README.md", "# t\n");
    let head = push_file(mock, repo, "order/1", "databases/db.yaml", "kind: Database\n");
    (base, head)
}

const NEW_PR: NewPullRequest<'static> =
    NewPullRequest { head: "order/1", base: "main", title: "Order 1: create database", body: "Requested by ann." };

#[tokio::test]
async fn repositories_are_created_read_and_protected() {
    let mock = GitHubMock::start(Mode::Token).await;
    let gh = github(&mock);
    assert_eq!((gh.kind(), gh.owner()), (ForgeKind::GitHub, OWNER));
    assert_eq!(gh.login().await.unwrap(), PAT_LOGIN);
    assert_eq!(gh.login().await.unwrap(), PAT_LOGIN);
    assert_eq!(calls(&mock), ["GET /user"], "the login is asked once");

    assert_eq!(gh.repo("tenant-a").await.unwrap(), None);
    let created = gh.create_repo("tenant-a", "Tenant A's GitOps repository").await.unwrap();
    let expected = Repo {
        full_name: "acme/tenant-a".into(),
        clone_url: mock.clone_url("tenant-a"),
        html_url: mock.html_url("tenant-a"),
        default_branch: "main".into(),
        empty: true,
    };
    assert_eq!(created, expected);
    let create = only(&mock, Method::POST, "/orgs/acme/repos");
    assert_eq!(
        create.body.unwrap(),
        json!({ "name": "tenant-a", "description": "Tenant A's GitOps repository", "private": true, "auto_init": false })
    );
    assert_eq!(create.status, 201);

    // Exists already (422 "name already exists on this account"): read back; empty: size 0 and no `main`.
    mock.clear_requests();
    assert_eq!(gh.create_repo("tenant-a", "Tenant A's GitOps repository").await.unwrap(), expected);
    assert_eq!(
        calls(&mock),
        ["POST /orgs/acme/repos", "GET /repos/acme/tenant-a", "GET /repos/acme/tenant-a/branches/main"]
    );
    assert_eq!(mock.requests()[0].status, 422);
    assert_eq!(mock.with(|s| s.repos.len()), 1);

    // After the first push: `size` > 0 is trusted; a `size` GitHub has not updated yet is checked on the branch.
    push_file(&mock, "tenant-a", "main", "README.md", "# tenant-a\n");
    mock.clear_requests();
    assert_eq!(gh.repo("tenant-a").await.unwrap(), Some(Repo { empty: false, ..expected.clone() }));
    assert_eq!(calls(&mock), ["GET /repos/acme/tenant-a"]);
    mock.with(|s| s.repos.get_mut("tenant-a").unwrap().reported_size = Some(0));
    assert_eq!(gh.repo("tenant-a").await.unwrap(), Some(Repo { empty: false, ..expected.clone() }));

    gh.protect_branch("tenant-a", "main", &Protection { required_approvals: 2 }).await.unwrap();
    let protect = only(&mock, Method::PUT, "/repos/acme/tenant-a/branches/main/protection");
    assert_eq!(
        protect.body.unwrap(),
        json!({
            "required_status_checks": null,
            "enforce_admins": false,
            "required_pull_request_reviews": { "required_approving_review_count": 2, "dismiss_stale_reviews": true },
            "restrictions": null,
        })
    );
    // Idempotent (PUT); a branch that does not exist yet is not found.
    gh.protect_branch("tenant-a", "main", &Protection { required_approvals: 2 }).await.unwrap();
    assert!(matches!(
        gh.protect_branch("tenant-a", "develop", &Protection { required_approvals: 1 }).await,
        Err(ForgeError::NotFound(m)) if m.contains("Branch not found")
    ));
    assert!(matches!(gh.repo("../etc").await, Ok(None)));

    let auth = gh.git_auth().await.unwrap();
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("x-access-token", PAT));
    assert_well_formed(&mock);
}

#[tokio::test]
async fn pull_requests_are_found_created_labelled_and_reviewed() {
    let mock = GitHubMock::start(Mode::Token).await;
    let gh = github(&mock);
    let (base, head) = with_branches(&mock, "t");
    mock.with(|s| {
        s.repos.get_mut("t").unwrap().labels.push(MockLabel {
            name: "order".into(),
            color: "0e8a16".into(),
            description: "Made by the order service".into(),
        })
    });

    assert_eq!(gh.find_pull_request("t", "order/1").await.unwrap(), None);
    let find = only(&mock, Method::GET, "/repos/acme/t/pulls");
    assert_eq!(find.query["head"], "acme:order/1");
    assert_eq!(find.query["state"], "all");

    let pr = gh.create_pull_request("t", &NEW_PR).await.unwrap();
    assert_eq!(
        (pr.number, pr.state, pr.head_branch.as_str(), pr.head_sha.as_str(), pr.base_branch.as_str()),
        (1, PrState::Open, "order/1", head.as_str(), "main")
    );
    assert_eq!((pr.title.as_str(), pr.body.as_str()), (NEW_PR.title, NEW_PR.body));
    assert_eq!(pr.html_url, format!("{}/pull/1", mock.html_url("t")));
    // GitHub reports a test merge commit on open pull requests: not a merge.
    assert_eq!((pr.merge_commit.as_deref(), pr.merged_by.as_deref()), (None, None));
    assert_eq!(
        only(&mock, Method::POST, "/repos/acme/t/pulls").body.unwrap(),
        json!({ "title": NEW_PR.title, "head": "order/1", "base": "main", "body": NEW_PR.body })
    );
    assert_eq!(gh.find_pull_request("t", "order/1").await.unwrap(), Some(pr.clone()));
    assert_eq!(gh.pull_request("t", 1).await.unwrap(), pr);
    assert!(matches!(gh.pull_request("t", 9).await, Err(ForgeError::NotFound(_))));

    // Opening it again finds the one there is.
    assert_eq!(gh.create_pull_request("t", &NEW_PR).await.unwrap(), pr);
    assert_eq!(mock.with(|s| s.repo("t").pulls.len()), 1);
    // A branch that does not exist is refused.
    let missing = NewPullRequest { head: "order/404", ..NEW_PR };
    assert!(matches!(gh.create_pull_request("t", &missing).await, Err(ForgeError::Refused(_))));

    // Labels: ours are created with our colour before they are put on the pull request.
    let labels = [
        Label { name: "order".into(), color: "0e8a16".into(), description: "Made by the order service".into() },
        Label { name: "kind/database".into(), color: "1d76db".into(), description: "A database".into() },
    ];
    mock.clear_requests();
    gh.add_labels("t", 1, &labels).await.unwrap();
    assert_eq!(
        calls(&mock),
        ["GET /repos/acme/t/labels", "POST /repos/acme/t/labels", "POST /repos/acme/t/issues/1/labels"]
    );
    let requests = mock.requests();
    assert_eq!(
        requests[1].body,
        Some(json!({ "name": "kind/database", "color": "1d76db", "description": "A database" }))
    );
    assert_eq!(requests[2].body, Some(json!({ "labels": ["order", "kind/database"] })));
    mock.with(|s| {
        let repo = s.repo("t");
        assert_eq!(repo.pull(1).labels, ["order", "kind/database"]);
        let created = repo.labels.iter().find(|l| l.name == "kind/database").unwrap();
        assert_eq!((created.color.as_str(), created.description.as_str()), ("1d76db", "A database"));
    });
    mock.clear_requests();
    gh.add_labels("t", 1, &labels).await.unwrap();
    assert_eq!(calls(&mock), ["GET /repos/acme/t/labels", "POST /repos/acme/t/issues/1/labels"]);

    // Reviewers.
    mock.clear_requests();
    gh.request_reviewers("t", 1, &["alice".into(), "bob".into()]).await.unwrap();
    gh.request_reviewers("t", 1, &[]).await.unwrap();
    assert_eq!(calls(&mock), ["POST /repos/acme/t/pulls/1/requested_reviewers"]);
    assert_eq!(mock.requests()[0].body, Some(json!({ "reviewers": ["alice", "bob"] })));
    assert_eq!(mock.with(|s| s.repo("t").pull(1).requested_reviewers.clone()), ["alice", "bob"]);

    // Reviews: only those of the current head count, each reviewer's latest verdict wins; two pages.
    for _ in 0..100 {
        mock.review_on("t", 1, "noise", "COMMENTED", &head);
    }
    mock.review_on("t", 1, "carol", "APPROVED", &base);
    mock.review_on("t", 1, "bob", "CHANGES_REQUESTED", &head);
    mock.review_on("t", 1, "bob", "COMMENTED", &head);
    mock.review_on("t", 1, "alice", "APPROVED", &head);
    mock.review_on("t", 1, "dave", "DISMISSED", &head);
    mock.clear_requests();
    let reviews = gh.reviews("t", 1).await.unwrap();
    assert_eq!(reviews.verdicts, [("alice".to_string(), Verdict::Approved), ("bob".into(), Verdict::ChangesRequested)]);
    assert_eq!(
        calls(&mock),
        ["GET /repos/acme/t/pulls/1", "GET /repos/acme/t/pulls/1/reviews", "GET /repos/acme/t/pulls/1/reviews"]
    );
    let requests = mock.requests();
    assert_eq!((requests[1].query["per_page"].as_str(), requests[1].query.get("page")), ("100", None));
    assert_eq!(requests[2].query["page"], "2");
    // A push makes them all stale.
    push_file(&mock, "t", "order/1", "databases/db.yaml", "kind: Database\nsize: 2\n");
    assert!(gh.reviews("t", 1).await.unwrap().verdicts.is_empty());
    assert_well_formed(&mock);
}

#[tokio::test]
async fn merges_report_what_github_did() {
    let mock = GitHubMock::start(Mode::Token).await;
    let gh = github(&mock);
    let (base, head) = with_branches(&mock, "t");
    gh.protect_branch("t", "main", &Protection { required_approvals: 1 }).await.unwrap();
    let pr = gh.create_pull_request("t", &NEW_PR).await.unwrap();
    let message = "Order 1: create database\n\nRequested by ann, approved by policy.";

    // The head moved since it was read: 409.
    let merge = gh.merge("t", pr.number, &base, message, false).await.unwrap();
    assert!(matches!(merge, Merge::NotMergeable { reason } if reason.contains("Head branch was modified")));

    // Reviews missing and no bypass for this user: 405, still open.
    mock.with(|s| s.admin = false);
    let merge = gh.merge("t", pr.number, &pr.head_sha, message, false).await.unwrap();
    assert!(matches!(merge, Merge::NotMergeable { reason } if reason.contains("approving review is required")));

    // An administrator merges past the review requirement (enforce_admins is off).
    mock.with(|s| s.admin = true);
    mock.clear_requests();
    let Merge::Merged { commit } = gh.merge("t", pr.number, &pr.head_sha, message, true).await.unwrap() else {
        panic!("not merged")
    };
    assert_eq!(mock.branch("t", "main"), Some(commit.clone()));
    let put = only(&mock, Method::PUT, "/repos/acme/t/pulls/1/merge");
    assert_eq!(
        put.body.unwrap(),
        json!({
            "commit_title": "Order 1: create database",
            "commit_message": "Requested by ann, approved by policy.",
            "sha": head,
            "merge_method": "merge",
        })
    );
    assert_eq!(calls(&mock), ["PUT /repos/acme/t/pulls/1/merge"], "the answer's sha is the merge commit");
    // A merge commit (GitHub's merge method `merge`): main's old tip and the head are its parents.
    let parents = git(&mock, "t", &["rev-list", "--parents", "-n", "1", &commit]);
    assert_eq!(parents.split_whitespace().collect::<Vec<_>>(), [commit.as_str(), base.as_str(), head.as_str()]);

    // Merging again (a retry whose answer was lost): 405, and the pull request says merged.
    assert_eq!(
        gh.merge("t", pr.number, &pr.head_sha, message, true).await.unwrap(),
        Merge::Merged { commit: commit.clone() }
    );
    let merged = gh.pull_request("t", 1).await.unwrap();
    assert_eq!(
        (merged.state, merged.merge_commit.as_deref(), merged.merged_by.as_deref()),
        (PrState::Merged, Some(commit.as_str()), Some(PAT_LOGIN))
    );
    // Found by its branch (list items have no `merged_by`: read in full).
    assert_eq!(gh.find_pull_request("t", "order/1").await.unwrap(), Some(merged));

    // "Base branch was modified" is a race on GitHub's side: tried again.
    let head_b = push_file(&mock, "t", "order/2", "apps/b.yaml", "kind: App\n");
    let second = gh.create_pull_request("t", &NewPullRequest { head: "order/2", ..NEW_PR }).await.unwrap();
    mock.with(|s| s.base_modified = 1);
    assert!(matches!(gh.merge("t", second.number, &head_b, "Order 2", true).await.unwrap(), Merge::Merged { .. }));
    assert!(matches!(gh.merge("t", 99, "x", "nothing", true).await, Err(ForgeError::NotFound(_))));

    // Two branches writing the same file differently: once one is merged, the other conflicts.
    let head_c = push_file(&mock, "t", "order/3", "apps/c.yaml", "image: a\n");
    let head_d = push_file(&mock, "t", "order/4", "apps/c.yaml", "image: b\n");
    let third = gh.create_pull_request("t", &NewPullRequest { head: "order/3", ..NEW_PR }).await.unwrap();
    let fourth = gh.create_pull_request("t", &NewPullRequest { head: "order/4", ..NEW_PR }).await.unwrap();
    assert!(matches!(gh.merge("t", third.number, &head_c, "Order 3", true).await.unwrap(), Merge::Merged { .. }));
    let merge = gh.merge("t", fourth.number, &head_d, "Order 4", true).await.unwrap();
    assert!(matches!(&merge, Merge::NotMergeable { reason } if reason.contains("not mergeable")), "{merge:?}");
    assert_eq!(gh.pull_request("t", fourth.number).await.unwrap().state, PrState::Open);
    assert_well_formed(&mock);
}

#[tokio::test]
async fn close_comment_status_and_delete_branch() {
    let mock = GitHubMock::start(Mode::Token).await;
    let gh = github(&mock);
    let (_, head) = with_branches(&mock, "t");
    let pr = gh.create_pull_request("t", &NEW_PR).await.unwrap();

    mock.clear_requests();
    gh.close("t", pr.number).await.unwrap();
    assert_eq!(only(&mock, Method::PATCH, "/repos/acme/t/pulls/1").body, Some(json!({ "state": "closed" })));
    let closed = gh.pull_request("t", 1).await.unwrap();
    assert_eq!((closed.state, closed.merge_commit), (PrState::Closed, None));
    assert_eq!(gh.find_pull_request("t", "order/1").await.unwrap().map(|p| p.state), Some(PrState::Closed));

    gh.comment("t", 1, "Superseded by a newer order.").await.unwrap();
    assert_eq!(
        only(&mock, Method::POST, "/repos/acme/t/issues/1/comments").body,
        Some(json!({ "body": "Superseded by a newer order." }))
    );
    assert_eq!(mock.repo("t").comments_on(1), ["Superseded by a newer order."]);

    let status = Status {
        state: StatusState::Success,
        context: "max-cloud/applied",
        description: "Applied to the cluster",
        target_url: Some("https://cloud.example/orders/1"),
    };
    gh.set_status("t", &head, &status).await.unwrap();
    gh.set_status("t", &head, &Status { state: StatusState::Pending, target_url: None, ..status }).await.unwrap();
    let statuses = mock.with(|s| s.repo("t").statuses.clone());
    assert_eq!(
        statuses,
        [
            (
                head.clone(),
                json!({ "state": "success", "target_url": "https://cloud.example/orders/1",
                        "description": "Applied to the cluster", "context": "max-cloud/applied" })
            ),
            (
                head.clone(),
                json!({ "state": "pending", "description": "Applied to the cluster", "context": "max-cloud/applied" })
            ),
        ]
    );

    mock.clear_requests();
    gh.delete_branch("t", "order/1").await.unwrap();
    assert_eq!(mock.branch("t", "order/1"), None);
    // Gone already: 422 "Reference does not exist" is fine, and so is a repository that is gone.
    gh.delete_branch("t", "order/1").await.unwrap();
    gh.delete_branch("gone", "order/1").await.unwrap();
    assert_eq!(
        calls(&mock),
        [
            "DELETE /repos/acme/t/git/refs/heads/order/1",
            "DELETE /repos/acme/t/git/refs/heads/order/1",
            "DELETE /repos/acme/gone/git/refs/heads/order/1",
        ]
    );
    assert_eq!(mock.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [204, 422, 404]);
    assert_well_formed(&mock);
}

#[tokio::test]
async fn app_installation_tokens_are_renewed_before_they_expire() {
    let mock = GitHubMock::start(Mode::App).await;
    mock.add_repo("t");
    push_file(&mock, "t", "main", "README.md", "# t\n");
    let gh = github(&mock);

    // The App's login is its slug with [bot], from GET /app with a JWT.
    assert_eq!(gh.login().await.unwrap(), format!("{APP_SLUG}[bot]"));
    assert_eq!(calls(&mock), ["GET /app"]);
    let claims = mock.with(|s| s.jwt_claims[0].clone());
    let now = epoch() as i64;
    assert_eq!(claims["iss"], json!(APP_ID.to_string()));
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert!((now - 62..=now - 58).contains(&iat), "iat {iat}, now {now}");
    assert!((now + 538..=now + 542).contains(&exp), "exp {exp}, now {now}");

    // Tokens living 4 minutes are below the 5-minute margin: each call renews.
    mock.with(|s| s.token_lifetime = Duration::from_secs(4 * 60));
    assert!(gh.repo("t").await.unwrap().is_some());
    assert!(gh.repo("t").await.unwrap().is_some());
    let auth = gh.git_auth().await.unwrap();
    assert_eq!(mock.with(|s| s.exchanges()), 3);
    assert_eq!(auth.username, "x-access-token");
    assert_eq!(auth.password, mock.with(|s| s.tokens[2].0.clone()));

    // An hour: renewed once, then kept.
    mock.with(|s| s.token_lifetime = Duration::from_secs(3600));
    assert!(gh.repo("t").await.unwrap().is_some());
    assert!(gh.repo("t").await.unwrap().is_some());
    assert_eq!(gh.git_auth().await.unwrap().password, mock.with(|s| s.tokens[3].0.clone()));
    assert_eq!(mock.with(|s| s.exchanges()), 4);

    // Each exchange is signed with a JWT; every other call carries the token issued last.
    let tokens = mock.with(|s| s.tokens.clone());
    let mut issued = tokens.iter();
    let mut current = None;
    for r in mock.requests() {
        if r.path == "/app/installations/77/access_tokens" {
            assert_eq!((r.method.clone(), r.status), (Method::POST, 201));
            assert!(jsonwebtoken::decode_header(r.bearer()).is_ok());
            current = issued.next().map(|(t, _)| t.clone());
        } else if r.path != "/app" {
            assert_eq!(Some(r.bearer().to_string()), current, "{} {}", r.method, r.path);
        }
    }
    assert_eq!(mock.with(|s| s.jwt_claims.len()), 5, "GET /app and four exchanges");
    assert_well_formed(&mock);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_exchange() {
    let mock = GitHubMock::start(Mode::App).await;
    mock.add_repo("t");
    push_file(&mock, "t", "main", "README.md", "# t\n");
    mock.with(|s| s.exchange_delay = Duration::from_millis(300));
    let gh = github(&mock);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let gh = gh.clone();
            tokio::spawn(async move { gh.repo("t").await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().unwrap().is_some());
    }
    assert_eq!(mock.with(|s| s.exchanges()), 1);
    let token = mock.with(|s| s.tokens[0].0.clone());
    let gets: Vec<Recorded> = mock.requests().into_iter().filter(|r| r.path == "/repos/acme/t").collect();
    assert_eq!(gets.len(), 8);
    assert!(gets.iter().all(|r| r.bearer() == token && r.status == 200));
    assert_well_formed(&mock);
}

#[tokio::test]
async fn a_rejected_installation_token_is_replaced_once() {
    let mock = GitHubMock::start(Mode::App).await;
    mock.add_repo("t");
    push_file(&mock, "t", "main", "README.md", "# t\n");
    let gh = github(&mock);
    assert!(gh.repo("t").await.unwrap().is_some());
    mock.with(|s| {
        let first = s.tokens[0].0.clone();
        s.revoked.push(first);
    });
    assert!(gh.repo("t").await.unwrap().is_some());
    assert_eq!(mock.with(|s| s.exchanges()), 2);
    let statuses: Vec<(String, u16)> = mock.requests().iter().map(|r| (r.path.clone(), r.status)).collect();
    let access = "/app/installations/77/access_tokens".to_string();
    let repo = "/repos/acme/t".to_string();
    assert_eq!(
        statuses,
        [(access.clone(), 201), (repo.clone(), 200), (repo.clone(), 401), (access, 201), (repo.clone(), 200)]
    );
    assert_well_formed(&mock);
}

#[tokio::test]
async fn rate_limits_are_waited_for() {
    let mock = GitHubMock::start(Mode::Token).await;
    mock.add_repo("t");
    push_file(&mock, "t", "main", "README.md", "# t\n");
    let gh = github(&mock);

    // Primary limit: 403 with X-RateLimit-Remaining: 0 until X-RateLimit-Reset.
    let reset = (epoch() + 1).to_string();
    mock.fault(
        Fault::before(Method::GET, "/repos/acme/t", 403, 1)
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset)
            .message("API rate limit exceeded for user ID 1."),
    );
    let started = Instant::now();
    assert!(gh.repo("t").await.unwrap().is_some());
    assert!(started.elapsed() >= Duration::from_millis(900), "waited {:?}", started.elapsed());
    assert_eq!(mock.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [403, 200]);

    // Secondary limit: 429 with Retry-After.
    mock.clear_requests();
    mock.fault(
        Fault::before(Method::GET, "/repos/acme/t", 429, 1)
            .header("retry-after", "1")
            .message("You have exceeded a secondary rate limit."),
    );
    let started = Instant::now();
    assert!(gh.repo("t").await.unwrap().is_some());
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(mock.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    assert_well_formed(&mock);
}

#[tokio::test]
async fn a_rate_limit_resetting_late_fails_at_once() {
    let mock = GitHubMock::start(Mode::Token).await;
    mock.add_repo("t");
    push_file(&mock, "t", "main", "README.md", "# t\n");
    let gh = github(&mock);
    let reset = (epoch() + 3600).to_string();
    mock.fault(
        Fault::before(Method::GET, "/repos/acme/t", 403, 1)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset)
            .message("API rate limit exceeded for user ID 1."),
    );
    let started = Instant::now();
    let e = gh.repo("t").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(
        matches!(&e, ForgeError::Unavailable(m) if m.contains("GET /repos/acme/t") && m.contains("rate limited for another 36")),
        "{e}"
    );
    assert_eq!(mock.requests().len(), 1);
    assert_well_formed(&mock);
}

#[tokio::test]
async fn server_errors_are_retried_without_duplicating_writes() {
    let mock = GitHubMock::start(Mode::Token).await;
    let gh = github(&mock);
    let (_, head) = with_branches(&mock, "t");

    // A burst of 502/503 on a read.
    mock.fault(Fault::before(Method::GET, "/repos/acme/t", 502, 2));
    mock.fault(Fault::before(Method::GET, "/repos/acme/t", 503, 1));
    assert!(gh.repo("t").await.unwrap().is_some());
    assert_eq!(mock.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [502, 502, 503, 200]);

    // The pull request was opened, the answer lost: the retry's 422 "already exists" finds it.
    mock.clear_requests();
    mock.fault(Fault::after(Method::POST, "/repos/acme/t/pulls", 502).message("Bad Gateway"));
    let pr = gh.create_pull_request("t", &NEW_PR).await.unwrap();
    assert_eq!((pr.number, pr.state), (1, PrState::Open));
    assert_eq!(mock.with(|s| s.repo("t").pulls.len()), 1, "one pull request");
    assert_eq!(calls(&mock), ["POST /repos/acme/t/pulls", "POST /repos/acme/t/pulls", "GET /repos/acme/t/pulls"]);
    assert_eq!(mock.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [502, 422, 200]);

    // The same for a repository, a label and a merge.
    mock.fault(Fault::after(Method::POST, "/orgs/acme/repos", 502));
    assert_eq!(gh.create_repo("u", "U").await.unwrap().full_name, "acme/u");
    assert_eq!(mock.with(|s| s.repos.len()), 2);
    mock.fault(Fault::after(Method::POST, "/repos/acme/t/labels", 503));
    let label = Label { name: "order".into(), color: "0e8a16".into(), description: "Order".into() };
    gh.add_labels("t", 1, std::slice::from_ref(&label)).await.unwrap();
    assert_eq!(mock.with(|s| s.repo("t").labels.len()), 1);
    mock.clear_requests();
    mock.fault(Fault::after(Method::PUT, "/repos/acme/t/pulls/1/merge", 502));
    let merged = gh.merge("t", 1, &head, "Order 1", true).await.unwrap();
    let commit = mock.with(|s| s.repo("t").pull(1).merge_commit_sha.clone().unwrap());
    assert_eq!(merged, Merge::Merged { commit });
    assert_eq!(
        calls(&mock),
        ["PUT /repos/acme/t/pulls/1/merge", "PUT /repos/acme/t/pulls/1/merge", "GET /repos/acme/t/pulls/1"]
    );

    // A status whose first answer is a 500: written again (last write wins per context).
    mock.fault(Fault::before(Method::POST, &format!("/repos/acme/t/statuses/{head}"), 500, 1));
    let status = Status { state: StatusState::Success, context: "c", description: "d", target_url: None };
    gh.set_status("t", &head, &status).await.unwrap();
    assert_eq!(mock.with(|s| s.repo("t").statuses.len()), 1);

    // Still failing after all the tries: unavailable.
    mock.clear_requests();
    mock.fault(Fault::before(Method::GET, "/repos/acme/t/pulls/1", 503, 10));
    let e = gh.pull_request("t", 1).await.unwrap_err();
    assert!(matches!(&e, ForgeError::Unavailable(m) if m.contains("503 after 5 tries")), "{e}");
    assert_eq!(mock.requests().len(), 5);
    assert_well_formed(&mock);
}

#[tokio::test]
async fn an_app_is_allowed_to_bypass_the_review_requirement_it_sets() {
    let mock = GitHubMock::start(Mode::App).await;
    with_branches(&mock, "t");
    let gh = github(&mock);
    gh.protect_branch("t", "main", &Protection { required_approvals: 1 }).await.unwrap();
    let protect = only(&mock, Method::PUT, "/repos/acme/t/branches/main/protection");
    assert_eq!(
        protect.body.unwrap()["required_pull_request_reviews"],
        json!({
            "required_approving_review_count": 1,
            "dismiss_stale_reviews": true,
            "bypass_pull_request_allowances": { "apps": [APP_SLUG] },
        })
    );
    let pr = gh.create_pull_request("t", &NEW_PR).await.unwrap();
    assert!(matches!(gh.merge("t", pr.number, &pr.head_sha, "Order 1", true).await.unwrap(), Merge::Merged { .. }));
    let merged = gh.pull_request("t", pr.number).await.unwrap();
    assert_eq!(merged.merged_by.as_deref(), Some("max-cloud[bot]"));
    assert_eq!(calls(&mock).iter().filter(|c| *c == "GET /app").count(), 1);
    assert_well_formed(&mock);
}
