//! Bare tenant repositories written with git2.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, RepositoryInitOptions, Tree};

use crate::tree_edit::{edit_path, write_loose, Leaf, LooseStore};
use crate::GitError;

pub(crate) const MAIN_REF: &str = "refs/heads/main";
const BRANCH_PREFIX: &str = "order/";
const ORDER_TRAILER: &str = "Order-Id";

/// Committer and author identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// One order's change to one file.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// Order id (uuid string); names the branch `order/<order_id>`.
    pub order_id: &'a str,
    /// File path in the repository, e.g. `apps/shop.yaml`.
    pub path: &'a str,
    /// `Some` writes the file with this content, `None` deletes it.
    pub content: Option<&'a [u8]>,
    /// Full commit message (see [`crate::render_commit_message`]); must carry the trailer
    /// `Order-Id: <order_id>`, which makes [`Repos::commit_order`] idempotent.
    pub message: &'a str,
    /// Author (and committer) of the commit.
    pub author: &'a Signature,
}

/// Result of [`Repos::commit_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Branch name, `order/<order_id>` (without `refs/heads/`).
    pub branch: String,
    /// The order's commit (hex).
    pub commit: String,
    /// Its parent: main at the time of committing (hex).
    pub base: String,
    /// True when the branch already existed with the order's commit (crash resume).
    pub reused: bool,
}

/// Result of [`Repos::merge_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Main was fast-forwarded to the order's commit.
    FastForward {
        /// The new main (hex).
        commit: String,
    },
    /// Main had moved: the commit was regenerated on top of it, the branch moved to it and main
    /// fast-forwarded.
    Regenerated {
        /// The new main (hex).
        commit: String,
    },
    /// Main already contained the order's commit.
    AlreadyMerged {
        /// The order's commit (hex).
        commit: String,
    },
}

impl MergeOutcome {
    /// The order's commit that is now on main.
    pub fn commit(&self) -> &str {
        match self {
            MergeOutcome::FastForward { commit }
            | MergeOutcome::Regenerated { commit }
            | MergeOutcome::AlreadyMerged { commit } => commit,
        }
    }
}

/// Branch name of an order: `order/<order_id>`.
pub fn branch_for(order_id: &str) -> String {
    format!("{BRANCH_PREFIX}{order_id}")
}

/// The directory holding all tenant repositories (`<root>/<slug>.git`).
///
/// Cheap to clone (clones share a pool of open repository handles). All methods block (git2).
#[derive(Clone)]
pub struct Repos {
    root: PathBuf,
    /// Idle open handles per slug. Opening a repository costs dozens of file system calls (config
    /// discovery, ref and object database setup) — more than the rest of an order's Git work — so
    /// handles are reused. A handle is used by one thread at a time (taken out of the pool).
    /// libgit2 re-reads refs from disk and refreshes its pack list when an object is missing, so a
    /// pooled handle stays correct after `git gc`.
    pool: Arc<Mutex<HashMap<String, Vec<Repository>>>>,
    /// Serialises writers of the platform repository in this process.
    platform_lock: Arc<Mutex<()>>,
    /// Serialises commit-status writers in this process (a note is read, changed and written back).
    notes_lock: Arc<Mutex<()>>,
    /// One per slug: serialises fetches from and pushes to the forge of a mirror in this process (libgit2 takes
    /// no lock to wait on: a second transfer at once fails on the ref and `FETCH_HEAD` lock files).
    remote_locks: Arc<Mutex<HashMap<String, Arc<Mutex<()>>>>>,
}

impl std::fmt::Debug for Repos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repos").field("root", &self.root).finish_non_exhaustive()
    }
}

/// An open repository borrowed from the pool; returned to it on drop.
pub(crate) struct PooledRepo<'a> {
    repo: Option<Repository>,
    slug: &'a str,
    pool: &'a Mutex<HashMap<String, Vec<Repository>>>,
}

impl Deref for PooledRepo<'_> {
    type Target = Repository;
    fn deref(&self) -> &Repository {
        // Always Some until drop.
        self.repo.as_ref().unwrap_or_else(|| unreachable!("pooled repository taken"))
    }
}

impl Drop for PooledRepo<'_> {
    fn drop(&mut self) {
        if let Some(repo) = self.repo.take() {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            let idle = pool.entry(self.slug.to_string()).or_default();
            if idle.len() < 4 {
                idle.push(repo);
            }
        }
    }
}

