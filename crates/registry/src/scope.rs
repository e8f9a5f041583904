//! The `scope` parameter of a token request (`docs/content/spec/auth/scope.md`):
//!
//! ```text
//! scope          := resourcescope [ ' ' resourcescope ]*
//! resourcescope  := resourcetype ":" resourcename ":" action [ ',' action ]*
//! resourcetype   := resourcetypevalue [ '(' resourcetypevalue ')' ]     resourcetypevalue := [a-z0-9]+
//! resourcename   := [ hostname '/' ] component [ '/' component ]*
//! action         := [a-z]*
//! ```
//!
//! The resource name may hold one `:` (a host's port), so a scope is split at its first `:` (the type has none)
//! and its last (actions have none). Parsing is strict: a malformed scope is an error (400 naming `scope`), not
//! silently granted nothing. Actions are limited to what Distribution checks (`pull`, `push`, `delete`, `*`).

use crate::names::check_repository;

/// The actions a scope may ask for.
pub const ACTIONS: &[&str] = &["pull", "push", "delete", "*"];
/// Most scopes one request may carry.
pub const MAX_SCOPES: usize = 32;

/// One parsed resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository` or `registry`.
    pub resource_type: String,
    /// `plugin` in `repository(plugin)`.
    pub class: Option<String>,
    /// `acme/web`, `catalog`.
    pub name: String,
    /// Requested actions, in order, without duplicates.
    pub actions: Vec<String>,
}

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {scope:?}: {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: String,
}

fn err(scope: &str, reason: impl Into<String>) -> ScopeError {
    ScopeError { scope: scope.chars().take(200).collect(), reason: reason.into() }
}

fn type_value(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// A hostname of the grammar: components of letters, digits and inner dashes joined by dots, an optional port.
fn hostname(text: &str) -> bool {
    let (host, port) = match text.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    let component = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    host.split('.').all(component) && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Parses one `resourcescope`.
pub fn parse_scope(text: &str) -> Result<Scope, ScopeError> {
    let (kind, rest) = text.split_once(':').ok_or_else(|| err(text, "expected type:name:actions"))?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(|| err(text, "expected type:name:actions"))?;
    let (resource_type, class) = match kind.split_once('(') {
        Some((t, c)) => {
            let c = c.strip_suffix(')').ok_or_else(|| err(text, "resource class must be closed by ')'"))?;
            (t, Some(c))
        }
        None => (kind, None),
    };
    if !type_value(resource_type) || class.is_some_and(|c| !type_value(c)) {
        return Err(err(text, "resource type must be lowercase letters and digits, e.g. repository"));
    }
    if !matches!(resource_type, "repository" | "registry") {
        return Err(err(text, format!("unknown resource type {resource_type:?}: expected repository or registry")));
    }
    if name.is_empty() {
        return Err(err(text, "resource name must not be empty"));
    }
    if resource_type == "repository" {
        // An optional leading hostname (with a port, or a dot, as in references) before the path components.
        let path = match name.split_once('/') {
            Some((first, path)) if (first.contains('.') || first.contains(':')) && hostname(first) => path,
            _ => name,
        };
        if name.contains(':') && path == name {
            return Err(err(text, "resource name: a ':' may only appear in a hostname's port"));
        }
        check_repository(path).map_err(|reason| err(text, format!("resource name: {reason}")))?;
    } else if !type_value(name) {
        return Err(err(text, "registry resource name must be lowercase letters and digits, e.g. catalog"));
    }
    let mut wanted: Vec<String> = Vec::new();
    for action in actions.split(',') {
        if !ACTIONS.contains(&action) {
            return Err(err(text, format!("unknown action {action:?}: expected pull, push, delete or *")));
        }
        if !wanted.iter().any(|a| a == action) {
            wanted.push(action.to_string());
        }
    }
    Ok(Scope {
        resource_type: resource_type.to_string(),
        class: class.map(str::to_string),
        name: name.to_string(),
        actions: wanted,
    })
}

/// Parses every `scope` query parameter; each may hold several space-separated scopes. No parameter (a login
/// check, `docker login`) is no scope.
pub fn parse_scopes<'a>(params: impl IntoIterator<Item = &'a str>) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes = Vec::new();
    for param in params {
        if param.trim().is_empty() {
            return Err(err(param, "empty scope"));
        }
        for part in param.split(' ').filter(|p| !p.is_empty()) {
            scopes.push(parse_scope(part)?);
            if scopes.len() > MAX_SCOPES {
                return Err(err(part, format!("at most {MAX_SCOPES} scopes per request")));
            }
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str, c: Option<&str>, n: &str, a: &[&str]) -> Scope {
        Scope {
            resource_type: t.into(),
            class: c.map(Into::into),
            name: n.into(),
            actions: a.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn parses_the_spec_examples() {
        assert_eq!(
            parse_scope("repository:acme/web:pull,push"),
            Ok(s("repository", None, "acme/web", &["pull", "push"]))
        );
        assert_eq!(
            parse_scope("repository(plugin):acme/p:pull"),
            Ok(s("repository", Some("plugin"), "acme/p", &["pull"]))
        );
        assert_eq!(parse_scope("registry:catalog:*"), Ok(s("registry", None, "catalog", &["*"])));
        assert_eq!(
            parse_scope("repository:reg.example:5000/acme/web:push,pull,push"),
            Ok(s("repository", None, "reg.example:5000/acme/web", &["push", "pull"]))
        );
        let all = parse_scopes(["repository:acme/a:pull repository:acme/b:push", "registry:catalog:*"]).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(parse_scopes(Vec::<&str>::new()), Ok(vec![]));
    }

    #[test]
    fn refuses_malformed_scopes() {
        for bad in [
            "repository",
            "repository:acme/web",
            "Repository:acme/web:pull",
            "image:acme/web:pull",
            "repository(plugin:acme/web:pull",
            "repository::pull",
            "repository:Acme/Web:pull",
            "repository:acme/web:pull,fly",
            "repository:acme/web:",
            "repository:acme/web:PULL",
            "repository:acme:web:pull",
            "registry:cata/log:*",
        ] {
            let e = parse_scope(bad).unwrap_err();
            assert_eq!(e.scope, bad);
        }
        assert!(parse_scopes(["  "]).is_err());
        let many = vec!["repository:acme/a:pull"; MAX_SCOPES + 1];
        assert!(parse_scopes(many).is_err());
    }
}
