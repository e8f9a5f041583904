//! `Repos::apply_batch` with real git2 and the real `git` CLI.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use maxcloud_gitops::{
    branch_for, render_commit_message, render_readme, Applied, BatchItem, Change, GitError, MergeOutcome, OrderText,
    ReadmeContext, Repos, Signature,
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

/// Run `git --git-dir=<repo> <args>` and return stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out =
        Command::new("git").arg("--git-dir").arg(repo).args(args).env("GIT_CONFIG_NOSYSTEM", "1").output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Loose objects in the repository (every file under `objects/xx/`).
fn loose_count(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().len() == 2)
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

fn order_refs(repo: &Path) -> Vec<String> {
    git(repo, &["for-each-ref", "--format=%(refname)", "refs/heads/order/"]).lines().map(str::to_owned).collect()
}

struct Order {
    id: String,
    path: String,
    content: Option<Vec<u8>>,
    message: String,
    author: Signature,
}

impl Order {
    fn new(n: u32, action: &str, name: &str, content: Option<&str>) -> Order {
        let id = format!("0191c2d4-0000-7000-8000-{n:012}");
        let path = format!("apps/{name}.yaml");
        let message = render_commit_message(&OrderText {
            order_id: id.clone(),
            action: action.into(),
            kind: "App".into(),
            name: name.into(),
            path: path.clone(),
            requester: "alice@example.com".into(),
            tenant: SLUG.into(),
            ..Default::default()
        })
        .unwrap();
        Order { id, path, content: content.map(|c| c.as_bytes().to_vec()), message, author: author() }
    }

    fn write(n: u32, name: &str) -> Order {
        Order::new(n, "create", name, Some(&format!("kind: App\nname: {name}\n")))
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

    fn item(&self, merge: bool) -> BatchItem<'_> {
        BatchItem { change: self.change(), merge }
    }
}

fn ok(result: &Result<Applied, GitError>) -> &Applied {
    result.as_ref().unwrap_or_else(|e| panic!("item failed: {e}"))
}

#[test]
fn batch_of_five_creates_is_one_pack_and_one_main_move() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let base = repos.main_commit(SLUG).unwrap();
    let loose_before = loose_count(&path);
    assert_eq!(repos.pack_count(SLUG).unwrap(), 0);

    let orders: Vec<Order> = (1..=5).map(|n| Order::write(n, &format!("app-{n}"))).collect();
    let items: Vec<BatchItem> = orders.iter().map(|o| o.item(true)).collect();
    let results = repos.apply_batch(SLUG, &items).unwrap();
    assert_eq!(results.len(), 5);

    let mut expected_base = base.clone();
    for (order, result) in orders.iter().zip(&results) {
        let applied = ok(result);
        assert_eq!(applied.committed.branch, branch_for(&order.id));
        assert_eq!(applied.committed.base, expected_base);
        assert!(!applied.committed.reused);
        assert_eq!(applied.merged, Some(MergeOutcome::FastForward { commit: applied.committed.commit.clone() }));
        expected_base = applied.committed.commit.clone();
    }
    let main = repos.main_commit(SLUG).unwrap();
    assert_eq!(main, expected_base);

    // Linear first-parent history, one commit per order with its trailer, oldest first.
    let log = git(
        &path,
        &[
            "log",
            "--first-parent",
            "--reverse",
            "--format=%H %(trailers:key=Order-Id,valueonly,separator=)",
            &format!("{base}..main"),
        ],
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5);
    for ((line, order), result) in lines.iter().zip(&orders).zip(&results) {
        assert_eq!(*line, format!("{} {}", ok(result).committed.commit, order.id));
        let files = git(&path, &["show", "--name-status", "--format=", &ok(result).committed.commit]);
        assert_eq!(files.trim(), format!("A\t{}", order.path));
    }
    assert_eq!(git(&path, &["ls-tree", "--name-only", "main", "apps/"]).lines().count(), 5);
    for order in &orders {
        assert_eq!(repos.read_main_file(SLUG, &order.path).unwrap().as_deref(), order.content.as_deref());
    }
    git(&path, &["fsck", "--strict", "--no-dangling"]);

    assert_eq!(repos.pack_count(SLUG).unwrap(), 1);
    assert_eq!(loose_count(&path), loose_before);
    assert!(order_refs(&path).is_empty());
    // 5 blobs, 5 × (root tree + apps tree), 5 commits.
    let verify = git(&path, &["count-objects", "-v"]);
    assert!(verify.contains("in-pack: 20"), "{verify}");

    // An empty batch writes nothing.
    assert!(repos.apply_batch(SLUG, &[]).unwrap().is_empty());
    assert_eq!(repos.pack_count(SLUG).unwrap(), 1);
}