/// Process-wide libgit2 settings, applied once.
///
/// Hash verification of every object read is switched off: the repositories are written only by
/// this process and the cost (SHA-1 with collision detection over e.g. a 420 KB tree of 10,000
/// entries on every order) is measurable. Object creation stays strict.
fn configure_libgit2() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        git2::opts::strict_hash_verification(false);
    });
}

impl Repos {
    /// Repositories under `root` (created on first [`Repos::init_tenant`]).
    ///
    /// The first call switches off libgit2's hash verification of objects read, process-wide
    /// (`git2::opts::strict_hash_verification(false)`), which saves ≈ 1 ms per order in large
    /// repositories.
    pub fn new(root: impl Into<PathBuf>) -> Repos {
        configure_libgit2();
        Repos {
            root: root.into(),
            pool: Arc::default(),
            platform_lock: Arc::default(),
            notes_lock: Arc::default(),
            remote_locks: Arc::default(),
        }
    }

    /// The lock serialising the forge transfers of `slug`'s mirror.
    pub(crate) fn remote_lock(&self, slug: &str) -> Arc<Mutex<()>> {
        let mut locks = self.remote_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(slug.to_string()).or_default().clone()
    }

    pub(crate) fn platform_lock(&self) -> &Mutex<()> {
        &self.platform_lock
    }

    pub(crate) fn notes_lock(&self) -> &Mutex<()> {
        &self.notes_lock
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a tenant's bare repository: `<root>/<slug>.git`.
    pub fn path(&self, slug: &str) -> PathBuf {
        self.root.join(format!("{slug}.git"))
    }

    /// Whether the tenant's repository exists (never true for the reserved platform repository).
    pub fn exists(&self, slug: &str) -> bool {
        slug != crate::platform::PLATFORM_REPO && valid_slug(slug).is_ok() && self.open(slug).is_ok()
    }

    pub(crate) fn open<'a>(&'a self, slug: &'a str) -> Result<PooledRepo<'a>, GitError> {
        valid_slug(slug)?;
        let idle = self.pool.lock().unwrap_or_else(|p| p.into_inner()).get_mut(slug).and_then(Vec::pop);
        let repo = match idle {
            Some(repo) => repo,
            None => Repository::open_bare(self.path(slug)).map_err(|err| match err.code() {
                ErrorCode::NotFound => GitError::NotFound(format!("repository {slug}")),
                _ => GitError::Git(err),
            })?,
        };
        Ok(PooledRepo { repo: Some(repo), slug, pool: &self.pool })
    }

    /// Create the tenant's bare repository with an initial commit on `main` holding `README.md`.
    ///
    /// HEAD points to `refs/heads/main`; the config sets `http.receivepack=false` and
    /// `http.uploadpack=true`. Idempotent: an existing repository with `main` is left alone and
    /// its main commit returned. The repository is built in a temporary directory and renamed into
    /// place, so a crash never leaves a half-initialised repository behind.
    pub fn init_tenant(&self, slug: &str, readme: &str, author: &Signature) -> Result<String, GitError> {
        valid_slug(slug)?;
        if slug == crate::platform::PLATFORM_REPO {
            return Err(GitError::InvalidInput(format!("{slug:?} is reserved for the platform repository")));
        }
        let path = self.path(slug);
        if path.exists() {
            let repo = Repository::open_bare(&path)?;
            if let Some(main) = ref_target(&repo, MAIN_REF)? {
                return Ok(main.to_string());
            }
            configure_repo(&repo)?;
            return initial_commit(&repo, readme, author).map(|oid| oid.to_string());
        }

        std::fs::create_dir_all(&self.root)?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp =
            self.root.join(format!(".init-{slug}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let result = (|| {
            let mut opts = RepositoryInitOptions::new();
            opts.bare(true).no_reinit(true).mkpath(false).external_template(false).initial_head("main");
            let repo = Repository::init_opts(&tmp, &opts)?;
            configure_repo(&repo)?;
            let oid = initial_commit(&repo, readme, author)?;
            drop(repo);
            std::fs::rename(&tmp, &path)?;
            Ok::<_, GitError>(oid.to_string())
        })();
        match result {
            Ok(oid) => Ok(oid),
            Err(err) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // Lost a race against a concurrent init: use the winner's repository.
                if path.exists() {
                    if let Ok(main) = self.main_commit(slug) {
                        return Ok(main);
                    }
                }
                Err(err)
            }
        }
    }

