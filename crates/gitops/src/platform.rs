//! The platform repository (`<root>/platform.git`): what the cluster's Flux `tenants` Kustomization applies.
//!
//! Layout on `main`:
//!
//! ```text
//! README.md                              rendered from gitops/platform/README.md.j2
//! flux/tenants/kustomization.yaml        lists every tenant directory (sorted)
//! flux/tenants/<slug>/*.yaml             rendered from gitops/tenant/*.j2 when the tenant is created
//! ```
//!
//! Adding a tenant is one commit that writes its directory and the updated `kustomization.yaml`; doing it
//! again with the same content commits nothing. The files name Secrets but never hold a secret value.

use std::sync::OnceLock;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Repository, RepositoryInitOptions};
use minijinja::Environment;
use serde::Serialize;

use crate::repos::{conflict_on_race, ref_target, MAIN_REF};
use crate::{GitError, Repos, Signature};

/// Name of the platform repository under the repositories root (`platform.git`); reserved, never a tenant.
pub const PLATFORM_REPO: &str = "platform";
/// Directory of the tenant directories in the platform repository.
pub const TENANTS_DIR: &str = "flux/tenants";
/// Name of the Secret (in the tenant namespace) holding the tenant's Git read token.
pub const TENANT_GIT_SECRET: &str = "maxcloud-git-token";
/// Name of the tenant's Flux objects (GitRepository, Kustomization, Receiver) and ServiceAccount, in its namespace.
pub const TENANT_FLUX_NAME: &str = "maxcloud-tenant";
/// Name of the Secret (in the tenant namespace) holding the webhook Receiver's HMAC token.
pub const TENANT_WEBHOOK_SECRET: &str = "maxcloud-webhook-token";
/// Name of the Secret (in the tenant namespace) holding the tenant's age identity (`identity.agekey`), with which
/// Flux decrypts the tenant's SOPS-encrypted Secrets.
pub const TENANT_SOPS_SECRET: &str = "maxcloud-sops-age";

/// The per-tenant files, in the order of `gitops/tenant/kustomization.yaml.j2`.
const TENANT_FILES: [(&str, &str); 6] = [
    ("kustomization.yaml", include_str!("../../../gitops/tenant/kustomization.yaml.j2")),
    ("namespace.yaml", include_str!("../../../gitops/tenant/namespace.yaml.j2")),
    ("quota.yaml", include_str!("../../../gitops/tenant/quota.yaml.j2")),
    ("rbac.yaml", include_str!("../../../gitops/tenant/rbac.yaml.j2")),
    ("sync.yaml", include_str!("../../../gitops/tenant/sync.yaml.j2")),
    ("receiver.yaml", include_str!("../../../gitops/tenant/receiver.yaml.j2")),
];
const README: (&str, &str) = ("README.md", include_str!("../../../gitops/platform/README.md.j2"));
const TENANTS_KUSTOMIZATION: (&str, &str) =
    ("tenants-kustomization.yaml", include_str!("../../../gitops/platform/tenants-kustomization.yaml.j2"));
const COMMIT_MESSAGE: (&str, &str) =
    ("tenant-commit-message.txt", include_str!("../../../gitops/platform/tenant-commit-message.txt.j2"));

/// Values for the tenant templates (`gitops/tenant/*.j2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantContext {
    /// Tenant slug (a DNS label; checked by [`render_tenant`]).
    pub slug: String,
    /// Display name of the organisation (any text; quoted when rendered).
    pub tenant_name: String,
    /// Kubernetes namespace, `mc-<slug>`.
    pub namespace: String,
    /// URL Flux clones the tenant repository from (`<base>/<slug>.git`).
    pub git_url: String,
    /// Name of the Secret with the Git read token.
    pub git_secret: String,
    /// Name of the Secret with the Receiver's token.
    pub webhook_secret: String,
    /// Name of the Secret with the tenant's age identity (SOPS decryption).
    pub sops_secret: String,
    /// Flux reconcile interval (`10m`); the Receiver makes merges visible sooner.
    pub interval: String,
    /// The order service's own ServiceAccount (namespace, name), when it creates the two Secrets above itself:
    /// the tenant directory then grants it exactly that in the tenant namespace.
    pub order_service: Option<ServiceAccountRef>,
}