#[test]
fn mixed_batch_review_item_gets_a_branch_on_main_at_its_position() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let a = Order::write(1, "a");
    let review = Order::new(2, "create", "db", Some("kind: Database\n"));
    let c = Order::write(3, "c");
    let results = repos.apply_batch(SLUG, &[a.item(true), review.item(false), c.item(true)]).unwrap();
    let (ra, rr, rc) = (ok(&results[0]), ok(&results[1]), ok(&results[2]));
    assert!(rr.merged.is_none());
    assert!(!rr.committed.reused);
    // The review commit sits on main as it was at its position in the batch.
    assert_eq!(rr.committed.base, ra.committed.commit);
    assert_eq!(rc.committed.base, ra.committed.commit);
    let main = repos.main_commit(SLUG).unwrap();
    assert_eq!(main, rc.committed.commit);
    assert_eq!(repos.branch_commit(SLUG, &branch_for(&review.id)).unwrap(), Some(rr.committed.commit.clone()));
    assert_eq!(order_refs(&path), vec![format!("refs/heads/order/{}", review.id)]);
    assert!(!repos.main_contains(SLUG, &rr.committed.commit).unwrap());
    assert_eq!(repos.read_main_file(SLUG, &review.path).unwrap(), None);
    assert_eq!(git(&path, &["show", &format!("{}:{}", branch_for(&review.id), review.path)]), "kind: Database\n");
    git(&path, &["fsck", "--strict"]);

    // Approved later: the old review commit is reused and regenerated on the new main.
    let results = repos.apply_batch(SLUG, &[review.item(true)]).unwrap();
    let applied = ok(&results[0]);
    assert!(applied.committed.reused);
    assert_eq!(applied.committed.commit, rr.committed.commit);
    let Some(MergeOutcome::Regenerated { commit }) = &applied.merged else {
        panic!("expected a regeneration: {applied:?}");
    };
    assert_eq!(&repos.main_commit(SLUG).unwrap(), commit);
    assert_eq!(git(&path, &["rev-parse", &format!("{commit}^")]).trim(), main);
    assert_eq!(repos.read_main_file(SLUG, &review.path).unwrap().unwrap(), b"kind: Database\n");
    // The branch is left for the caller to delete.
    assert_eq!(repos.branch_commit(SLUG, &branch_for(&review.id)).unwrap(), Some(rr.committed.commit.clone()));
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn reused_branch_merges_and_a_replayed_batch_is_already_merged() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    // A crash after commit_order left a branch on the current main.
    let pre = Order::write(1, "pre");
    let committed = repos.commit_order(SLUG, &pre.change()).unwrap();
    let others: Vec<Order> = (2..=4).map(|n| Order::write(n, &format!("app-{n}"))).collect();
    let deleted = Order::new(5, "delete", "app-2", None);
    let mut items = vec![pre.item(true)];
    items.extend(others.iter().map(|o| o.item(true)));
    items.push(deleted.item(true));

    let first = repos.apply_batch(SLUG, &items).unwrap();
    let applied = ok(&first[0]);
    assert!(applied.committed.reused);
    assert_eq!(applied.committed.commit, committed.commit);
    assert_eq!(applied.merged, Some(MergeOutcome::FastForward { commit: committed.commit.clone() }));
    for result in &first[1..] {
        assert!(matches!(ok(result).merged, Some(MergeOutcome::FastForward { .. })));
    }
    assert_eq!(repos.read_main_file(SLUG, "apps/app-2.yaml").unwrap(), None);
    let main = repos.main_commit(SLUG).unwrap();
    let packs = repos.pack_count(SLUG).unwrap();
    let loose = loose_count(&path);

    // Crash after main moved, before the outcome was recorded: the same batch again. Order 2
    // creates a file that order 5 deletes, so it is not a no-op on main: only the history
    // lookup keeps it from being applied a second time.
    let again = repos.apply_batch(SLUG, &items).unwrap();
    for (before, after) in first.iter().zip(&again) {
        let (before, after) = (ok(before), ok(after));
        assert!(after.committed.reused, "{after:?}");
        assert_eq!(after.committed.commit, before.committed.commit);
        assert_eq!(after.committed.base, before.committed.base);
        assert_eq!(after.merged, Some(MergeOutcome::AlreadyMerged { commit: before.committed.commit.clone() }));
    }
    assert_eq!(repos.main_commit(SLUG).unwrap(), main);
    assert_eq!(repos.pack_count(SLUG).unwrap(), packs);
    assert_eq!(loose_count(&path), loose);
    // Only the pre-existing branch; it is the caller's to delete.
    assert_eq!(order_refs(&path), vec![format!("refs/heads/order/{}", pre.id)]);

    // Without merge, a merged order is reported as committed (reused), not re-committed.
    let review = repos.apply_batch(SLUG, &[others[1].item(false)]).unwrap();
    let applied = ok(&review[0]);
    assert!(applied.committed.reused && applied.merged.is_none());
    assert_eq!(applied.committed.commit, ok(&first[2]).committed.commit);
    assert_eq!(order_refs(&path).len(), 1);
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn failing_items_fail_alone() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let good1 = Order::write(1, "one");
    let noop = Order::new(2, "delete", "missing", None);
    let mut foreign = Order::write(3, "foreign");
    let good2 = Order::write(4, "two");
    let bad_path = Order { path: "apps/../x.yaml".into(), ..Order::write(5, "bad") };
    // A branch for order 3 that was not made for it.
    let main = repos.main_commit(SLUG).unwrap();
    git(&path, &["update-ref", &format!("refs/heads/order/{}", foreign.id), &main]);
    foreign.content = Some(b"x".to_vec());
    // An item whose path clashes with a directory after the first item: its blob must not be
    // packed.
    let clash = Order { path: "apps".into(), content: Some(b"never packed\n".to_vec()), ..Order::write(6, "clash") };
    let results = repos
        .apply_batch(
            SLUG,
            &[
                good1.item(true),
                noop.item(true),
                foreign.item(true),
                clash.item(true),
                good2.item(true),
                bad_path.item(true),
                good1.item(true),
            ],
        )
        .unwrap();
    assert!(matches!(results[1], Err(GitError::NoChange(_))), "{:?}", results[1]);
    assert!(matches!(results[2], Err(GitError::Conflict(_))), "{:?}", results[2]);
    assert!(matches!(results[3], Err(GitError::InvalidInput(_))), "{:?}", results[3]);
    assert!(matches!(results[5], Err(GitError::InvalidInput(_))), "{:?}", results[5]);
    // The same order twice in one batch.
    assert!(matches!(results[6], Err(GitError::InvalidInput(_))), "{:?}", results[6]);
    let (r1, r2) = (ok(&results[0]), ok(&results[4]));
    assert_eq!(r2.committed.base, r1.committed.commit);
    assert_eq!(repos.main_commit(SLUG).unwrap(), r2.committed.commit);
    assert_eq!(git(&path, &["rev-list", "--count", &format!("{main}..main")]).trim(), "2");
    // 2 × (blob + 2 trees + commit).
    assert!(git(&path, &["count-objects", "-v"]).contains("in-pack: 8"));
    git(&path, &["fsck", "--strict"]);

    // A batch where everything fails writes nothing and does not move main.
    let results = repos.apply_batch(SLUG, &[noop.item(true)]).unwrap();
    assert!(matches!(results[0], Err(GitError::NoChange(_))));
    assert_eq!(repos.pack_count(SLUG).unwrap(), 1);
    assert_eq!(repos.main_commit(SLUG).unwrap(), r2.committed.commit);

    // Unknown tenant: the whole call fails.
    assert!(matches!(repos.apply_batch("nobody", &[good1.item(true)]), Err(GitError::NotFound(_))));
}