    /// Commit `change` on branch `order/<order_id>` on top of the current main.
    ///
    /// Idempotent for crash resume: if the branch exists and its tip carries the trailer
    /// `Order-Id: <order_id>`, it is returned with `reused = true` and nothing is committed. A
    /// branch without that trailer is a [`GitError::Conflict`]. A change that changes nothing
    /// (same content already at `path` on main, or deleting a missing file) is
    /// [`GitError::NoChange`].
    pub fn commit_order(&self, slug: &str, change: &Change) -> Result<Committed, GitError> {
        let repo = self.open(slug)?;
        let branch = branch_for(change.order_id);
        let branch_ref = branch_ref_name(&branch)?;
        if let Some(tip) = ref_target(&repo, &branch_ref)? {
            let commit = repo.find_commit(tip)?;
            if !has_order_trailer(&commit, change.order_id) {
                return Err(GitError::Conflict(format!(
                    "branch {branch} exists with a commit not made for order {}",
                    change.order_id
                )));
            }
            let base = commit.parent_id(0).map(|p| p.to_string()).unwrap_or_default();
            return Ok(Committed { branch, commit: tip.to_string(), base, reused: true });
        }
        let main = main_target(&repo, slug)?;
        let commit = build_commit(&repo, main, change, None)?;
        // Create, never overwrite: a concurrent writer of the same branch makes this fail.
        repo.reference(&branch_ref, commit, false, "max-cloud: order commit")
            .map_err(|err| conflict_on_race(err, &branch))?;
        Ok(Committed { branch, commit: commit.to_string(), base: main.to_string(), reused: false })
    }

