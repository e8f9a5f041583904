//! Repository and tag names as the distribution reference grammar defines them
//! (github.com/distribution/reference, `regexp.go`):
//!
//! ```text
//! path-component := [a-z0-9]+ ( ( [._] | __ | [-]+ ) [a-z0-9]+ )*
//! name           := path-component ( '/' path-component )*        at most 255 characters
//! tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```

/// Longest repository name (including the tenant prefix).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 128;

/// Why `component` is no path component, or `None` if it is one.
fn component_problem(component: &str) -> Option<String> {
    if component.is_empty() {
        return Some("empty path component (two slashes, or one at an end)".into());
    }
    if let Some(c) = component.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-')) {
        return Some(format!("{c:?} is not allowed: use lowercase letters, digits and the separators . _ __ -"));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return Some(format!("{component:?} must start and end with a lowercase letter or digit"));
    }
    // Each run of separators is ".", "_", "__" or any number of "-".
    let mut run = String::new();
    for c in component.chars().chain(std::iter::once('a')) {
        if alnum(c) {
            let ok = run.is_empty() || matches!(run.as_str(), "." | "_" | "__") || run.chars().all(|c| c == '-');
            if !ok {
                return Some(format!("{run:?} in {component:?} is no separator: use one of . _ __ or dashes"));
            }
            run.clear();
        } else {
            run.push(c);
        }
    }
    None
}

/// Checks a repository name (`acme/web`, `acme/tools/builder`); the error says what is wrong.
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("at most {MAX_NAME_LEN} characters, got {}", name.len()));
    }
    match name.split('/').find_map(component_problem) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// Checks a tag (`1.2.3`, `latest`).
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("must not be empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("at most {MAX_TAG_LEN} characters, got {}", tag.len()));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if !tag.starts_with(word) {
        return Err(format!("{tag:?} must start with a letter, digit or underscore"));
    }
    if let Some(c) = tag.chars().find(|&c| !(word(c) || c == '.' || c == '-')) {
        return Err(format!("{c:?} is not allowed: use letters, digits, '_', '.' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_reference_grammar() {
        for ok in ["acme/web", "acme/a", "acme/tools/builder", "a-b/c__d", "acme/x.y_z", "acme/a---b", "0/9"] {
            assert_eq!(check_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Acme/web",
            "acme//web",
            "acme/web/",
            "/acme",
            "acme/-web",
            "acme/web-",
            "acme/a..b",
            "acme/a___b",
            "acme/a._b",
            "acme/wéb",
            "acme/web:1",
            "acme/we b",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        assert!(check_repository(&format!("acme/{}", "a".repeat(251))).is_err());
        assert!(check_repository(&format!("acme/{}", "a".repeat(250))).is_ok());
    }

    #[test]
    fn tags_follow_the_reference_grammar() {
        for ok in ["latest", "1.2.3", "_x", "V1-rc.2", &"a".repeat(128)] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a+b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
