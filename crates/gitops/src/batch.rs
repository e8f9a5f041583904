//! Applying a batch of orders with a constant number of file creations.

use std::collections::{HashMap, HashSet};

use git2::{ObjectType, Oid, Repository};

use crate::pack::{object_id, PackBuilder};
use crate::repos::{
    branch_for, branch_ref_name, conflict_on_race, has_order_trailer, main_target, order_trailer, ref_target,
    valid_path, Change, Committed, MergeOutcome, Repos, MAIN_REF,
};
use crate::tree_edit::{edit_path, Leaf, ObjectStore};
use crate::GitError;

/// How far back [`Repos::apply_batch`] looks on main for an already merged commit of an order
/// whose change is a no-op (crash resume).
const RESUME_DEPTH: usize = 256;

/// One order of a [`Repos::apply_batch`].
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The order's change.
    pub change: Change<'a>,
    /// Merge it into main in this batch (auto-merge, or an approved review); `false` leaves it
    /// on its branch `order/<id>` for review.
    pub merge: bool,
}

/// Result of one [`BatchItem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The order's commit, as [`Repos::commit_order`] reports it. `branch` is always
    /// `order/<id>` (the pull request's name), even when no such reference exists because the
    /// commit was merged in the same batch.
    pub committed: Committed,
    /// How it reached main; `None` when the item was not to be merged.
    pub merged: Option<MergeOutcome>,
}

/// State of a batch: the new objects and an in-memory main.
struct Batch<'r> {
    repo: &'r Repository,
    store: PackBuilder<'r>,
    /// Main when the batch started.
    start: Oid,
    /// The in-memory main and its tree.
    head: Oid,
    head_tree: Oid,
    /// Commits main advanced to in this batch.
    advanced: Vec<Oid>,
    /// Branches to create at the end: item index, reference name, commit.
    branches: Vec<(usize, String, Oid)>,
    /// Orders merged recently: order id → (commit, parent), from main's first-parent history.
    recent: HashMap<String, (Oid, Option<Oid>)>,
}

impl Repos {
    /// Apply orders in sequence, with the per-item semantics of [`Repos::commit_order`]
    /// followed (if `merge`) by [`Repos::merge_order`], writing a constant number of files per
    /// batch instead of about six per order.
    ///
    /// Items are applied on an in-memory main that starts at main's tip:
    ///
    /// - Crash resume first: if main's last 256 first-parent commits (read once per batch)
    ///   hold a commit with the trailer `Order-Id: <id>`, the order was merged before (e.g. by a
    ///   batch whose outcome the caller never recorded; auto-merged orders have no branch to
    ///   find them by). That commit is returned with `reused = true` and, if `merge`,
    ///   [`MergeOutcome::AlreadyMerged`]; nothing is committed, so replaying a batch neither
    ///   duplicates commits nor undoes a later order's change to the same file. (A reused
    ///   branch whose tip main contains is reported the same way.)
    /// - Branch `order/<id>` exists with the trailer (a review PR, or a crash after
    ///   [`Repos::commit_order`]): its commit is reused (`reused = true`). If `merge`: it sits on
    ///   main → [`MergeOutcome::FastForward`]; otherwise it is regenerated on main
    ///   ([`MergeOutcome::Regenerated`]). Unlike `merge_order`, the branch itself is neither
    ///   moved nor deleted: the caller deletes branches of merged orders. A branch without the
    ///   trailer is a [`GitError::Conflict`].
    /// - Otherwise the commit is built on main. With `merge` main advances to it
    ///   ([`MergeOutcome::FastForward`], no branch reference is created); without, main stays and
    ///   the branch `order/<id>` is created for it at the end. A change that changes nothing on
    ///   main (same content, or deleting a missing file) is [`GitError::NoChange`].
    ///
    /// Per-item failures (no change, a foreign branch, an invalid path, an order id given twice
    /// in one batch) are returned in that item's slot and do not affect the others.
    ///
    /// Writing: all new objects (blobs, trees, commits) go into **one packfile** (`.pack` +
    /// `.idx`, see `pack.rs` for why it is hand-written; a big tree edited by several orders of
    /// the batch is stored whole once, then as small deltas), written before any reference moves;
    /// then main is moved once, compare-and-swap from its value at the start. If main moved
    /// concurrently the whole call is [`GitError::Conflict`] and no reference moved (the pack
    /// stays as unreachable objects for `git gc` to drop). Branches of unmerged items are
    /// created last (never overwriting; a clash fails that item with a conflict). A batch that
    /// writes nothing new writes no pack.
    ///
    /// Every batch adds a pack: call [`Repos::gc`] when [`Repos::pack_count`] exceeds about 50.
    pub fn apply_batch(&self, slug: &str, items: &[BatchItem]) -> Result<Vec<Result<Applied, GitError>>, GitError> {
        let pooled = self.open(slug)?;
        let repo: &Repository = &pooled;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let start = main_target(repo, slug)?;
        let mut batch = Batch {
            repo,
            store: PackBuilder::new(repo)?,
            start,
            head: start,
            head_tree: repo.find_commit(start)?.tree_id(),
            advanced: Vec::new(),
            branches: Vec::new(),
            recent: recent_orders(repo, start)?,
        };
        let mut seen = HashSet::new();
        let mut results = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let result = if seen.insert(item.change.order_id) {
                let mark = batch.store.len();
                let result = batch.apply(index, item);
                if result.is_err() {
                    batch.store.truncate(mark);
                }
                result
            } else {
                Err(GitError::InvalidInput(format!("order {} appears twice in the batch", item.change.order_id)))
            };
            results.push(result);
        }