/// A ServiceAccount, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountRef {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccountRef {
    /// `namespace/name`, both DNS labels (names of ServiceAccounts may also be DNS subdomains).
    pub fn parse(text: &str) -> Result<ServiceAccountRef, GitError> {
        let invalid = || GitError::InvalidInput(format!("invalid service account {text:?}: expected namespace/name"));
        let (namespace, name) = text.split_once('/').ok_or_else(invalid)?;
        let subdomain = |s: &str| s.len() <= 253 && s.split('.').all(is_dns_label);
        if !is_dns_label(namespace) || !subdomain(name) {
            return Err(invalid());
        }
        Ok(ServiceAccountRef { namespace: namespace.to_owned(), name: name.to_owned() })
    }
}

impl TenantContext {
    /// Context with the conventional namespace and Secret names; `git_base_url` is the URL the tenant
    /// repositories are served under (`http://host/git`), the tenant's is `<git_base_url>/<slug>.git`.
    pub fn new(slug: &str, tenant_name: &str, git_base_url: &str) -> TenantContext {
        TenantContext {
            slug: slug.to_owned(),
            tenant_name: tenant_name.to_owned(),
            namespace: format!("mc-{slug}"),
            git_url: format!("{}/{slug}.git", git_base_url.trim_end_matches('/')),
            git_secret: TENANT_GIT_SECRET.to_owned(),
            webhook_secret: TENANT_WEBHOOK_SECRET.to_owned(),
            sops_secret: TENANT_SOPS_SECRET.to_owned(),
            interval: "10m".to_owned(),
            order_service: None,
        }
    }
}

/// One rendered file: path relative to the tenant directory, and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name (`namespace.yaml`).
    pub name: String,
    /// YAML text.
    pub content: String,
}

/// Render a YAML string scalar: a JSON string is a valid YAML double-quoted scalar, so any text (quotes,
/// newlines, `: `, `#`) stays one value and cannot add keys or documents.
fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned())
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = crate::templates::base_environment();
        env.add_filter("q", quote);
        for (name, source) in TENANT_FILES.iter().chain([&README, &TENANTS_KUSTOMIZATION, &COMMIT_MESSAGE]) {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "invalid embedded template");
            }
        }
        env
    })
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Render the tenant's directory (`flux/tenants/<slug>/`). Values that are not DNS labels (slug, namespace,
/// Secret names) are refused; free text is quoted. Every file is parsed back as YAML before it is returned.
pub fn render_tenant(ctx: &TenantContext) -> Result<Vec<RenderedFile>, GitError> {
    if ctx.slug == PLATFORM_REPO {
        return Err(GitError::InvalidInput(format!("tenant slug {PLATFORM_REPO:?} is reserved")));
    }
    for (what, value) in [
        ("tenant slug", &ctx.slug),
        ("namespace", &ctx.namespace),
        ("secret name", &ctx.git_secret),
        ("secret name", &ctx.webhook_secret),
        ("secret name", &ctx.sops_secret),
    ] {
        if !is_dns_label(value) {
            return Err(GitError::InvalidInput(format!("invalid {what} {value:?}")));
        }
    }
    let interval_ok = ctx.interval.len() <= 8
        && ctx.interval.ends_with(['s', 'm', 'h'])
        && ctx.interval[..ctx.interval.len() - 1].bytes().all(|b| b.is_ascii_digit());
    if !interval_ok || ctx.interval.len() < 2 {
        return Err(GitError::InvalidInput(format!("invalid interval {:?}", ctx.interval)));
    }
    let mut files = Vec::with_capacity(TENANT_FILES.len());
    for (name, _) in TENANT_FILES {
        let content = env().get_template(name)?.render(ctx)?;
        check_yaml(name, &content)?;
        files.push(RenderedFile { name: name.to_owned(), content });
    }
    Ok(files)
}