#[test]
fn pooled_handles_see_the_new_pack() {
    let (_dir, repos) = setup();
    // Warm the pool with handles that have loaded the (empty) pack list.
    let before = repos.main_commit(SLUG).unwrap();
    assert_eq!(repos.read_main_file(SLUG, "apps/a.yaml").unwrap(), None);
    assert!(repos.list_main_files(SLUG, "apps").unwrap().is_empty());
    // A second `Repos` has its own pool: its handles write, `repos`' handles (which loaded the
    // pack list before) read; and the other way round, so the writer's handle is stale too.
    let other = Repos::new(repos.root());
    assert_eq!(other.main_commit(SLUG).unwrap(), before);
    for round in 1..=4u32 {
        let order = Order::write(round, &format!("a{round}"));
        let writer = if round % 2 == 1 { &other } else { &repos };
        let results = writer.apply_batch(SLUG, &[order.item(true)]).unwrap();
        let applied = ok(&results[0]);
        // Right after (same second): the pooled handles find the new objects.
        assert_eq!(repos.main_commit(SLUG).unwrap(), applied.committed.commit);
        assert!(repos.main_contains(SLUG, &before).unwrap());
        assert!(repos.main_contains(SLUG, &applied.committed.commit).unwrap());
        assert_eq!(repos.read_main_file(SLUG, &order.path).unwrap().as_deref(), order.content.as_deref());
        assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), round as usize);
    }
    assert_eq!(other.list_main_files(SLUG, "apps").unwrap().len(), 4);
    // commit_order works on top of packed objects.
    let order = Order::write(9, "loose");
    repos.commit_order(SLUG, &order.change()).unwrap();
    assert!(matches!(repos.merge_order(SLUG, &order.change()).unwrap(), MergeOutcome::FastForward { .. }));
    assert_eq!(repos.pack_count(SLUG).unwrap(), 4);
    git(&repos.path(SLUG), &["fsck", "--strict"]);
    // git gc folds the packs into one; pooled handles keep working.
    repos.gc(SLUG).unwrap();
    assert_eq!(repos.pack_count(SLUG).unwrap(), 1);
    assert_eq!(other.list_main_files(SLUG, "apps").unwrap().len(), 5);
    let order = Order::write(10, "after-gc");
    let results = other.apply_batch(SLUG, &[order.item(true)]).unwrap();
    ok(&results[0]);
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), 6);
}