        if let Some(pack) = batch.store.write_pack(repo.path())? {
            tracing::debug!(
                tenant = slug,
                orders = items.len(),
                objects = pack.objects,
                bytes = pack.bytes,
                pack = %pack.path.display(),
                "wrote order batch pack"
            );
        }
        if batch.head != start {
            repo.reference_matching(MAIN_REF, batch.head, true, start, "max-cloud: order batch")
                .map_err(|err| conflict_on_race(err, "main"))?;
        }
        for (index, name, commit) in batch.branches {
            if let Err(err) = repo.reference(&name, commit, false, "max-cloud: order commit") {
                results[index] = Err(conflict_on_race(err, &name));
            }
        }
        Ok(results)
    }
}

impl Batch<'_> {
    fn apply(&mut self, index: usize, item: &BatchItem) -> Result<Applied, GitError> {
        let change = &item.change;
        valid_path(change.path)?;
        let branch = branch_for(change.order_id);
        let branch_ref = branch_ref_name(&branch)?;

        if let Some(tip) = ref_target(self.repo, &branch_ref)? {
            let commit = self.repo.find_commit(tip)?;
            if !has_order_trailer(&commit, change.order_id) {
                return Err(GitError::Conflict(format!(
                    "branch {branch} exists with a commit not made for order {}",
                    change.order_id
                )));
            }
            let committed = Committed {
                branch,
                commit: tip.to_string(),
                base: commit.parent_id(0).map(|p| p.to_string()).unwrap_or_default(),
                reused: true,
            };
            if !item.merge {
                return Ok(Applied { committed, merged: None });
            }
            let merged = if self.contains(tip)? {
                MergeOutcome::AlreadyMerged { commit: tip.to_string() }
            } else if let Some(&(found, _)) = self.recent.get(change.order_id) {
                // Regenerated and merged before (the branch was left behind).
                MergeOutcome::AlreadyMerged { commit: found.to_string() }
            } else if commit.parent_ids().any(|p| p == self.head) {
                self.advance(tip, commit.tree_id());
                MergeOutcome::FastForward { commit: tip.to_string() }
            } else {
                let Some((new, tree)) = self.build(change, Some(commit.author().when()))? else {
                    return Err(no_change(change));
                };
                self.advance(new, tree);
                MergeOutcome::Regenerated { commit: new.to_string() }
            };
            return Ok(Applied { committed, merged: Some(merged) });
        }

        // Merged before, e.g. by a batch whose outcome was lost in a crash: report that commit
        // rather than applying the change again (which could undo a later order's change).
        if let Some(&(found, parent)) = self.recent.get(change.order_id) {
            return Ok(Applied {
                committed: Committed {
                    branch,
                    commit: found.to_string(),
                    base: parent.map(|p| p.to_string()).unwrap_or_default(),
                    reused: true,
                },
                merged: item.merge.then(|| MergeOutcome::AlreadyMerged { commit: found.to_string() }),
            });
        }
        let base = self.head;
        match self.build(change, None)? {
            Some((commit, tree)) => {
                let committed = Committed { branch, commit: commit.to_string(), base: base.to_string(), reused: false };
                let merged = if item.merge {
                    self.advance(commit, tree);
                    Some(MergeOutcome::FastForward { commit: commit.to_string() })
                } else {
                    self.branches.push((index, branch_ref, commit));
                    None
                };
                Ok(Applied { committed, merged })
            }
            None => Err(no_change(change)),
        }
    }

    /// Build the order's commit on the in-memory main; `None` when it would change nothing.
    /// Returns the commit and its tree.
    fn build(&self, change: &Change, author_time: Option<git2::Time>) -> Result<Option<(Oid, Oid)>, GitError> {
        let leaf = match change.content {
            Some(content) => Leaf::Blob(object_id(ObjectType::Blob, content)?),
            None => Leaf::Remove,
        };
        let Some(tree) = edit_path(&self.store, self.head_tree, change.path, leaf)? else {
            return Ok(None);
        };
        // The blob is stored only now, so a no-op change adds nothing to the pack.
        if let Some(content) = change.content {
            self.store.write(ObjectType::Blob, content.to_vec())?;
        }
        let committer = git2::Signature::now(&change.author.name, &change.author.email)?;
        let author = match author_time {
            Some(time) => git2::Signature::new(&change.author.name, &change.author.email, &time)?,
            None => committer.clone(),
        };
        let bytes = commit_bytes(tree, self.head, &author, &committer, change.message);
        let commit = self.store.write(ObjectType::Commit, bytes)?;
        Ok(Some((commit, tree)))
    }

    fn advance(&mut self, commit: Oid, tree: Oid) {
        self.advanced.push(commit);
        self.head = commit;
        self.head_tree = tree;
    }

    /// Whether the in-memory main is, or descends from, `commit` (a commit in the repository).
    fn contains(&self, commit: Oid) -> Result<bool, GitError> {
        Ok(commit == self.start
            || self.advanced.contains(&commit)
            || self.repo.graph_descendant_of(self.start, commit)?)
    }
}

