//! Tenant repositories kept on a Git hosting provider: the local bare repository is a mirror of the forge's.
//!
//! The order service still builds every commit locally with git2 (one commit per order, on `order/<id>`, with the
//! `Order-Id` trailer). With a forge, `main` of the local repository follows the forge's `main` (fetched, forced:
//! only the forge merges), the forge's order branches are fetched to `refs/remotes/origin/order/*`, and an order
//! branch is pushed to the forge, where the pull request is opened and merged. Git runs over HTTP(S) with basic
//! auth (a token as the password), through libgit2's own transports.

use git2::{Cred, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository, RepositoryInitOptions};

use crate::repos::{branch_for, branch_ref_name, build_commit, has_order_trailer, main_target, ref_target, MAIN_REF};
use crate::{Change, Committed, GitError, Repos};

/// Credentials for Git over HTTP(S).
#[derive(Clone)]
pub struct RemoteAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RemoteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAuth").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Where the forge's order branches are fetched to.
const REMOTE_BRANCHES: &str = "refs/remotes/origin/";

/// An order branch rebuilt on the current main ([`Repos::rebase_order`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebased {
    /// The branch already sits on main.
    Current { commit: String },
    /// The branch was moved to a new commit on main.
    Moved { commit: String },
}

impl Rebased {
    pub fn commit(&self) -> &str {
        match self {
            Rebased::Current { commit } | Rebased::Moved { commit } => commit,
        }
    }
}

/// Tries of one transfer.
const TRANSFER_TRIES: u32 = 4;

/// Run a transfer, trying again after a transient failure — the network, an HTTP error status (a 5xx from the
/// forge), TLS — with exponential backoff and full jitter (250 ms · 2^n at most). Refused credentials, rejected
/// updates and every other error are final at once.
fn with_retries<T>(mut transfer: impl FnMut() -> Result<T, git2::Error>) -> Result<T, git2::Error> {
    let mut retry = 0;
    loop {
        match transfer() {
            Err(e) if retry + 1 < TRANSFER_TRIES && transient(&e) => {
                let ceiling = 250u64 << retry;
                // Jitter from the clock: good enough to keep concurrent retries apart, no RNG needed.
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                let wait = u64::from(nanos.subsec_nanos()) % (ceiling + 1);
                tracing::debug!(error = %e, retry, wait_ms = wait, "Git transfer retried");
                std::thread::sleep(std::time::Duration::from_millis(wait));
                retry += 1;
            }
            other => return other,
        }
    }
}

fn transient(e: &git2::Error) -> bool {
    use git2::{ErrorClass, ErrorCode};
    let refused = matches!(e.code(), ErrorCode::Auth | ErrorCode::User | ErrorCode::Certificate)
        || e.message().contains("credentials")
        || e.message().contains("401")
        || e.message().contains("403")
        || e.message().contains("404");
    !refused && matches!(e.class(), ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Os)
}

fn callbacks(auth: &RemoteAuth) -> RemoteCallbacks<'_> {
    let mut cb = RemoteCallbacks::new();
    let mut tries = 0;
    cb.credentials(move |_url, _user, _allowed| {
        // libgit2 asks again after a 401: give up instead of looping on wrong credentials.
        tries += 1;
        if tries > 1 {
            return Err(git2::Error::from_str("the forge refused the Git credentials"));
        }
        Cred::userpass_plaintext(&auth.username, &auth.password)
    });
    cb
}