#[test]
fn ten_thousand_files_batch_of_eight() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let files: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("apps/app-{i:05}.yaml"), format!("kind: App\nname: app-{i:05}\n").into_bytes()))
        .collect();
    repos.seed_files(SLUG, &files, "seed\n", &author()).unwrap();
    repos.gc(SLUG).unwrap();
    let loose = loose_count(&path);

    let mut orders: Vec<Order> = (1..=6).map(|n| Order::write(n, &format!("new-{n}"))).collect();
    orders.push(Order::new(7, "update", "app-00042", Some("kind: App\nreplicas: 2\n")));
    orders.push(Order::new(8, "delete", "app-09999", None));
    let items: Vec<BatchItem> = orders.iter().map(|o| o.item(true)).collect();
    let t = Instant::now();
    let results = repos.apply_batch(SLUG, &items).unwrap();
    println!("batch of 8 in a 10,000-file repo: {:?}", t.elapsed());
    for result in &results {
        assert!(matches!(ok(result).merged, Some(MergeOutcome::FastForward { .. })));
    }
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), 10_005);
    assert_eq!(repos.read_main_file(SLUG, "apps/app-00042.yaml").unwrap().unwrap(), b"kind: App\nreplicas: 2\n");
    let changes = git(&path, &["show", "--name-status", "--format=", "main"]);
    assert_eq!(changes.trim(), "D\tapps/app-09999.yaml");
    assert_eq!(loose_count(&path), loose);
    assert_eq!(repos.pack_count(SLUG).unwrap(), 2);
    git(&path, &["fsck", "--strict"]);
}