/// Order ids of the last [`RESUME_DEPTH`] first-parent commits from `tip` (trailer
/// `Order-Id`), each with its newest commit and that commit's parent.
fn recent_orders(repo: &Repository, tip: Oid) -> Result<HashMap<String, (Oid, Option<Oid>)>, GitError> {
    let mut recent = HashMap::new();
    let mut next = Some(tip);
    for _ in 0..RESUME_DEPTH {
        let Some(id) = next else { break };
        let commit = repo.find_commit(id)?;
        let parent = commit.parent_id(0).ok();
        if let Some(order_id) = order_trailer(&commit) {
            recent.entry(order_id).or_insert((id, parent));
        }
        next = parent;
    }
    Ok(recent)
}

fn no_change(change: &Change) -> GitError {
    GitError::NoChange(match change.content {
        Some(_) => format!("{} already has this content on main", change.path),
        None => format!("{} does not exist on main", change.path),
    })
}

/// Raw commit object, byte for byte as libgit2's `git_commit_create` writes it.
fn commit_bytes(
    tree: Oid,
    parent: Oid,
    author: &git2::Signature,
    committer: &git2::Signature,
    message: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + message.len());
    out.extend_from_slice(format!("tree {tree}\nparent {parent}\n").as_bytes());
    push_signature(&mut out, "author", author);
    push_signature(&mut out, "committer", committer);
    out.push(b'\n');
    out.extend_from_slice(message.as_bytes());
    out
}

/// `<header> <name> <<email>> <seconds> <±hhmm>\n` (libgit2's `git_signature__writebuf`).
fn push_signature(out: &mut Vec<u8>, header: &str, sig: &git2::Signature) {
    let when = sig.when();
    let offset = when.offset_minutes();
    let sign = if offset < 0 || when.sign() == '-' { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    out.extend_from_slice(header.as_bytes());
    out.push(b' ');
    out.extend_from_slice(sig.name_bytes());
    out.extend_from_slice(b" <");
    out.extend_from_slice(sig.email_bytes());
    out.extend_from_slice(format!("> {} {sign}{:02}{:02}\n", when.seconds(), offset / 60, offset % 60).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_bytes_match_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let tree = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
        let sig0 = git2::Signature::now("x", "x@example.com").unwrap();
        let root = repo.commit(None, &sig0, &sig0, "root\n", &tree, &[]).unwrap();
        let parent = repo.find_commit(root).unwrap();
        for (offset, msg) in [(0, "a\n\nOrder-Id: 1\n"), (-90, "no newline"), (330, "é\n")] {
            let time = git2::Time::new(1_700_000_000, offset);
            let author = git2::Signature::new("Alice Doe", "alice@example.com", &time).unwrap();
            let committer = git2::Signature::now(" Bob ", "bob@example.com").unwrap();
            let expected = repo.commit_create_buffer(&author, &committer, msg, &tree, &[&parent]).unwrap();
            let ours = commit_bytes(tree.id(), root, &author, &committer, msg);
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&expected));
        }
    }
}
