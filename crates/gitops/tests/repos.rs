//! Tenant repositories with real git2 and the real `git` CLI.

use std::path::Path;
use std::process::Command;

use maxcloud_gitops::{
    branch_for, render_commit_message, render_readme, Change, GitError, MergeOutcome, OrderText, ReadmeContext, Repos,
    Signature,
};

const SLUG: &str = "acme-shop";

fn author() -> Signature {
    Signature { name: "max-cloud".into(), email: "orders@max-cloud.test".into() }
}

fn setup() -> (tempfile::TempDir, Repos) {
    let dir = tempfile::tempdir().unwrap();
    let repos = Repos::new(dir.path().join("repos"));
    let readme = render_readme(&ReadmeContext::new("Acme Shop", SLUG)).unwrap();
    repos.init_tenant(SLUG, &readme, &author()).unwrap();
    (dir, repos)
}

fn message(order_id: &str, action: &str, name: &str) -> String {
    render_commit_message(&OrderText {
        order_id: order_id.into(),
        action: action.into(),
        kind: "App".into(),
        name: name.into(),
        path: format!("apps/{name}.yaml"),
        requester: "alice@example.com".into(),
        tenant: SLUG.into(),
        ..Default::default()
    })
    .unwrap()
}

/// Run `git --git-dir=<repo> <args>` and return stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out =
        Command::new("git").arg("--git-dir").arg(repo).args(args).env("GIT_CONFIG_NOSYSTEM", "1").output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

struct Order {
    id: String,
    path: String,
    content: Option<Vec<u8>>,
    message: String,
    author: Signature,
}

impl Order {
    fn write(n: u32, name: &str, content: &str) -> Order {
        let id = format!("0191c2d4-0000-7000-8000-{n:012}");
        Order {
            message: message(&id, "create", name),
            path: format!("apps/{name}.yaml"),
            content: Some(content.as_bytes().to_vec()),
            author: author(),
            id,
        }
    }

    fn delete(n: u32, name: &str) -> Order {
        let id = format!("0191c2d4-0000-7000-8000-{n:012}");
        Order {
            message: message(&id, "delete", name),
            path: format!("apps/{name}.yaml"),
            content: None,
            author: author(),
            id,
        }
    }

    fn change(&self) -> Change<'_> {
        Change {
            order_id: &self.id,
            path: &self.path,
            content: self.content.as_deref(),
            message: &self.message,
            author: &self.author,
        }
    }
}