#[test]
fn main_update_failure_fails_the_batch_and_moves_no_ref() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let main = repos.main_commit(SLUG).unwrap();
    let auto = Order::write(1, "auto");
    let review = Order::write(2, "review");
    // Another writer holds main's lock while the batch tries to move it.
    let lock = path.join("refs/heads/main.lock");
    std::fs::write(&lock, format!("{main}\n")).unwrap();
    let result = repos.apply_batch(SLUG, &[auto.item(true), review.item(false)]);
    assert!(matches!(result, Err(GitError::Conflict(_))), "{result:?}");
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(repos.main_commit(SLUG).unwrap(), main);
    assert!(order_refs(&path).is_empty());

    // Retried: applied normally (the first attempt's pack only holds unreachable objects).
    let results = repos.apply_batch(SLUG, &[auto.item(true), review.item(false)]).unwrap();
    assert!(matches!(ok(&results[0]).merged, Some(MergeOutcome::FastForward { .. })));
    assert_eq!(order_refs(&path).len(), 1);
    git(&path, &["fsck", "--strict"]);
}

/// Every file below `apps/` in `tree`, with its content.
fn apps_files(repo: &git2::Repository, tree: git2::Oid) -> Vec<(String, Vec<u8>)> {
    let tree = repo.find_tree(tree).unwrap();
    let apps = tree.get_name("apps").unwrap().to_object(repo).unwrap();
    apps.as_tree()
        .unwrap()
        .iter()
        .map(|entry| {
            let blob = entry.to_object(repo).unwrap();
            (format!("apps/{}", entry.name().unwrap()), blob.as_blob().unwrap().content().to_vec())
        })
        .collect()
}

