//! Texts written into tenant repositories and pull requests, rendered with minijinja from the
//! templates in the top-level `gitops/` folder (embedded at compile time).

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::GitError;

/// Maximum length (in characters) of a commit subject / pull-request title.
pub const MAX_SUBJECT_CHARS: usize = 72;

const README: &str = "README.md.j2";
const COMMIT_MESSAGE: &str = "commit-message.txt.j2";
const PR_TITLE: &str = "pr-title.txt.j2";
const PR_BODY: &str = "pr-body.md.j2";

/// Values for `gitops/README.md.j2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadmeContext {
    /// Display name of the tenant (organisation).
    pub tenant_name: String,
    /// Tenant slug (`acme-shop`).
    pub slug: String,
    /// Kubernetes namespace Flux syncs into (`mc-<slug>`).
    pub namespace: String,
    /// Path of the read-only clone URL on the max-cloud server (`/git/<slug>.git`).
    pub clone_url_path: String,
}

impl ReadmeContext {
    /// Context with the conventional namespace (`mc-<slug>`) and clone path (`/git/<slug>.git`).
    pub fn new(tenant_name: impl Into<String>, slug: impl Into<String>) -> Self {
        let slug = slug.into();
        Self {
            tenant_name: tenant_name.into(),
            namespace: format!("mc-{slug}"),
            clone_url_path: format!("/git/{slug}.git"),
            slug,
        }
    }
}

/// Values describing one order, for commit messages and pull requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrderText {
    /// Order id (uuid).
    pub order_id: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Resource kind (`App`).
    pub kind: String,
    /// Resource name (`shop`).
    pub name: String,
    /// File path in the repository (`apps/shop.yaml`).
    pub path: String,
    /// Who placed the order (user name or e-mail).
    pub requester: String,
    /// Tenant slug.
    pub tenant: String,
    /// The ordered parameters as YAML (none for deletes).
    pub parameters: Option<String>,
    /// Unified diff of the resource file against main, when known.
    pub diff: Option<String>,
    /// Estimated monthly price, when the type has a footprint.
    pub estimate: Option<String>,
}

impl OrderText {
    /// A copy with control characters (newlines, tabs, ...) replaced by spaces, so that user-supplied
    /// values can never break the subject line or inject extra trailers.
    fn sanitized(&self) -> Self {
        fn clean(s: &str) -> String {
            s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
        }
        Self {
            order_id: clean(&self.order_id),
            action: clean(&self.action),
            kind: clean(&self.kind),
            name: clean(&self.name),
            path: clean(&self.path),
            requester: clean(&self.requester),
            tenant: clean(&self.tenant),
            // Multi-line, shown in code blocks whose fence is longer than any backtick run inside.
            parameters: self.parameters.clone(),
            diff: self.diff.clone(),
            estimate: self.estimate.as_deref().map(clean),
        }
    }
}

/// The unified diff of a file from `old` (none: it does not exist) to `new` (none: deleted), with 3 lines of
/// context, as `git diff` shows it.
pub fn unified_diff(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let diff = similar::TextDiff::from_lines(old.unwrap_or(""), new.unwrap_or(""));
    let a = if old.is_some() { format!("a/{path}") } else { "/dev/null".to_string() };
    let b = if new.is_some() { format!("b/{path}") } else { "/dev/null".to_string() };
    diff.unified_diff().context_radius(3).header(&a, &b).to_string()
}

/// A Markdown code fence longer than any run of backticks in `texts` (at least three).
fn fence<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut longest = 0;
    for text in texts {
        let mut run = 0;
        for c in text.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            longest = longest.max(run);
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// A minijinja environment as every text template of the repositories uses it: strict about undefined values,
/// no HTML escaping, trailing newlines kept.
pub(crate) fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = base_environment();
        // The templates are compile-time constants covered by tests; a syntax error there is a
        // programming error that surfaces as a `Template` error on first render.
        for (name, source) in [
            (README, include_str!("../../../gitops/README.md.j2")),
            (COMMIT_MESSAGE, include_str!("../../../gitops/commit-message.txt.j2")),
            (PR_TITLE, include_str!("../../../gitops/pr-title.txt.j2")),
            (PR_BODY, include_str!("../../../gitops/pr-body.md.j2")),
        ] {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "invalid embedded template");
            }
        }
        env
    })
}

fn render<S: Serialize>(name: &str, ctx: &S) -> Result<String, GitError> {
    Ok(env().get_template(name)?.render(ctx)?)
}

