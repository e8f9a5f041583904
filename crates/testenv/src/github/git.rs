//! The mock's repositories on disk (git2) and Git smart HTTP (`git http-backend` through
//! `maxcloud_gitops::http_backend`) with GitHub's basic auth.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine;
use git2::{BranchType, Oid, Repository, RepositoryInitOptions, Signature};
use http::{Method, StatusCode};
use maxcloud_gitops::http_backend::{self, CgiRequest};

use super::{api, GitRecorded, Shared, GIT_USERNAME, OWNER};

/// A bare repository with `HEAD` → `main` that takes pushes through `git http-backend`.
pub(crate) fn init_bare(dir: &Path) -> Result<(), git2::Error> {
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).mkpath(true).external_template(false).initial_head("main");
    let repo = Repository::init_opts(dir, &opts)?;
    let mut config = repo.config()?;
    config.set_bool("http.receivepack", true)?;
    config.set_bool("receive.denyDeletes", false)?;
    Ok(())
}

pub(crate) fn tip(dir: &Path, branch: &str) -> Option<String> {
    let repo = Repository::open_bare(dir).ok()?;
    let reference = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
    reference.target().map(|o| o.to_string())
}

pub(crate) fn branches(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(repo) = Repository::open_bare(dir) else { return out };
    let Ok(branches) = repo.branches(Some(BranchType::Local)) else { return out };
    for (branch, _) in branches.flatten() {
        if let (Ok(Some(name)), Some(target)) = (branch.name(), branch.get().target()) {
            out.insert(name.to_string(), target.to_string());
        }
    }
    out
}

/// Whether `sha` names a commit of the repository.
pub(crate) fn has_commit(dir: &Path, sha: &str) -> bool {
    let Ok(repo) = Repository::open_bare(dir) else { return false };
    let found = Oid::from_str(sha).ok().and_then(|oid| repo.find_commit(oid).ok()).is_some();
    found
}

fn signature(login: &str) -> Result<Signature<'static>, git2::Error> {
    Signature::now(login, &format!("{login}@users.noreply.github.example"))
}

/// A commit on `branch` (a new branch starts from `main`, or is a root commit) writing `files` (`None` deletes).
pub(crate) fn commit_files(
    dir: &Path,
    branch: &str,
    files: &[(&str, Option<&str>)],
    message: &str,
    login: &str,
) -> Result<String, git2::Error> {
    let repo = Repository::open_bare(dir)?;
    let parent = match tip(dir, branch).or_else(|| tip(dir, "main")) {
        Some(sha) => Some(repo.find_commit(Oid::from_str(&sha)?)?),
        None => None,
    };
    let mut index = git2::Index::new()?;
    if let Some(p) = &parent {
        index.read_tree(&p.tree()?)?;
    }
    for (path, content) in files {
        match content {
            Some(text) => {
                let blob = repo.blob(text.as_bytes())?;
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    file_size: text.len() as u32,
                    id: blob,
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                };
                index.add(&entry)?;
            }
            None => index.remove_path(Path::new(path))?,
        }
    }
    let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
    let sig = signature(login)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo.commit(None, &sig, &sig, message, &tree, &parents)?;
    repo.reference(&format!("refs/heads/{branch}"), oid, true, "mock: commit")?;
    Ok(oid.to_string())
}

pub(crate) fn set_branch(dir: &Path, branch: &str, sha: &str) -> Result<(), git2::Error> {
    let repo = Repository::open_bare(dir)?;
    repo.reference(&format!("refs/heads/{branch}"), Oid::from_str(sha)?, true, "mock: set branch")?;
    Ok(())
}

/// Delete a branch; false if there was none.
pub(crate) fn delete_branch(dir: &Path, branch: &str) -> bool {
    let Ok(repo) = Repository::open_bare(dir) else { return false };
    let deleted = match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(mut r) => r.delete().is_ok(),
        Err(_) => false,
    };
    deleted
}

/// Whether `commit` is `tip` or one of its ancestors (nothing of `commit` is missing from `tip`).
pub(crate) fn contains(dir: &Path, tip: &str, commit: &str) -> bool {
    let Ok(repo) = Repository::open_bare(dir) else { return false };
    let (Ok(tip), Ok(commit)) = (Oid::from_str(tip), Oid::from_str(commit)) else { return false };
    tip == commit || repo.graph_descendant_of(tip, commit).unwrap_or(false)
}

/// Why a merge cannot be made.
#[derive(Debug)]
pub(crate) enum MergeRefusal {
    Conflict,
    Missing(String),
}

/// Whether `head` merges into `base` without conflicts.
pub(crate) fn mergeable(dir: &Path, base: &str, head: &str) -> bool {
    let check = || -> Result<bool, git2::Error> {
        let repo = Repository::open_bare(dir)?;
        let Some(base) = tip(dir, base) else { return Ok(false) };
        let base = repo.find_commit(Oid::from_str(&base)?)?;
        let head = repo.find_commit(Oid::from_str(head)?)?;
        Ok(!repo.merge_commits(&base, &head, None)?.has_conflicts())
    };
    check().unwrap_or(false)
}