#[test]
fn init_tenant_creates_main_with_readme_and_is_idempotent() {
    let (_dir, repos) = setup();
    assert!(repos.exists(SLUG));
    assert!(!repos.exists("other"));
    let main = repos.main_commit(SLUG).unwrap();
    let path = repos.path(SLUG);
    assert!(path.ends_with("acme-shop.git"));

    assert_eq!(git(&path, &["symbolic-ref", "HEAD"]).trim(), "refs/heads/main");
    assert_eq!(git(&path, &["rev-parse", "--is-bare-repository"]).trim(), "true");
    assert_eq!(git(&path, &["config", "http.receivepack"]).trim(), "false");
    assert_eq!(git(&path, &["config", "http.uploadpack"]).trim(), "true");
    assert_eq!(git(&path, &["ls-tree", "--name-only", "main"]).trim(), "README.md");
    let readme = git(&path, &["show", "main:README.md"]);
    assert!(readme.contains("mc-acme-shop"));
    assert_eq!(repos.read_main_file(SLUG, "README.md").unwrap().unwrap(), readme.as_bytes());
    git(&path, &["fsck", "--strict"]);

    // Idempotent: same commit, nothing rewritten.
    let again = repos.init_tenant(SLUG, "something else", &author()).unwrap();
    assert_eq!(again, main);
    assert_eq!(git(&path, &["rev-list", "--count", "main"]).trim(), "1");
    // No temporary directories left behind.
    let entries: Vec<_> = std::fs::read_dir(repos.root()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn commit_and_fast_forward_merge() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let base = repos.main_commit(SLUG).unwrap();
    let order = Order::write(1, "shop", "kind: App\nname: shop\n");

    let committed = repos.commit_order(SLUG, &order.change()).unwrap();
    assert_eq!(committed.branch, branch_for(&order.id));
    assert_eq!(committed.branch, format!("order/{}", order.id));
    assert_eq!(committed.base, base);
    assert!(!committed.reused);
    // Not on main before the merge.
    assert_eq!(repos.main_commit(SLUG).unwrap(), base);
    assert!(!repos.main_contains(SLUG, &committed.commit).unwrap());
    assert_eq!(repos.read_main_file(SLUG, "apps/shop.yaml").unwrap(), None);

    let merged = repos.merge_order(SLUG, &order.change()).unwrap();
    assert_eq!(merged, MergeOutcome::FastForward { commit: committed.commit.clone() });
    assert_eq!(merged.commit(), committed.commit);
    assert_eq!(repos.main_commit(SLUG).unwrap(), committed.commit);
    assert!(repos.main_contains(SLUG, &committed.commit).unwrap());
    assert!(repos.main_contains(SLUG, &base).unwrap());
    assert!(!repos.main_contains(SLUG, &"0".repeat(40)).unwrap());
    assert!(!repos.main_contains(SLUG, "not-a-commit").unwrap());
    assert_eq!(repos.read_main_file(SLUG, "apps/shop.yaml").unwrap().unwrap(), b"kind: App\nname: shop\n");
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap(), vec!["shop.yaml"]);
    assert_eq!(repos.list_main_files(SLUG, "").unwrap(), vec!["README.md"]);
    assert!(repos.list_main_files(SLUG, "databases").unwrap().is_empty());

    // The branch is kept.
    assert_eq!(repos.branch_commit(SLUG, &committed.branch).unwrap(), Some(committed.commit.clone()));
    // Merging again is a no-op.
    assert_eq!(
        repos.merge_order(SLUG, &order.change()).unwrap(),
        MergeOutcome::AlreadyMerged { commit: committed.commit.clone() }
    );

    // The real git CLI sees one commit for the order, with its trailers and exactly one file.
    assert_eq!(git(&path, &["rev-list", "--count", "main"]).trim(), "2");
    let trailers = git(&path, &["log", "-1", "--format=%(trailers:key=Order-Id,valueonly)", "main"]);
    assert_eq!(trailers.trim(), order.id);
    let subject = git(&path, &["log", "-1", "--format=%s%n%an <%ae>", "main"]);
    assert_eq!(subject.trim(), "create App shop\nmax-cloud <orders@max-cloud.test>");
    let files = git(&path, &["show", "--name-status", "--format=", "main"]);
    assert_eq!(files.trim(), "A\tapps/shop.yaml");
    let branches = git(&path, &["branch", "--list", "--format=%(refname:short)"]);
    assert!(branches.contains(&format!("order/{}", order.id)), "{branches}");
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn commit_order_twice_reuses_the_branch() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let order = Order::write(1, "shop", "a: 1\n");
    let first = repos.commit_order(SLUG, &order.change()).unwrap();
    let second = repos.commit_order(SLUG, &order.change()).unwrap();
    assert!(second.reused);
    assert_eq!(second.commit, first.commit);
    assert_eq!(second.base, first.base);
    assert_eq!(second.branch, first.branch);
    let count = git(&path, &["rev-list", "--count", &first.branch]);
    assert_eq!(count.trim(), "2");

    // Still reused after the merge (crash between merge and recording it).
    repos.merge_order(SLUG, &order.change()).unwrap();
    let third = repos.commit_order(SLUG, &order.change()).unwrap();
    assert!(third.reused);
    assert_eq!(third.commit, first.commit);
    assert_eq!(git(&path, &["rev-list", "--count", "main"]).trim(), "2");
}