/// A batch of 60 orders (creates, updates, deletes, one left for review) in a 1,000-file repo:
/// the newest `apps/` tree is stored whole and older ones as deltas against the next one in the
/// same pack, in chains of at most 50. git verifies the pack; fresh and pooled libgit2 handles read
/// every file at every commit; the next batch builds on the delta-chained tree.
#[test]
fn batch_trees_are_chained_deltas_that_git_and_libgit2_read() {
    let (_dir, repos) = setup();
    let path = repos.path(SLUG);
    let files: Vec<(String, Vec<u8>)> = (0..1_000)
        .map(|i| (format!("apps/app-{i:05}.yaml"), format!("kind: App\nname: app-{i:05}\n").into_bytes()))
        .collect();
    repos.seed_files(SLUG, &files, "seed\n", &author()).unwrap();
    repos.gc(SLUG).unwrap();
    let start = repos.main_commit(SLUG).unwrap();
    // Warm the pool: these handles have loaded the pack list before the batch.
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), 1_000);

    let orders: Vec<Order> = (1..=60u32)
        .map(|n| match n % 4 {
            0 => Order::new(n, "update", &format!("app-{:05}", n * 3), Some(&format!("kind: App\nreplicas: {n}\n"))),
            1 => Order::new(n, "delete", &format!("app-{:05}", n * 5), None),
            _ => Order::write(n, &format!("new-{n:02}")),
        })
        .collect();
    let review = 30; // order 31 stays on its branch
    let items: Vec<BatchItem> = orders.iter().enumerate().map(|(i, o)| o.item(i != review)).collect();
    let results = repos.apply_batch(SLUG, &items).unwrap();
    for result in &results {
        ok(result);
    }
    assert_eq!(repos.pack_count(SLUG).unwrap(), 2);

    // The batch's pack: trees chain as deltas, never deeper than 50.
    let pack_dir = path.join("objects/pack");
    let idx = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    let verify = git(&path, &["verify-pack", "-v", idx.to_str().unwrap()]);
    let chains: Vec<(usize, usize)> = verify
        .lines()
        .filter_map(|l| l.strip_prefix("chain length = "))
        .map(|l| {
            let (depth, count) = l.split_once(": ").unwrap();
            (depth.parse().unwrap(), count.split(' ').next().unwrap().parse().unwrap())
        })
        .collect();
    let deltas: usize = chains.iter().map(|(_, count)| count).sum();
    // Of the 60 `apps` trees, the newest (main's) is whole and 58 chain back from it (the
    // review item's tree is skipped: the tree before it was edited into both, and the later
    // edit is its base), cut once at depth 50; the review item's tree has no newer version
    // and is whole.
    assert_eq!(deltas, 57, "{verify}");
    assert_eq!(chains.last().unwrap().0, 50, "{verify}");
    let full_trees: Vec<&str> =
        verify.lines().filter(|l| l.contains(" tree ") && l.split_whitespace().count() == 5).collect();
    // 60 root trees and 3 `apps` trees.
    assert_eq!(full_trees.len(), 63, "{verify}");
    // Main's `apps` tree needs no delta resolution.
    let main_apps = git(&path, &["rev-parse", "main:apps"]);
    assert!(full_trees.iter().any(|l| l.starts_with(main_apps.trim())), "{verify}");
    git(&path, &["fsck", "--strict", "--no-dangling"]);

    // Expected files after each order, replayed on a model of main.
    let mut model: std::collections::BTreeMap<String, Vec<u8>> = files.into_iter().collect();
    let fresh = git2::Repository::open_bare(&path).unwrap();
    for (i, (order, result)) in orders.iter().zip(&results).enumerate() {
        let commit = ok(result).committed.commit.parse().unwrap();
        let tree = fresh.find_commit(commit).unwrap().tree_id();
        let mut expected = model.clone();
        match &order.content {
            Some(content) => expected.insert(order.path.clone(), content.clone()),
            None => expected.remove(&order.path),
        };
        let actual: std::collections::BTreeMap<String, Vec<u8>> = apps_files(&fresh, tree).into_iter().collect();
        assert!(actual == expected, "commit of order {}", i + 1);
        if i != review {
            model = expected;
        }
    }
    // Pooled handles (opened before the pack existed) read main's delta-chained tree.
    for (file, content) in &model {
        assert_eq!(repos.read_main_file(SLUG, file).unwrap().as_deref(), Some(&content[..]));
    }
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), model.len());
    let review_commit = ok(&results[review]).committed.commit.clone();
    assert_eq!(repos.branch_commit(SLUG, &branch_for(&orders[review].id)).unwrap(), Some(review_commit));
    assert!(repos.main_contains(SLUG, &start).unwrap());

    // The next batch edits main's tree, the base of the chains (read back from the pack).
    let next = Order::write(100, "after");
    let results = repos.apply_batch(SLUG, &[next.item(true)]).unwrap();
    ok(&results[0]);
    assert_eq!(repos.read_main_file(SLUG, &next.path).unwrap().as_deref(), next.content.as_deref());
    assert_eq!(repos.list_main_files(SLUG, "apps").unwrap().len(), model.len() + 1);
    git(&path, &["fsck", "--strict", "--no-dangling"]);
    // git gc repacks the deltified packs.
    repos.gc(SLUG).unwrap();
    assert_eq!(repos.pack_count(SLUG).unwrap(), 1);
    git(&path, &["fsck", "--strict", "--no-dangling"]);
}
