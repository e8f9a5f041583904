//! Commit statuses of the local provider: what the cluster made of a merged commit, reported back to Git.
//!
//! A forge keeps commit statuses beside the repository (GitHub's `POST /repos/{o}/{r}/statuses/{sha}`). The
//! local provider keeps them *in* the repository, as a Git note on the commit under
//! [`STATUS_NOTES_REF`]: anyone with read access sees them with
//! `git fetch origin 'refs/notes/*:refs/notes/*' && git log --notes=maxcloud-status`. One note per commit
//! holds one status per context (`maxcloud/<Kind>/<name>`), because one merge commit can carry several orders.

use std::collections::BTreeMap;

use git2::{ErrorCode, Oid};
use serde::{Deserialize, Serialize};

use crate::{GitError, Repos, Signature};

/// The notes reference holding the statuses.
pub const STATUS_NOTES_REF: &str = "refs/notes/maxcloud-status";

/// GitHub's limit on a status description; kept here so statuses look the same on every provider.
pub const DESCRIPTION_MAX_CHARS: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

/// One status of a commit, as forges model it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    pub context: String,
    pub state: CommitState,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    /// The order whose outcome this is.
    pub order_id: String,
}

impl CommitStatus {
    /// A status whose description is cut to [`DESCRIPTION_MAX_CHARS`] (with an ellipsis).
    pub fn new(
        context: String,
        state: CommitState,
        description: &str,
        target_url: Option<String>,
        order_id: String,
    ) -> Self {
        let description = if description.chars().count() > DESCRIPTION_MAX_CHARS {
            let cut: String = description.chars().take(DESCRIPTION_MAX_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            description.to_string()
        };
        CommitStatus { context, state, description, target_url, order_id }
    }
}

impl Repos {
    /// Sets `status` on `commit` of the tenant's repository, replacing the status of the same context.
    pub fn set_commit_status(
        &self,
        slug: &str,
        commit: &str,
        status: &CommitStatus,
        author: &Signature,
    ) -> Result<(), GitError> {
        let repo = self.open(slug)?;
        let oid = commit_oid(&repo, commit)?;
        // Read, change, write back: one writer at a time, or a concurrent context would be lost.
        let _writer = self.notes_lock().lock().unwrap_or_else(|p| p.into_inner());
        let mut statuses = read(&repo, oid)?;
        if statuses.get(&status.context) == Some(status) {
            return Ok(());
        }
        statuses.insert(status.context.clone(), status.clone());
        let text = serde_json::to_string_pretty(&statuses.values().collect::<Vec<_>>())
            .map_err(|e| GitError::InvalidInput(e.to_string()))?;
        let sig = git2::Signature::now(&author.name, &author.email)?;
        // Writers are serialised in this process; a notes commit by another process makes libgit2 fail the ref
        // update, and one retry on the new notes tip resolves it.
        match repo.note(&sig, &sig, Some(STATUS_NOTES_REF), oid, &text, true) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == ErrorCode::Modified || e.code() == ErrorCode::Locked => {
                repo.note(&sig, &sig, Some(STATUS_NOTES_REF), oid, &text, true)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The statuses of `commit`, ordered by context.
    pub fn commit_statuses(&self, slug: &str, commit: &str) -> Result<Vec<CommitStatus>, GitError> {
        let repo = self.open(slug)?;
        let oid = commit_oid(&repo, commit)?;
        Ok(read(&repo, oid)?.into_values().collect())
    }
}

fn commit_oid(repo: &git2::Repository, commit: &str) -> Result<Oid, GitError> {
    let oid = Oid::from_str(commit).map_err(|_| GitError::InvalidInput(format!("invalid commit id {commit:?}")))?;
    repo.find_commit(oid).map_err(|_| GitError::NotFound(format!("commit {commit}")))?;
    Ok(oid)
}

fn read(repo: &git2::Repository, oid: Oid) -> Result<BTreeMap<String, CommitStatus>, GitError> {
    let note = match repo.find_note(Some(STATUS_NOTES_REF), oid) {
        Ok(note) => note,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    // A note edited by hand into something else is replaced, not an error.
    let list: Vec<CommitStatus> = serde_json::from_str(note.message().unwrap_or("")).unwrap_or_default();
    Ok(list.into_iter().map(|s| (s.context.clone(), s)).collect())
}