/// A merge commit of `head` into `base` (parents: base's tip, head; GitHub's merge method `merge`: never a
/// fast-forward), authored by `login`, committed by GitHub, on `base`. Returns it.
pub(crate) fn merge(dir: &Path, base: &str, head: &str, message: &str, login: &str) -> Result<String, MergeRefusal> {
    let missing = |e: git2::Error| MergeRefusal::Missing(e.message().to_string());
    let repo = Repository::open_bare(dir).map_err(missing)?;
    let base_sha = tip(dir, base).ok_or_else(|| MergeRefusal::Missing(format!("branch {base}")))?;
    let base_commit = repo.find_commit(Oid::from_str(&base_sha).map_err(missing)?).map_err(missing)?;
    let head_commit = repo.find_commit(Oid::from_str(head).map_err(missing)?).map_err(missing)?;
    let mut index = repo.merge_commits(&base_commit, &head_commit, None).map_err(missing)?;
    if index.has_conflicts() {
        return Err(MergeRefusal::Conflict);
    }
    let tree = repo.find_tree(index.write_tree_to(&repo).map_err(missing)?).map_err(missing)?;
    let author = signature(login).map_err(missing)?;
    let committer = Signature::now("GitHub", "noreply@github.example").map_err(missing)?;
    let oid = repo.commit(None, &author, &committer, message, &tree, &[&base_commit, &head_commit]).map_err(missing)?;
    repo.reference_matching(&format!("refs/heads/{base}"), oid, true, base_commit.id(), "mock: merge")
        .map_err(missing)?;
    Ok(oid.to_string())
}

fn plain(status: u16, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// `Basic` credentials of the request.
fn basic(headers: &http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `GET /{owner}/{repo}.git/info/refs?service=...`, `POST /{owner}/{repo}.git/git-upload-pack|git-receive-pack`.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 256 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let params: HashMap<String, String> = url_query(&query);
    let credentials = basic(&parts.headers);

    let segments: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    let (owner, repo_git, rest) = match segments.as_slice() {
        [owner, repo, rest] => (*owner, *repo, format!("/{rest}")),
        _ => return plain(404, "Not Found"),
    };
    let service = match (&parts.method, rest.as_str()) {
        (&Method::GET, "/info/refs") => params.get("service").cloned().unwrap_or_default(),
        (&Method::POST, "/git-upload-pack") => "git-upload-pack".to_string(),
        (&Method::POST, "/git-receive-pack") => "git-receive-pack".to_string(),
        _ => String::new(),
    };
    let name = repo_git.strip_suffix(".git").unwrap_or(repo_git).to_string();
    let record = GitRecorded {
        method: parts.method.clone(),
        path: path.clone(),
        service: service.clone(),
        username: credentials.as_ref().map(|c| c.0.clone()),
        password: credentials.as_ref().map(|c| c.1.clone()),
        status: 0,
    };
    let finish = |shared: &Shared, mut record: GitRecorded, response: Response| {
        record.status = response.status().as_u16();
        shared.lock().git_requests.push(record);
        response
    };

    // Checks and faults, then the credentials.
    let (login, fault_after) = {
        let mut s = shared.lock();
        if !matches!(service.as_str(), "git-upload-pack" | "git-receive-pack") {
            s.violations.push(format!("Git: {} {path}?{query} is not smart HTTP", parts.method));
            drop(s);
            return finish(&shared, record, plain(404, "Not Found"));
        }
        if let Some(fault) = s.take_fault(&parts.method, &path, false) {
            drop(s);
            let status = fault.status.unwrap_or(500);
            return finish(&shared, record, plain(status, &fault.message));
        }
        let Some((user, password)) = credentials.clone() else {
            drop(s);
            let mut response = plain(401, "Authentication required");
            response.headers_mut().insert("www-authenticate", http::HeaderValue::from_static("Basic realm=\"GitHub\""));
            return finish(&shared, record, response);
        };
        if user != GIT_USERNAME || !s.token_valid(&password) {
            drop(s);
            let mut response = plain(401, "Invalid username or token. Password authentication is not supported.");
            response.headers_mut().insert("www-authenticate", http::HeaderValue::from_static("Basic realm=\"GitHub\""));
            return finish(&shared, record, response);
        }
        if !owner.eq_ignore_ascii_case(OWNER) || !s.repos.contains_key(&name) {
            drop(s);
            return finish(&shared, record, plain(404, "Repository not found."));
        }
        let fault_after = s.take_fault(&parts.method, &path, true);
        (s.acting_login(), fault_after)
    };

    let push = service == "git-receive-pack" && parts.method == Method::POST;
    let _push_guard = if push { Some(shared.push_lock.lock().await) } else { None };
    let (root, before) = {
        let s = shared.lock();
        (s.root.join(OWNER), s.branches(&name))
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let cgi = CgiRequest {
        method: parts.method.as_str().to_string(),
        repo: repo_git.to_string(),
        path_info_rest: rest.clone(),
        query: query.clone(),
        content_type: header("content-type"),
        content_encoding: header("content-encoding"),
        git_protocol: header("git-protocol"),
        remote_user: login.clone(),
        body,
    };
    let answer = http_backend::run(&root, cgi).await;
    if push {
        let mut s = shared.lock();
        api::after_push(&mut s, &name, &before, &login);
    }
    let response = match answer {
        Ok(cgi) => {
            let mut response = Response::new(Body::from(cgi.body));
            *response.status_mut() = StatusCode::from_u16(cgi.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (k, v) in cgi.headers {
                if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(&v)) {
                    response.headers_mut().append(k, v);
                }
            }
            response
        }
        Err(e) => plain(500, &format!("git http-backend: {e}")),
    };
    let response = match fault_after {
        Some(fault) => {
            tokio::time::sleep(fault.delay).await;
            match fault.status {
                Some(status) => plain(status, &fault.message),
                None => response,
            }
        }
        None => response,
    };
    finish(&shared, record, response)
}

fn url_query(query: &str) -> HashMap<String, String> {
    query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