/// Every document parses and is a mapping.
fn check_yaml(name: &str, text: &str) -> Result<(), GitError> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| GitError::InvalidInput(format!("rendered {name} is not valid YAML: {e}")))?;
    if docs.iter().any(|d| !d.is_object() && !d.is_null()) {
        return Err(GitError::InvalidInput(format!("rendered {name} holds a document that is not a mapping")));
    }
    Ok(())
}

/// The text of `flux/tenants/kustomization.yaml` for these tenant directories.
pub fn render_tenants_kustomization(tenants: &[String]) -> Result<String, GitError> {
    let mut tenants = tenants.to_vec();
    tenants.sort();
    tenants.dedup();
    if let Some(bad) = tenants.iter().find(|t| !is_dns_label(t)) {
        return Err(GitError::InvalidInput(format!("invalid tenant directory {bad:?}")));
    }
    let text = env().get_template(TENANTS_KUSTOMIZATION.0)?.render(minijinja::context! { tenants })?;
    check_yaml(TENANTS_KUSTOMIZATION.0, &text)?;
    Ok(text)
}

/// What [`Repos::add_tenant_to_platform`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformCommit {
    /// One commit on main added or updated the tenant's directory.
    Committed {
        /// The new main (hex).
        commit: String,
    },
    /// Main already held exactly these files: nothing was committed.
    Unchanged {
        /// Main (hex).
        commit: String,
    },
}

impl Repos {
    /// Path of the platform repository, `<root>/platform.git`.
    pub fn platform_path(&self) -> std::path::PathBuf {
        self.path(PLATFORM_REPO)
    }