#[test]
fn merge_after_main_moved_regenerates_with_linear_history() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let a = Order::write(1, "shop", "shop: 1\n");
    let b = Order::write(2, "blog", "blog: 1\n");
    let ca = repos.commit_order(SLUG, &a.change()).unwrap();
    let cb = repos.commit_order(SLUG, &b.change()).unwrap();
    assert_eq!(ca.base, cb.base);

    let ma = repos.merge_order(SLUG, &a.change()).unwrap();
    assert!(matches!(ma, MergeOutcome::FastForward { .. }));
    let mb = repos.merge_order(SLUG, &b.change()).unwrap();
    let MergeOutcome::Regenerated { commit } = &mb else {
        panic!("expected Regenerated, got {mb:?}");
    };
    assert_ne!(commit, &cb.commit);
    assert_eq!(repos.main_commit(SLUG).unwrap(), *commit);
    assert_eq!(repos.branch_commit(SLUG, &cb.branch).unwrap().as_deref(), Some(commit.as_str()));
    assert!(repos.main_contains(SLUG, ma.commit()).unwrap());
    // The stale commit is not on main.
    assert!(!repos.main_contains(SLUG, &cb.commit).unwrap());

    let mut files = repos.list_main_files(SLUG, "apps").unwrap();
    files.sort();
    assert_eq!(files, vec!["blog.yaml", "shop.yaml"]);

    // Linear: no merge commits, one commit per order, each touching one file.
    assert_eq!(git(&path, &["rev-list", "--count", "--merges", "main"]).trim(), "0");
    let log = git(&path, &["log", "--format=%s|%(trailers:key=Order-Id,valueonly,separator=)", "main"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("create App blog|{}", b.id),
            format!("create App shop|{}", a.id),
            "Initialise tenant repository|".to_owned(),
        ]
    );
    let files = git(&path, &["show", "--name-only", "--format=", "main"]);
    assert_eq!(files.trim(), "apps/blog.yaml");
    // Regenerated commit keeps message and author.
    let msg = git(&path, &["log", "-1", "--format=%B", "main"]);
    assert_eq!(msg.trim_end(), b.message.trim_end());

    // Crash resume after regeneration: commit_order reuses, merge is already done.
    let again = repos.commit_order(SLUG, &b.change()).unwrap();
    assert!(again.reused);
    assert_eq!(again.commit, *commit);
    assert!(matches!(repos.merge_order(SLUG, &b.change()).unwrap(), MergeOutcome::AlreadyMerged { .. }));
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn delete_removes_the_file_and_no_change_is_an_error() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let create = Order::write(1, "shop", "x: 1\n");
    repos.commit_order(SLUG, &create.change()).unwrap();
    repos.merge_order(SLUG, &create.change()).unwrap();

    // Same content again: nothing to do.
    let same = Order::write(2, "shop", "x: 1\n");
    let err = repos.commit_order(SLUG, &same.change()).unwrap_err();
    assert!(matches!(err, GitError::NoChange(_)), "{err}");
    assert_eq!(repos.branch_commit(SLUG, &branch_for(&same.id)).unwrap(), None);

    let delete = Order::delete(3, "shop");
    repos.commit_order(SLUG, &delete.change()).unwrap();
    let merged = repos.merge_order(SLUG, &delete.change()).unwrap();
    assert!(matches!(merged, MergeOutcome::FastForward { .. }));
    assert_eq!(repos.read_main_file(SLUG, "apps/shop.yaml").unwrap(), None);
    // The emptied folder disappears with its last file.
    assert_eq!(git(&path, &["ls-tree", "--name-only", "main"]).trim(), "README.md");
    let status = git(&path, &["show", "--name-status", "--format=", "main"]);
    assert_eq!(status.trim(), "D\tapps/shop.yaml");

    // Deleting a missing file: nothing to do.
    let again = Order::delete(4, "shop");
    let err = repos.commit_order(SLUG, &again.change()).unwrap_err();
    assert!(matches!(err, GitError::NoChange(_)), "{err}");
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn delete_branch_and_errors() {
    let (_dir, repos) = setup();
    let order = Order::write(1, "shop", "x: 1\n");
    let committed = repos.commit_order(SLUG, &order.change()).unwrap();
    repos.delete_branch(SLUG, &committed.branch).unwrap();
    assert_eq!(repos.branch_commit(SLUG, &committed.branch).unwrap(), None);
    repos.delete_branch(SLUG, &committed.branch).unwrap();
    assert!(matches!(repos.delete_branch(SLUG, "main"), Err(GitError::InvalidInput(_))));
    assert!(matches!(repos.merge_order(SLUG, &order.change()), Err(GitError::NotFound(_))));
    assert!(matches!(repos.main_commit("nope"), Err(GitError::NotFound(_))));
    assert!(matches!(repos.main_commit("../x"), Err(GitError::InvalidInput(_))));

    let mut bad = Order::write(2, "x", "y");
    bad.path = "../escape.yaml".into();
    assert!(matches!(repos.commit_order(SLUG, &bad.change()), Err(GitError::InvalidInput(_))));
    bad.path = ".git/config".into();
    assert!(matches!(repos.commit_order(SLUG, &bad.change()), Err(GitError::InvalidInput(_))));
}

#[test]
fn foreign_branch_and_concurrent_ref_update_are_conflicts() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let order = Order::write(1, "shop", "x: 1\n");
    // A branch with that name but someone else's commit.
    git(&path, &["branch", &branch_for(&order.id), "main"]);
    assert!(matches!(repos.commit_order(SLUG, &order.change()), Err(GitError::Conflict(_))));

    // Another writer holds main's lock (as `git` does while updating it): the merge does not
    // overwrite anything and reports a conflict; it succeeds once the lock is released.
    let other = Order::write(2, "blog", "y: 1\n");
    let committed = repos.commit_order(SLUG, &other.change()).unwrap();
    let lock = path.join("refs/heads/main.lock");
    std::fs::write(&lock, format!("{}\n", committed.base)).unwrap();
    let err = repos.merge_order(SLUG, &other.change()).unwrap_err();
    assert!(matches!(err, GitError::Conflict(_)), "{err}");
    assert_eq!(repos.main_commit(SLUG).unwrap(), committed.base);
    std::fs::remove_file(&lock).unwrap();
    assert!(matches!(repos.merge_order(SLUG, &other.change()).unwrap(), MergeOutcome::FastForward { .. }));
}