impl Repos {
    /// Create the local mirror of a forge repository (bare, `HEAD` → `main`, no commit) if it does not exist.
    pub fn init_mirror(&self, slug: &str) -> Result<(), GitError> {
        let path = self.path(slug);
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(self.root())?;
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).mkpath(false).external_template(false).initial_head("main");
        Repository::init_opts(&path, &opts)?;
        Ok(())
    }

    /// Fetch the forge's `main` into the local `main` (forced: the forge is the truth) and its order branches into
    /// `refs/remotes/origin/order/*` (pruned). Returns `main` after the fetch, `None` while the repository has none
    /// (an empty forge repository; the caller learns that from the forge's API). Transfers of one mirror wait for
    /// each other (the order lane and a webhook's look at a pull request fetch at the same time).
    pub fn fetch_remote(&self, slug: &str, url: &str, auth: &RemoteAuth) -> Result<Option<String>, GitError> {
        let lock = self.remote_lock(slug);
        let _transfer = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.init_mirror(slug)?;
        let repo = self.open(slug)?;
        let mut remote = repo.remote_anonymous(url)?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(auth));
        opts.prune(git2::FetchPrune::On);
        let refspecs = [format!("+{MAIN_REF}:{MAIN_REF}"), format!("+refs/heads/order/*:{REMOTE_BRANCHES}order/*")];
        // Pruning follows the refspecs given here: tracking refs of branches the forge deleted go.
        with_retries(|| remote.fetch(&refspecs, Some(&mut opts), Some("max-cloud: fetch from the forge")))?;
        Ok(ref_target(&repo, MAIN_REF)?.map(|o| o.to_string()))
    }

    /// The forge's tip of an order branch as last fetched.
    pub fn remote_branch(&self, slug: &str, branch: &str) -> Result<Option<String>, GitError> {
        let repo = self.open(slug)?;
        branch_ref_name(branch)?;
        Ok(ref_target(&repo, &format!("{REMOTE_BRANCHES}{branch}"))?.map(|o| o.to_string()))
    }

    /// Push local branches to the same names on the forge (`force`: replace what is there). A rejected update is
    /// a [`GitError::Conflict`] naming the branch and the forge's reason.
    pub fn push_remote(
        &self,
        slug: &str,
        url: &str,
        auth: &RemoteAuth,
        branches: &[(&str, bool)],
    ) -> Result<(), GitError> {
        let lock = self.remote_lock(slug);
        let _transfer = lock.lock().unwrap_or_else(|p| p.into_inner());
        let repo = self.open(slug)?;
        let mut remote = repo.remote_anonymous(url)?;
        let mut refspecs = Vec::with_capacity(branches.len());
        for (branch, force) in branches {
            let name = if *branch == "main" { MAIN_REF.to_string() } else { branch_ref_name(branch)? };
            refspecs.push(format!("{}{name}:{name}", if *force { "+" } else { "" }));
        }
        let rejected = std::cell::RefCell::new(Vec::new());
        with_retries(|| {
            rejected.borrow_mut().clear();
            let mut cb = callbacks(auth);
            cb.push_update_reference(|name, status| {
                if let Some(status) = status {
                    rejected.borrow_mut().push(format!("{name}: {status}"));
                }
                Ok(())
            });
            let mut opts = PushOptions::new();
            opts.remote_callbacks(cb);
            remote.push(&refspecs, Some(&mut opts))
        })?;
        let rejected = rejected.into_inner();
        if !rejected.is_empty() {
            return Err(GitError::Conflict(format!("the forge rejected the push: {}", rejected.join("; "))));
        }
        Ok(())
    }

    /// Make sure the order's branch holds its commit on top of the current main: a branch whose parent is main
    /// stays; otherwise the commit is rebuilt from `change` on main (same author and time) and the branch moved.
    /// A missing branch is created. A change that is already on main is [`GitError::NoChange`]; a branch whose tip
    /// was not made for the order is a [`GitError::Conflict`].
    pub fn rebase_order(&self, slug: &str, change: &Change) -> Result<Rebased, GitError> {
        let repo = self.open(slug)?;
        let branch = branch_for(change.order_id);
        let branch_ref = branch_ref_name(&branch)?;
        let main = main_target(&repo, slug)?;
        let Some(tip) = ref_target(&repo, &branch_ref)? else {
            drop(repo);
            let Committed { commit, .. } = self.commit_order(slug, change)?;
            return Ok(Rebased::Moved { commit });
        };
        let tip_commit = repo.find_commit(tip)?;
        if !has_order_trailer(&tip_commit, change.order_id) {
            return Err(GitError::Conflict(format!(
                "branch {branch} holds a commit not made for order {}",
                change.order_id
            )));
        }
        if tip_commit.parent_ids().any(|p| p == main) {
            return Ok(Rebased::Current { commit: tip.to_string() });
        }
        let commit: Oid = build_commit(&repo, main, change, Some(tip_commit.author().when()))?;
        repo.reference_matching(&branch_ref, commit, true, tip, "max-cloud: rebuild order on main")
            .map_err(|e| GitError::Conflict(format!("branch {branch} moved meanwhile: {e}")))?;
        Ok(Rebased::Moved { commit: commit.to_string() })
    }

    /// Whether `commit` carries the trailer `Order-Id: <order_id>` (a commit of the order service for that order).
    pub fn is_order_commit(&self, slug: &str, commit: &str, order_id: &str) -> Result<bool, GitError> {
        let repo = self.open(slug)?;
        let Ok(oid) = Oid::from_str(commit) else { return Ok(false) };
        Ok(repo.find_commit(oid).map(|c| has_order_trailer(&c, order_id)).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signature;

    fn change<'a>(order_id: &'a str, path: &'a str, content: &'a [u8], author: &'a Signature) -> Change<'a> {
        Change { order_id, path, content: Some(content), message: "", author }
    }

    #[test]
    fn mirror_fetches_pushes_and_rebuilds_order_branches() {
        let dir = tempfile::tempdir().unwrap();
        let forge = Repos::new(dir.path().join("forge"));
        let local = Repos::new(dir.path().join("local"));
        let me = Signature { name: "max-cloud".into(), email: "orders@maxcloud.dev".into() };
        let auth = RemoteAuth { username: "bot".into(), password: "token".into() };
        forge.init_mirror("acme").unwrap();
        let url = forge.path("acme").to_string_lossy().into_owned();

        // An empty forge repository: nothing to fetch; the first main is pushed from here.
        assert_eq!(local.fetch_remote("acme", &url, &auth).unwrap(), None);
        let first = local.init_tenant("acme", "# acme\n", &me).unwrap();
        local.push_remote("acme", &url, &auth, &[("main", false)]).unwrap();
        assert_eq!(forge.main_commit("acme").unwrap(), first);

        let msg_a = "create App a\n\nOrder-Id: o-a\n";
        let a = Change { message: msg_a, ..change("o-a", "apps/a.yaml", b"a: 1\n", &me) };
        let committed = local.commit_order("acme", &a).unwrap();
        local.push_remote("acme", &url, &auth, &[("order/o-a", false)]).unwrap();
        assert_eq!(forge.branch_commit("acme", "order/o-a").unwrap(), Some(committed.commit.clone()));
        local.fetch_remote("acme", &url, &auth).unwrap();
        assert_eq!(local.remote_branch("acme", "order/o-a").unwrap(), Some(committed.commit.clone()));
        assert!(local.is_order_commit("acme", &committed.commit, "o-a").unwrap());
        assert!(!local.is_order_commit("acme", &committed.commit, "o-b").unwrap());
        assert_eq!(local.rebase_order("acme", &a).unwrap(), Rebased::Current { commit: committed.commit.clone() });

        // main moves on the forge (another order merged there): the branch is rebuilt on it and force-pushed.
        let msg_b = "create App b\n\nOrder-Id: o-b\n";
        let b = Change { message: msg_b, ..change("o-b", "apps/b.yaml", b"b: 1\n", &me) };
        forge.commit_order("acme", &b).unwrap();
        forge.merge_order("acme", &b).unwrap();
        let forge_main = local.fetch_remote("acme", &url, &auth).unwrap().unwrap();
        assert_eq!(local.main_commit("acme").unwrap(), forge_main, "main follows the forge");
        let rebased = local.rebase_order("acme", &a).unwrap();
        let Rebased::Moved { commit } = &rebased else { panic!("{rebased:?}") };
        assert!(local.contains("acme", commit, &forge_main).unwrap());
        // A plain push of a rewritten branch is rejected; forced, it goes through.
        let err = local.push_remote("acme", &url, &auth, &[("order/o-a", false)]).unwrap_err();
        assert!(matches!(err, GitError::Conflict(_) | GitError::Git(_)), "{err:?}");
        local.push_remote("acme", &url, &auth, &[("order/o-a", true)]).unwrap();
        assert_eq!(forge.branch_commit("acme", "order/o-a").unwrap(), Some(commit.clone()));

        // A branch deleted on the forge disappears from the tracking refs.
        forge.delete_branch("acme", "order/o-a").unwrap();
        local.fetch_remote("acme", &url, &auth).unwrap();
        assert_eq!(local.remote_branch("acme", "order/o-a").unwrap(), None);
    }

    #[test]
    fn concurrent_fetches_and_pushes_of_one_mirror_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let forge = Repos::new(dir.path().join("forge"));
        let local = Repos::new(dir.path().join("local"));
        let me = Signature { name: "max-cloud".into(), email: "orders@maxcloud.dev".into() };
        let auth = RemoteAuth { username: "bot".into(), password: "token".into() };
        forge.init_mirror("acme").unwrap();
        let url = forge.path("acme").to_string_lossy().into_owned();
        local.fetch_remote("acme", &url, &auth).unwrap();
        local.init_tenant("acme", "# acme\n", &me).unwrap();
        local.push_remote("acme", &url, &auth, &[("main", false)]).unwrap();
        for i in 0..4 {
            let id = format!("o-{i}");
            let msg = format!("create App a{i}\n\nOrder-Id: {id}\n");
            let path = format!("apps/a{i}.yaml");
            let c = Change { message: &msg, ..change(&id, &path, b"a: 1\n", &me) };
            forge.commit_order("acme", &c).unwrap();
        }
        // The lane and a webhook's look at a pull request fetch at the same time (and the lane pushes).
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (local, url, auth) = (local.clone(), url.clone(), auth.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        local.fetch_remote("acme", &url, &auth)?;
                        if t == 0 {
                            local.push_remote("acme", &url, &auth, &[("main", false)])?;
                        }
                    }
                    Ok::<_, GitError>(())
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
    }
}