    /// Merge branch `order/<order_id>` into main.
    ///
    /// - main is, or contains, the branch tip: [`MergeOutcome::AlreadyMerged`];
    /// - main is the tip's parent: main is fast-forwarded ([`MergeOutcome::FastForward`]);
    /// - otherwise main moved meanwhile: the commit is regenerated from `change` on top of the
    ///   current main (same message and author, new committer time), the branch is moved to it
    ///   and main fast-forwarded ([`MergeOutcome::Regenerated`]). If the change is already
    ///   contained in the new main, this is [`GitError::NoChange`].
    ///
    /// References are updated compare-and-swap; a concurrent move is a [`GitError::Conflict`].
    pub fn merge_order(&self, slug: &str, change: &Change) -> Result<MergeOutcome, GitError> {
        let repo = self.open(slug)?;
        let branch = branch_for(change.order_id);
        let branch_ref = branch_ref_name(&branch)?;
        let tip =
            ref_target(&repo, &branch_ref)?.ok_or_else(|| GitError::NotFound(format!("branch {branch} in {slug}")))?;
        let main = main_target(&repo, slug)?;
        if main == tip {
            return Ok(MergeOutcome::AlreadyMerged { commit: tip.to_string() });
        }
        let tip_commit = repo.find_commit(tip)?;
        if tip_commit.parent_ids().any(|p| p == main) {
            repo.reference_matching(MAIN_REF, tip, true, main, "max-cloud: fast-forward")
                .map_err(|err| conflict_on_race(err, "main"))?;
            return Ok(MergeOutcome::FastForward { commit: tip.to_string() });
        }
        if repo.graph_descendant_of(main, tip)? {
            return Ok(MergeOutcome::AlreadyMerged { commit: tip.to_string() });
        }
        let author_time = tip_commit.author().when();
        let commit = build_commit(&repo, main, change, Some(author_time))?;
        repo.reference_matching(&branch_ref, commit, true, tip, "max-cloud: regenerate order")
            .map_err(|err| conflict_on_race(err, &branch))?;
        repo.reference_matching(MAIN_REF, commit, true, main, "max-cloud: fast-forward")
            .map_err(|err| conflict_on_race(err, "main"))?;
        Ok(MergeOutcome::Regenerated { commit: commit.to_string() })
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors (both hex commits of the tenant's repo). An
    /// unknown or malformed commit is `false` (e.g. a revision Flux reports that this repo never had).
    pub fn contains(&self, slug: &str, descendant: &str, ancestor: &str) -> Result<bool, GitError> {
        let repo = self.open(slug)?;
        let (Ok(descendant), Ok(ancestor)) = (git2::Oid::from_str(descendant), git2::Oid::from_str(ancestor)) else {
            return Ok(false);
        };
        if descendant == ancestor {
            return Ok(repo.find_commit(descendant).is_ok());
        }
        Ok(repo.graph_descendant_of(descendant, ancestor).unwrap_or(false))
    }

    /// Main's tip commit (hex).
    pub fn main_commit(&self, slug: &str) -> Result<String, GitError> {
        let repo = self.open(slug)?;
        Ok(main_target(&repo, slug)?.to_string())
    }

    /// Tip of a branch (`order/<id>` or `main`; a full `refs/...` name is accepted too), if it
    /// exists.
    pub fn branch_commit(&self, slug: &str, branch: &str) -> Result<Option<String>, GitError> {
        let repo = self.open(slug)?;
        let name = branch_ref_name(branch)?;
        Ok(ref_target(&repo, &name)?.map(|oid| oid.to_string()))
    }

    /// Whether `commit` (hex) is main's tip or an ancestor of it. An unknown or malformed commit
    /// id is `false`.
    pub fn main_contains(&self, slug: &str, commit: &str) -> Result<bool, GitError> {
        let repo = self.open(slug)?;
        let main = main_target(&repo, slug)?;
        if commit.len() != 40 {
            return Ok(false);
        }
        let Ok(oid) = Oid::from_str(commit) else {
            return Ok(false);
        };
        if oid == main {
            return Ok(true);
        }
        let found = match repo.find_commit(oid) {
            Ok(_) => repo.graph_descendant_of(main, oid)?,
            Err(err) if err.code() == ErrorCode::NotFound => false,
            Err(err) => return Err(err.into()),
        };
        Ok(found)
    }

    /// Content of the file at `path` on main, or `None` if there is no such file.
    pub fn read_main_file(&self, slug: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        valid_path(path)?;
        let repo = self.open(slug)?;
        let tree = main_tree(&repo, slug)?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(err) if err.code() == ErrorCode::NotFound => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = repo.find_blob(entry.id())?;
        let content = blob.content().to_vec();
        Ok(Some(content))
    }

    /// Names of the files (not sub-directories) directly under `dir` on main, sorted; empty if
    /// `dir` does not exist. `dir` = `""` lists the top level.
    pub fn list_main_files(&self, slug: &str, dir: &str) -> Result<Vec<String>, GitError> {
        let dir = dir.trim_end_matches('/');
        let repo = self.open(slug)?;
        let root = main_tree(&repo, slug)?;
        let tree = if dir.is_empty() {
            root
        } else {
            valid_path(dir)?;
            match root.get_path(Path::new(dir)) {
                Ok(entry) if entry.kind() == Some(ObjectType::Tree) => repo.find_tree(entry.id())?,
                Ok(_) => return Ok(Vec::new()),
                Err(err) if err.code() == ErrorCode::NotFound => return Ok(Vec::new()),
                Err(err) => return Err(err.into()),
            }
        };
        Ok(tree
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Blob))
            .filter_map(|e| e.name().map(str::to_owned))
            .collect())
    }

