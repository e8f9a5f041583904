//! What a tenant's user is granted of the scopes it asked for (the spec's "intersected set").
//!
//! A tenant's repositories are `<slug>/<path>`. Members and admins of the tenant may pull and push there (members
//! deploy, so they push the images they deploy); only admins may delete. Nothing is granted on another tenant's
//! names or on names with a hostname, and `registry:catalog:*` never (listing every repository would show the
//! other tenants' names): the server lists a tenant's images itself, filtered to its prefix. `*` asks for every
//! action, so it is answered with the actions the role has, spelled out. What is not granted is left out, as the
//! spec says — an empty `access` list is an answer, not an error.

use crate::scope::Scope;
use crate::token::Access;

/// The caller's role in its organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    fn actions(self) -> &'static [&'static str] {
        match self {
            Role::Admin => &["pull", "push", "delete"],
            Role::Member => &["pull", "push"],
        }
    }
}

/// Whether `name` is one of `slug`'s repositories: `<slug>/<at least one more component>`.
pub fn owns(slug: &str, name: &str) -> bool {
    name.strip_prefix(slug).and_then(|rest| rest.strip_prefix('/')).is_some_and(|rest| !rest.is_empty())
}

/// The granted subset of `scopes` for a user of tenant `slug` with `role`.
pub fn grant(scopes: &[Scope], slug: &str, role: Role) -> Vec<Access> {
    let mut granted: Vec<Access> = Vec::new();
    for scope in scopes {
        if scope.resource_type != "repository" || !owns(slug, &scope.name) {
            continue;
        }
        let allowed = role.actions();
        let actions: Vec<String> = if scope.actions.iter().any(|a| a == "*") {
            allowed.iter().map(|a| a.to_string()).collect()
        } else {
            scope.actions.iter().filter(|a| allowed.contains(&a.as_str())).cloned().collect()
        };
        if actions.is_empty() {
            continue;
        }
        // One entry per resource: a second scope for the same repository adds its actions.
        match granted.iter_mut().find(|g| g.resource_type == scope.resource_type && g.name == scope.name) {
            Some(g) => {
                for a in actions {
                    if !g.actions.contains(&a) {
                        g.actions.push(a);
                    }
                }
            }
            None => {
                granted.push(Access { resource_type: scope.resource_type.clone(), name: scope.name.clone(), actions })
            }
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::parse_scopes;

    fn g(scopes: &[&str], role: Role) -> Vec<(String, Vec<String>)> {
        let scopes = parse_scopes(scopes.iter().copied()).unwrap();
        grant(&scopes, "acme", role).into_iter().map(|a| (a.name, a.actions)).collect()
    }

    fn v(name: &str, actions: &[&str]) -> (String, Vec<String>) {
        (name.to_string(), actions.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn own_repositories_pull_and_push_delete_for_admins_only() {
        assert_eq!(g(&["repository:acme/web:pull,push"], Role::Member), [v("acme/web", &["pull", "push"])]);
        assert_eq!(g(&["repository:acme/web:pull,push,delete"], Role::Member), [v("acme/web", &["pull", "push"])]);
        assert_eq!(g(&["repository:acme/web:delete"], Role::Admin), [v("acme/web", &["delete"])]);
        assert_eq!(g(&["repository:acme/a/b:*"], Role::Admin), [v("acme/a/b", &["pull", "push", "delete"])]);
        assert_eq!(g(&["repository:acme/a/b:*"], Role::Member), [v("acme/a/b", &["pull", "push"])]);
        assert_eq!(
            g(&["repository:acme/web:pull", "repository:acme/web:push"], Role::Member),
            [v("acme/web", &["pull", "push"])]
        );
    }

    #[test]
    fn nothing_elsewhere_and_never_the_catalog() {
        for scope in [
            "repository:globex/web:pull,push",
            "repository:acme:pull",
            "repository:acmex/web:pull",
            "repository:acme-x/web:pull",
            "repository:reg.example:5000/acme/web:pull",
            "registry:catalog:*",
            "repository:acme/web:delete",
        ] {
            assert!(g(&[scope], Role::Member).is_empty(), "{scope}");
        }
        assert!(g(&["registry:catalog:*"], Role::Admin).is_empty());
        // The granted subset of a mixed request.
        assert_eq!(
            g(&["repository:globex/web:pull repository:acme/web:pull registry:catalog:*"], Role::Admin),
            [v("acme/web", &["pull"])]
        );
    }

    #[test]
    fn ownership_is_by_whole_path_component() {
        assert!(owns("acme", "acme/web"));
        assert!(!owns("acme", "acme"));
        assert!(!owns("acme", "acme/"));
        assert!(!owns("acme", "acmeweb/x"));
    }
}