#[test]
fn ten_thousand_files_then_one_order() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let files: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("apps/app-{i:05}.yaml"), format!("kind: App\nname: app-{i:05}\n").into_bytes()))
        .collect();
    repos.seed_files(SLUG, &files, "seed\n", &author()).unwrap();
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), 10_000);

    let order = Order::write(1, "shop", "kind: App\nname: shop\n");
    repos.commit_order(SLUG, &order.change()).unwrap();
    let merged = repos.merge_order(SLUG, &order.change()).unwrap();
    assert!(matches!(merged, MergeOutcome::FastForward { .. }));
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), 10_001);
    let count = git(&path, &["ls-tree", "--name-only", "main", "apps/"]);
    assert_eq!(count.lines().count(), 10_001);
    let files = git(&path, &["show", "--name-status", "--format=", "main"]);
    assert_eq!(files.trim(), "A\tapps/shop.yaml");
    git(&path, &["fsck", "--strict"]);

    // Packing keeps everything readable, and orders keep working on top of packed objects.
    assert!(repos.loose_objects_estimate(SLUG).unwrap() > 0);
    repos.gc(SLUG).unwrap();
    assert_eq!(repos.loose_objects_estimate(SLUG).unwrap(), 0);
    let update = Order::write(2, "app-00042", "kind: App\nname: app-00042\nreplicas: 2\n");
    repos.commit_order(SLUG, &update.change()).unwrap();
    repos.merge_order(SLUG, &update.change()).unwrap();
    assert_eq!(
        repos.read_main_file(SLUG, "apps/app-00042.yaml").unwrap().unwrap(),
        b"kind: App\nname: app-00042\nreplicas: 2\n"
    );
    let files = git(&path, &["show", "--name-status", "--format=", "main"]);
    assert_eq!(files.trim(), "M\tapps/app-00042.yaml");
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), 10_001);
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn commit_statuses_are_notes_one_per_context_readable_with_git() {
    use maxcloud_gitops::{CommitState, CommitStatus, STATUS_NOTES_REF};
    let (_dir, repos) = setup();
    let main = repos.main_commit(SLUG).unwrap();
    let ok = CommitStatus::new(
        "maxcloud/App/shop".into(),
        CommitState::Success,
        "ready at https://shop.acme.example",
        Some("https://shop.acme.example".into()),
        "o1".into(),
    );
    repos.set_commit_status(SLUG, &main, &ok, &author()).unwrap();
    let long = "x".repeat(300);
    let failed = CommitStatus::new("maxcloud/Database/db".into(), CommitState::Failure, &long, None, "o2".into());
    assert_eq!(failed.description.chars().count(), maxcloud_gitops::DESCRIPTION_MAX_CHARS);
    repos.set_commit_status(SLUG, &main, &failed, &author()).unwrap();
    // The same context is replaced, not added; setting it again changes nothing.
    let ok_again = CommitStatus { description: "ready".into(), ..ok.clone() };
    repos.set_commit_status(SLUG, &main, &ok_again, &author()).unwrap();
    let notes_tip = git(&repos.path(SLUG), &["rev-parse", STATUS_NOTES_REF]);
    repos.set_commit_status(SLUG, &main, &ok_again, &author()).unwrap();
    assert_eq!(git(&repos.path(SLUG), &["rev-parse", STATUS_NOTES_REF]), notes_tip, "no empty notes commit");
    assert_eq!(repos.commit_statuses(SLUG, &main).unwrap(), vec![ok_again, failed], "ordered by context");
    // What a user with a clone sees.
    let shown = git(&repos.path(SLUG), &["notes", "--ref=maxcloud-status", "show", &main]);
    assert!(shown.contains("\"state\": \"success\"") && shown.contains("maxcloud/App/shop"), "{shown}");
    // Bad input is refused, and a commit without statuses has none.
    assert!(matches!(repos.set_commit_status(SLUG, "nope", &ok, &author()), Err(GitError::InvalidInput(_))));
    let unknown = "0".repeat(40);
    assert!(matches!(repos.commit_statuses(SLUG, &unknown), Err(GitError::NotFound(_))));
    // `main` is untouched by notes.
    assert_eq!(repos.main_commit(SLUG).unwrap(), main);
}

#[test]
fn concurrent_commit_statuses_of_one_commit_all_stay() {
    use maxcloud_gitops::{CommitState, CommitStatus};
    let (_dir, repos) = setup();
    let main = repos.main_commit(SLUG).unwrap();
    std::thread::scope(|scope| {
        for i in 0..8 {
            let (repos, main) = (&repos, &main);
            scope.spawn(move || {
                let status = CommitStatus::new(
                    format!("maxcloud/App/app-{i}"),
                    CommitState::Success,
                    "ready",
                    None,
                    format!("o{i}"),
                );
                repos.set_commit_status(SLUG, main, &status, &author()).unwrap();
            });
        }
    });
    assert_eq!(repos.commit_statuses(SLUG, &main).unwrap().len(), 8, "no context lost to a concurrent writer");
}