    /// Create the platform repository if it does not exist: a bare repository whose first commit on `main`
    /// holds `README.md` and an empty `flux/tenants/kustomization.yaml`. Idempotent; returns main.
    pub fn init_platform(&self, author: &Signature) -> Result<String, GitError> {
        // Serialised with every other writer of the platform repository in this process (start-up sync and
        // registrations may both create it).
        let _guard = self.platform_lock().lock().unwrap_or_else(|p| p.into_inner());
        let path = self.platform_path();
        if path.exists() {
            let repo = Repository::open_bare(&path)?;
            if let Some(main) = ref_target(&repo, MAIN_REF)? {
                return Ok(main.to_string());
            }
        }
        std::fs::create_dir_all(self.root())?;
        let tmp = self.root().join(format!(".init-{PLATFORM_REPO}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = (|| {
            let mut opts = RepositoryInitOptions::new();
            opts.bare(true).no_reinit(true).mkpath(false).external_template(false).initial_head("main");
            let repo = Repository::init_opts(&tmp, &opts)?;
            let mut config = repo.config()?;
            config.set_bool("http.receivepack", false)?;
            config.set_bool("http.uploadpack", true)?;
            let readme = env().get_template(README.0)?.render(minijinja::context! {})?;
            let kustomization = render_tenants_kustomization(&[])?;
            let mut updates = TreeUpdateBuilder::new();
            updates.upsert("README.md", repo.blob(readme.as_bytes())?, FileMode::Blob);
            updates.upsert(
                format!("{TENANTS_DIR}/kustomization.yaml"),
                repo.blob(kustomization.as_bytes())?,
                FileMode::Blob,
            );
            let empty = repo.find_tree(repo.treebuilder(None)?.write()?)?;
            let tree = repo.find_tree(updates.create_updated(&repo, &empty)?)?;
            let sig = git2::Signature::now(&author.name, &author.email)?;
            let commit = repo.commit(None, &sig, &sig, "Initialise platform repository\n", &tree, &[])?;
            repo.reference(MAIN_REF, commit, false, "max-cloud: init")?;
            drop((tree, empty));
            drop(repo);
            if path.exists() {
                // An empty leftover (no main): replace it.
                std::fs::remove_dir_all(&path)?;
            }
            std::fs::rename(&tmp, &path)?;
            Ok::<_, GitError>(commit.to_string())
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Write the tenant's rendered directory `flux/tenants/<slug>/` and the updated
    /// `flux/tenants/kustomization.yaml` in one commit on the platform repository's `main`. Files of the
    /// directory that are not in `files` are removed. When main already holds exactly this content nothing
    /// is committed ([`PlatformCommit::Unchanged`]). Serialised with other writers of the platform
    /// repository in this process; `main` moves by compare-and-swap (retried when another process won).
    pub fn add_tenant_to_platform(
        &self,
        ctx: &TenantContext,
        files: &[RenderedFile],
        author: &Signature,
    ) -> Result<PlatformCommit, GitError> {
        if !is_dns_label(&ctx.slug) || ctx.slug == PLATFORM_REPO {
            return Err(GitError::InvalidInput(format!("invalid tenant slug {:?}", ctx.slug)));
        }
        for f in files {
            if !f.name.ends_with(".yaml") || f.name.contains('/') || f.name.starts_with('.') {
                return Err(GitError::InvalidInput(format!("invalid tenant file name {:?}", f.name)));
            }
        }
        let _guard = self.platform_lock().lock().unwrap_or_else(|p| p.into_inner());
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_add_tenant(ctx, files, author) {
                Err(GitError::Conflict(_)) if attempts < 5 => continue,
                other => return other,
            }
        }
    }

    fn try_add_tenant(
        &self,
        ctx: &TenantContext,
        files: &[RenderedFile],
        author: &Signature,
    ) -> Result<PlatformCommit, GitError> {
        let repo = self.open(PLATFORM_REPO)?;
        let main = ref_target(&repo, MAIN_REF)?.ok_or_else(|| GitError::NotFound("main of platform".into()))?;
        let parent = repo.find_commit(main)?;
        let parent_tree = parent.tree()?;
        let dir = format!("{TENANTS_DIR}/{}", ctx.slug);

        let mut updates = TreeUpdateBuilder::new();
        // Files of an earlier rendering that this one no longer has.
        let mut existed = false;
        if let Ok(entry) = parent_tree.get_path(std::path::Path::new(&dir)) {
            if entry.kind() == Some(ObjectType::Tree) {
                existed = true;
                for old in repo.find_tree(entry.id())?.iter() {
                    let name = old.name().unwrap_or_default().to_owned();
                    if !files.iter().any(|f| f.name == name) {
                        updates.remove(format!("{dir}/{name}"));
                    }
                }
            }
        }
        for f in files {
            updates.upsert(format!("{dir}/{}", f.name), repo.blob(f.content.as_bytes())?, FileMode::Blob);
        }
        let mut tenants = tenant_dirs(&repo, &parent_tree)?;
        tenants.push(ctx.slug.clone());
        let kustomization = render_tenants_kustomization(&tenants)?;
        updates.upsert(
            format!("{TENANTS_DIR}/kustomization.yaml"),
            repo.blob(kustomization.as_bytes())?,
            FileMode::Blob,
        );
        let tree_id = updates.create_updated(&repo, &parent_tree)?;
        if tree_id == parent_tree.id() {
            return Ok(PlatformCommit::Unchanged { commit: main.to_string() });
        }
        #[derive(Serialize)]
        struct MessageContext<'a> {
            action: &'a str,
            #[serde(flatten)]
            ctx: &'a TenantContext,
        }
        let action = if existed { "Update" } else { "Add" };
        let message = env().get_template(COMMIT_MESSAGE.0)?.render(MessageContext { action, ctx })?;
        let tree = repo.find_tree(tree_id)?;
        let sig = git2::Signature::now(&author.name, &author.email)?;
        let commit = repo.commit(None, &sig, &sig, &message, &tree, &[&parent])?;
        repo.reference_matching(MAIN_REF, commit, true, main, "max-cloud: tenant")
            .map_err(|err| conflict_on_race(err, "main of platform"))?;
        Ok(PlatformCommit::Committed { commit: commit.to_string() })
    }
}

/// Names of the tenant directories under `flux/tenants` in `tree`.
fn tenant_dirs(repo: &Repository, tree: &git2::Tree<'_>) -> Result<Vec<String>, GitError> {
    let Ok(entry) = tree.get_path(std::path::Path::new(TENANTS_DIR)) else {
        return Ok(Vec::new());
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(Vec::new());
    }
    Ok(repo
        .find_tree(entry.id())?
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .filter_map(|e| e.name().map(str::to_owned))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_display_names_stay_one_quoted_value() {
        let ctx = TenantContext::new("acme", "Evil\"\n  injected: true\n---\nkind: Secret", "http://h/git");
        let files = render_tenant(&ctx).unwrap();
        let ns = &files.iter().find(|f| f.name == "namespace.yaml").unwrap().content;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(ns).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["metadata"]["annotations"]["maxcloud.dev/display-name"], ctx.tenant_name.as_str());
        assert!(docs[0]["metadata"].get("injected").is_none());
    }

    #[test]
    fn reserved_and_invalid_slugs_are_refused() {
        assert!(render_tenant(&TenantContext::new("platform", "P", "http://h/git")).is_err());
        assert!(render_tenant(&TenantContext::new("Bad Slug", "P", "http://h/git")).is_err());
    }

    #[test]
    fn the_order_service_gets_exactly_the_three_flux_secrets_when_it_creates_them() {
        let rbac = |ctx: &TenantContext| -> Vec<serde_json::Value> {
            let files = render_tenant(ctx).unwrap();
            serde_saphyr::from_multiple(&files.iter().find(|f| f.name == "rbac.yaml").unwrap().content).unwrap()
        };
        let mut ctx = TenantContext::new("acme", "Acme", "http://h/git");
        let tenant = rbac(&ctx);
        assert_eq!(tenant.len(), 3, "ServiceAccount, Role and RoleBinding of the tenant only");
        // The tenant's identity manages its maxcloud.dev kinds and its own Secrets (the SOPS files Flux decrypts).
        let groups: Vec<&str> =
            tenant[1]["rules"].as_array().unwrap().iter().map(|r| r["apiGroups"][0].as_str().unwrap()).collect();
        assert_eq!(groups, ["maxcloud.dev", ""]);
        assert_eq!(tenant[1]["rules"][1]["resources"], serde_json::json!(["secrets"]));
        ctx.order_service = Some(ServiceAccountRef::parse("maxcloud-system/mc-maxcloud-server").unwrap());
        let docs = rbac(&ctx);
        assert_eq!(docs.len(), 5);
        let role = &docs[3];
        assert_eq!((role["kind"].as_str(), role["metadata"]["namespace"].as_str()), (Some("Role"), Some("mc-acme")));
        assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["create"]));
        assert_eq!(
            role["rules"][1]["resourceNames"],
            serde_json::json!(["maxcloud-git-token", "maxcloud-webhook-token", "maxcloud-sops-age"])
        );
        assert_eq!(role["rules"][1]["verbs"], serde_json::json!(["get", "update"]));
        assert_eq!(
            docs[4]["subjects"][0],
            serde_json::json!({"kind": "ServiceAccount", "name": "mc-maxcloud-server", "namespace": "maxcloud-system"})
        );
        for bad in ["", "x", "/x", "x/", "Upper/x", "a/b/c", "a b/c", "ns/-x"] {
            assert!(ServiceAccountRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tenants_kustomization_is_sorted_and_empty_is_valid() {
        let text = render_tenants_kustomization(&["b".into(), "a".into(), "b".into()]).unwrap();
        assert!(text.contains("resources:\n  - a\n  - b\n"), "{text}");
        let empty = render_tenants_kustomization(&[]).unwrap();
        assert!(empty.contains("resources: []"), "{empty}");
    }
}