    /// Delete a branch (e.g. `order/<id>` when its review was rejected). Deleting a missing branch
    /// is not an error. `main` cannot be deleted.
    pub fn delete_branch(&self, slug: &str, branch: &str) -> Result<(), GitError> {
        let name = branch_ref_name(branch)?;
        if name == MAIN_REF {
            return Err(GitError::InvalidInput("main cannot be deleted".into()));
        }
        let repo = self.open(slug)?;
        let found = repo.find_reference(&name);
        match found {
            Ok(mut reference) => reference.delete()?,
            Err(err) if err.code() == ErrorCode::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        Ok(())
    }

    /// Number of loose objects (a cheap estimate from one fan-out directory, as `git gc --auto`
    /// does), to decide when to call [`Repos::gc`].
    pub fn loose_objects_estimate(&self, slug: &str) -> Result<usize, GitError> {
        valid_slug(slug)?;
        let dir = self.path(slug).join("objects").join("17");
        let count = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter(|e| e.is_ok()).count(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(err.into()),
        };
        Ok(count * 256)
    }

    /// Number of packfiles (`objects/pack/*.pack`). Every [`Repos::apply_batch`] that writes
    /// anything adds one, and object lookups that miss (e.g. for a new object) cost a scan per
    /// pack, so call [`Repos::gc`] when this exceeds about 50.
    pub fn pack_count(&self, slug: &str) -> Result<usize, GitError> {
        valid_slug(slug)?;
        let dir = self.path(slug).join("objects").join("pack");
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err.into()),
        };
        let mut count = 0;
        for entry in entries {
            if entry?.file_name().as_encoded_bytes().ends_with(b".pack") {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Pack the repository with `git gc --quiet` (loose objects into packs; unreachable objects
    /// younger than two weeks are kept, and packs are deleted only after their objects are in the
    /// new pack, so orders written concurrently are never harmed). Refs are not packed
    /// (`gc.packRefs=false`): packing takes ref locks that would make a concurrent compare-and-swap
    /// of `main` fail, and the repositories hold few refs anyway. Safe to run next to the worker.
    ///
    /// Every order writes its changed trees uncompressed (≈ 42 bytes per file in the changed
    /// folder): as loose objects ([`Repos::commit_order`]) or in one pack per batch
    /// ([`Repos::apply_batch`]). So call this periodically from the tenant's serialised worker,
    /// e.g. when [`Repos::loose_objects_estimate`] exceeds a few thousand or
    /// [`Repos::pack_count`] exceeds about 50. Blocks until git finishes.
    pub fn gc(&self, slug: &str) -> Result<(), GitError> {
        valid_slug(slug)?;
        let path = self.path(slug);
        if !path.exists() {
            return Err(GitError::NotFound(format!("repository {slug}")));
        }
        // At the lowest CPU priority (`nice`, coreutils): packing is background housekeeping and
        // must not slow down the orders and requests served next to it.
        let mut cmd = std::process::Command::new("nice");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
            .args(["-n", "19", "git"])
            .arg("--git-dir")
            .arg(&path)
            .args(["-c", "gc.packRefs=false", "-c", "gc.autoDetach=false", "gc", "--quiet"]);
        if let Some(home) = std::env::var_os("HOME") {
            cmd.env("HOME", home);
        }
        let output = cmd.output()?;
        if !output.status.success() {
            return Err(GitError::Io(std::io::Error::other(format!(
                "git gc in {slug} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))));
        }
        Ok(())
    }

    /// One commit on main adding (or replacing) many files at once; for benches and tests.
    pub fn seed_files(
        &self,
        slug: &str,
        files: &[(String, Vec<u8>)],
        message: &str,
        author: &Signature,
    ) -> Result<String, GitError> {
        let repo = self.open(slug)?;
        let main = main_target(&repo, slug)?;
        let parent = repo.find_commit(main)?;
        let mut updates = TreeUpdateBuilder::new();
        for (path, content) in files {
            valid_path(path)?;
            let blob = repo.blob(content)?;
            updates.upsert(path.as_str(), blob, FileMode::Blob);
        }
        let tree_id = updates.create_updated(&repo, &parent.tree()?)?;
        let tree = repo.find_tree(tree_id)?;
        let sig = git2::Signature::now(&author.name, &author.email)?;
        let commit = repo.commit(None, &sig, &sig, message, &tree, &[&parent])?;
        repo.reference_matching(MAIN_REF, commit, true, main, "max-cloud: seed")
            .map_err(|err| conflict_on_race(err, "main"))?;
        Ok(commit.to_string())
    }
}

/// Write the order's commit on top of `parent` (not referenced by anything yet).
pub(crate) fn build_commit(
    repo: &Repository,
    parent: Oid,
    change: &Change,
    author_time: Option<git2::Time>,
) -> Result<Oid, GitError> {
    valid_path(change.path)?;
    let parent = repo.find_commit(parent)?;
    let leaf = match change.content {
        Some(content) => Leaf::Blob(write_loose(repo, ObjectType::Blob, content)?),
        None => Leaf::Remove,
    };
    let store = LooseStore::new(repo)?;
    let Some(tree_id) = edit_path(&store, parent.tree_id(), change.path, leaf)? else {
        return Err(GitError::NoChange(match change.content {
            Some(_) => format!("{} already has this content on main", change.path),
            None => format!("{} does not exist on main", change.path),
        }));
    };
    // The root tree is small (one entry per resource kind), so loading it is cheap.
    let tree = repo.find_tree(tree_id)?;
    let committer = git2::Signature::now(&change.author.name, &change.author.email)?;
    let author = match author_time {
        Some(time) => git2::Signature::new(&change.author.name, &change.author.email, &time)?,
        None => committer.clone(),
    };
    Ok(repo.commit(None, &author, &committer, change.message, &tree, &[&parent])?)
}

fn configure_repo(repo: &Repository) -> Result<(), GitError> {
    let mut config = repo.config()?;
    config.set_bool("http.receivepack", false)?;
    config.set_bool("http.uploadpack", true)?;
    Ok(())
}

fn initial_commit(repo: &Repository, readme: &str, author: &Signature) -> Result<Oid, GitError> {
    let blob = repo.blob(readme.as_bytes())?;
    let mut builder = repo.treebuilder(None)?;
    builder.insert("README.md", blob, FileMode::Blob.into())?;
    let tree = repo.find_tree(builder.write()?)?;
    let sig = git2::Signature::now(&author.name, &author.email)?;
    let commit = repo.commit(None, &sig, &sig, "Initialise tenant repository\n", &tree, &[])?;
    repo.reference(MAIN_REF, commit, false, "max-cloud: init").map_err(|err| conflict_on_race(err, "main"))?;
    Ok(commit)
}

pub(crate) fn ref_target(repo: &Repository, name: &str) -> Result<Option<Oid>, GitError> {
    match repo.refname_to_id(name) {
        Ok(oid) => Ok(Some(oid)),
        Err(err) if err.code() == ErrorCode::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

pub(crate) fn main_target(repo: &Repository, slug: &str) -> Result<Oid, GitError> {
    ref_target(repo, MAIN_REF)?.ok_or_else(|| GitError::NotFound(format!("main of {slug}")))
}

fn main_tree<'r>(repo: &'r Repository, slug: &str) -> Result<Tree<'r>, GitError> {
    Ok(repo.find_commit(main_target(repo, slug)?)?.tree()?)
}

pub(crate) fn has_order_trailer(commit: &git2::Commit<'_>, order_id: &str) -> bool {
    let Some(message) = commit.message() else {
        return false;
    };
    git2::message_trailers_strs(message)
        .map(|t| t.iter().any(|(k, v)| k == ORDER_TRAILER && v == order_id))
        .unwrap_or(false)
}

/// The value of the commit's `Order-Id` trailer, if any.
pub(crate) fn order_trailer(commit: &git2::Commit<'_>) -> Option<String> {
    let trailers = git2::message_trailers_strs(commit.message()?).ok()?;
    let found = trailers.iter().find(|(k, _)| *k == ORDER_TRAILER).map(|(_, v)| v.to_owned());
    found
}

/// Map "reference changed / already exists" to [`GitError::Conflict`].
pub(crate) fn conflict_on_race(err: git2::Error, what: &str) -> GitError {
    match err.code() {
        ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked => {
            GitError::Conflict(format!("{what} was changed concurrently: {}", err.message()))
        }
        _ => GitError::Git(err),
    }
}

/// `refs/heads/<branch>` for a short branch name; full `refs/heads/...` names pass through.
pub(crate) fn branch_ref_name(branch: &str) -> Result<String, GitError> {
    let name = if branch.starts_with("refs/heads/") { branch.to_owned() } else { format!("refs/heads/{branch}") };
    if !git2::Reference::is_valid_name(&name) {
        return Err(GitError::InvalidInput(format!("invalid branch name {branch:?}")));
    }
    Ok(name)
}

fn valid_slug(slug: &str) -> Result<(), GitError> {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(GitError::InvalidInput(format!("invalid tenant slug {slug:?}")))
    }
}

/// A relative file path of plain components (no `.`, `..`, `.git`, empty parts, NUL, backslash).
pub(crate) fn valid_path(path: &str) -> Result<(), GitError> {
    let ok = !path.is_empty()
        && !path.contains(['\0', '\\'])
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.eq_ignore_ascii_case(".git"));
    if ok {
        Ok(())
    } else {
        Err(GitError::InvalidInput(format!("invalid path {path:?}")))
    }
}