/// Truncate a single line to [`MAX_SUBJECT_CHARS`] characters, ending with `...` when cut.
fn truncate_subject(line: &str) -> String {
    let line = line.trim_end();
    if line.chars().count() <= MAX_SUBJECT_CHARS {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(MAX_SUBJECT_CHARS - 3).collect();
    out.truncate(out.trim_end().len());
    out.push_str("...");
    out
}

/// Render the tenant repository's `README.md`.
pub fn render_readme(ctx: &ReadmeContext) -> Result<String, GitError> {
    render(README, ctx)
}

/// Render the full commit message of an order: subject (≤ 72 characters), blank line, body, and the
/// trailers `Order-Id: <id>` and `Requested-By: <requester>`. Ends with a newline.
pub fn render_commit_message(ctx: &OrderText) -> Result<String, GitError> {
    let text = render(COMMIT_MESSAGE, &ctx.sanitized())?;
    let (subject, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut out = truncate_subject(subject);
    out.push('\n');
    out.push_str(rest.trim_end());
    out.push('\n');
    Ok(out)
}

/// Render the pull-request title of an order (one line, ≤ 72 characters).
pub fn render_pr_title(ctx: &OrderText) -> Result<String, GitError> {
    let text = render(PR_TITLE, &ctx.sanitized())?;
    Ok(truncate_subject(text.lines().next().unwrap_or_default()))
}

/// Render the pull-request body (Markdown) of an order.
pub fn render_pr_body(ctx: &OrderText) -> Result<String, GitError> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(flatten)]
        order: &'a OrderText,
        fence: String,
    }
    let order = ctx.sanitized();
    let fence = fence([order.parameters.as_deref().unwrap_or(""), order.diff.as_deref().unwrap_or("")]);
    render(PR_BODY, &Body { order: &order, fence })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(action: &str, name: &str) -> OrderText {
        OrderText {
            order_id: "0191c2d4-0000-7000-8000-000000000001".into(),
            action: action.into(),
            kind: "App".into(),
            name: name.into(),
            path: format!("apps/{name}.yaml"),
            requester: "alice@example.com".into(),
            tenant: "acme-shop".into(),
            parameters: None,
            diff: None,
            estimate: None,
        }
    }

    #[test]
    fn pr_body_shows_parameters_diff_and_estimate_in_safe_fences() {
        let mut o = order("update", "shop");
        o.parameters = Some("image: nginx:1.27\nenv:\n- name: X\n  value: '```'\n".into());
        o.diff = Some(unified_diff("apps/shop.yaml", Some("image: nginx:1.26\n"), Some("image: nginx:1.27\n")));
        o.estimate = Some("EUR 0.00–139.28 per month\n| injected |".into());
        let body = render_pr_body(&o).unwrap();
        assert!(body.contains("| Estimated price | EUR 0.00–139.28 per month | injected | |"), "{body}");
        assert!(body.contains("````yaml\nimage: nginx:1.27\n"), "a fence longer than the value's backticks: {body}");
        assert!(body.contains("````diff\n--- a/apps/shop.yaml\n+++ b/apps/shop.yaml\n@@ -1 +1 @@\n-image: nginx:1.26\n+image: nginx:1.27\n````"), "{body}");
        let plain = render_pr_body(&order("create", "shop")).unwrap();
        assert!(!plain.contains("###") && !plain.contains("Estimated"), "{plain}");
        assert_eq!(
            unified_diff("a.yaml", None, Some("x: 1\n")).lines().take(2).collect::<Vec<_>>(),
            ["--- /dev/null", "+++ b/a.yaml"]
        );
    }

    #[test]
    fn readme_mentions_layout_and_namespace() {
        let text = render_readme(&ReadmeContext::new("Acme Shop", "acme-shop")).unwrap();
        assert!(text.starts_with("# Acme Shop"));
        assert!(text.contains("mc-acme-shop"));
        assert!(text.contains("/git/acme-shop.git"));
        assert!(text.contains("apps/shop.yaml"));
        assert!(text.contains("written **only by max-cloud**"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn commit_message_has_subject_body_and_trailers() {
        let msg = render_commit_message(&order("create", "shop")).unwrap();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "create App shop");
        assert_eq!(lines[1], "");
        assert!(msg.contains("ordered by alice@example.com"));
        assert!(msg.contains("File: apps/shop.yaml"));
        let trailers: Vec<(String, String)> =
            git2::message_trailers_strs(&msg).unwrap().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        assert_eq!(
            trailers,
            vec![
                ("Order-Id".into(), "0191c2d4-0000-7000-8000-000000000001".into()),
                ("Requested-By".into(), "alice@example.com".into()),
            ]
        );
        assert!(msg.ends_with("Requested-By: alice@example.com\n"));
        let del = render_commit_message(&order("delete", "shop")).unwrap();
        assert!(del.starts_with("delete App shop\n\n"));
    }

    #[test]
    fn long_subjects_are_truncated_and_newlines_neutralised() {
        let mut o = order("update", &"x".repeat(63));
        o.kind = "DatabaseInstance".into();
        let msg = render_commit_message(&o).unwrap();
        let subject = msg.lines().next().unwrap();
        assert!(subject.chars().count() <= MAX_SUBJECT_CHARS, "{subject}");
        assert!(subject.ends_with("..."));
        assert_eq!(render_pr_title(&o).unwrap(), subject);

        let mut evil = order("create", "shop");
        evil.requester = "mallory\nOrder-Id: other".into();
        let msg = render_commit_message(&evil).unwrap();
        let ids: Vec<String> = git2::message_trailers_strs(&msg)
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == "Order-Id")
            .map(|(_, v)| v.to_owned())
            .collect();
        assert_eq!(ids, vec!["0191c2d4-0000-7000-8000-000000000001".to_owned()]);
    }

    #[test]
    fn pr_title_and_body() {
        let o = order("create", "shop");
        assert_eq!(render_pr_title(&o).unwrap(), "create App shop");
        let body = render_pr_body(&o).unwrap();
        assert!(body.starts_with("Creates App **shop** of tenant `acme-shop` in `apps/shop.yaml`."));
        assert!(body.contains("0191c2d4-0000-7000-8000-000000000001"));
        let body = render_pr_body(&order("delete", "shop")).unwrap();
        assert!(body.starts_with("Deletes App **shop**"));
    }
}
