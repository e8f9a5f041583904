//! Revisions, traffic and custom domains of an `App`, as the typed services facade handles them.
//!
//! Pure rules, no I/O: revision and tag names, the traffic a deploy leaves behind (`--no-traffic`, `--tag`),
//! checking a traffic split against the revisions a service has, and custom domain names with their ownership
//! challenge (a TXT record). The XRD (`xrds/app.yaml`) stays the last word: whatever these rules let through is
//! still validated against its schema and CEL rules when ordered.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest revision name and tag (the XRD's `maxLength`).
pub const REVISION_MAX_LEN: usize = 30;

/// Knative names a revision `<app>-<revision>` and serves a tag at `<tag>-<app>.<domain>`: both must stay DNS labels.
const LABEL_MAX_LEN: usize = 63;

/// The DNS name holding a domain's ownership challenge: `_maxcloud-challenge.<domain>`.
pub const CHALLENGE_PREFIX: &str = "_maxcloud-challenge";

/// What the challenge TXT record holds before the token: `maxcloud-verify=<token>`.
pub const CHALLENGE_VALUE_PREFIX: &str = "maxcloud-verify=";

/// A problem with one field of a request; `field` is the caller's name for it (`targets[1].percent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

impl Refusal {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A DNS label as the XRD allows for revision names and tags: lower-case letters, digits and '-', starting with
/// a letter and not ending with '-', at most 30 characters.
fn check_short_label(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.len() > REVISION_MAX_LEN {
        return Err(format!("{what} {s:?} is longer than {REVISION_MAX_LEN} characters"));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{what} {s:?} must start with a lower-case letter"));
    }
    if s.ends_with('-') {
        return Err(format!("{what} {s:?} must not end with '-'"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!("{what} {s:?} may only hold lower-case letters, digits and '-' (not {c:?})"));
    }
    Ok(())
}

/// Checks a revision name for the App `app`: a short DNS label such that `<app>-<revision>` is a DNS label too.
pub fn check_revision_name(app: &str, revision: &str) -> Result<(), String> {
    check_short_label("revision", revision)?;
    if app.len() + 1 + revision.len() > LABEL_MAX_LEN {
        return Err(format!(
            "revision {revision:?} is too long for service {app:?}: {app}-{revision} exceeds {LABEL_MAX_LEN} characters"
        ));
    }
    Ok(())
}

/// Checks a traffic tag for the App `app`: a short DNS label such that `<tag>-<app>` is a DNS label too.
pub fn check_tag(app: &str, tag: &str) -> Result<(), String> {
    check_short_label("tag", tag)?;
    if app.len() + 1 + tag.len() > LABEL_MAX_LEN {
        return Err(format!(
            "tag {tag:?} is too long for service {app:?}: {tag}-{app} exceeds {LABEL_MAX_LEN} characters"
        ));
    }
    Ok(())
}

/// The next generated revision name: `r<N>` with N one above the highest `r<k>` in use (`r1` for the first).
pub fn next_revision_name<'a>(existing: impl IntoIterator<Item = &'a str>) -> String {
    let existing: BTreeSet<&str> = existing.into_iter().collect();
    let highest =
        existing.iter().filter_map(|n| n.strip_prefix('r')).filter_map(|d| d.parse::<u64>().ok()).max().unwrap_or(0);
    let mut n = highest + 1;
    while existing.contains(format!("r{n}").as_str()) {
        n += 1;
    }
    format!("r{n}")
}

/// One traffic target: a named revision or the latest ready one, its share, and an optional tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `None`: whatever revision is the latest ready one.
    pub revision: Option<String>,
    pub percent: u8,
    pub tag: Option<String>,
}

impl Target {
    /// 100% to the latest ready revision, untagged.
    pub fn latest() -> Target {
        Target { revision: None, percent: 100, tag: None }
    }

    /// The target as the App's `spec.traffic` holds it.
    pub fn to_spec(&self) -> Value {
        let mut t = match &self.revision {
            Some(r) => json!({"revision": r, "percent": self.percent}),
            None => json!({"latestRevision": true, "percent": self.percent}),
        };
        if let Some(tag) = &self.tag {
            t["tag"] = json!(tag);
        }
        t
    }

    /// Reads one element of `spec.traffic`; `None` when it is not of the XRD's shape.
    pub fn from_spec(v: &Value) -> Option<Target> {
        let percent = u8::try_from(v.get("percent")?.as_u64()?).ok()?;
        let tag = v.get("tag").and_then(Value::as_str).map(str::to_string);
        let revision = match v.get("revision").and_then(Value::as_str) {
            Some(r) => Some(r.to_string()),
            None if v.get("latestRevision").and_then(Value::as_bool) == Some(true) => None,
            None => return None,
        };
        Some(Target { revision, percent, tag })
    }
}

/// The App's traffic as written in its spec (`spec.traffic`); empty means everything to the latest revision.
pub fn spec_traffic(spec: &Value) -> Vec<Target> {
    spec.get("traffic")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Target::from_spec).collect())
        .unwrap_or_default()
}

/// The traffic as it is in effect: an empty list is 100% to the latest revision.
pub fn effective_traffic(spec: &Value) -> Vec<Target> {
    let t = spec_traffic(spec);
    if t.is_empty() {
        vec![Target::latest()]
    } else {
        t
    }
}

/// `traffic` serialised for the App's spec.
pub fn traffic_spec(targets: &[Target]) -> Value {
    Value::Array(targets.iter().map(Target::to_spec).collect())
}

/// Checks a traffic split for the App `app`: every named revision in `known`, shares adding up to 100, at most one
/// target following the latest revision, tags valid and unique, no revision named twice without a tag to tell
/// them apart. Fields are named `targets[i].…`.
pub fn check_traffic(app: &str, targets: &[Target], known: &BTreeSet<String>) -> Result<(), Refusal> {
    if targets.is_empty() {
        return Err(Refusal::new("targets", "give at least one target (or to_latest)"));
    }
    if targets.len() > 10 {
        return Err(Refusal::new("targets", format!("at most 10 targets, got {}", targets.len())));
    }
    let mut tags = BTreeSet::new();
    let mut untagged = BTreeSet::new();
    let mut latest = 0;
    for (i, t) in targets.iter().enumerate() {
        if t.percent > 100 {
            return Err(Refusal::new(
                format!("targets[{i}].percent"),
                format!("{} is not a share from 0 to 100", t.percent),
            ));
        }
        match &t.revision {
            Some(r) => {
                check_revision_name(app, r).map_err(|m| Refusal::new(format!("targets[{i}].revision"), m))?;
                if !known.contains(r) {
                    let list = if known.is_empty() {
                        "it has none".to_string()
                    } else {
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    };
                    return Err(Refusal::new(
                        format!("targets[{i}].revision"),
                        format!("service {app:?} has no revision {r:?} (revisions: {list})"),
                    ));
                }
            }
            None => latest += 1,
        }
        match &t.tag {
            Some(tag) => {
                check_tag(app, tag).map_err(|m| Refusal::new(format!("targets[{i}].tag"), m))?;
                if !tags.insert(tag.clone()) {
                    return Err(Refusal::new(format!("targets[{i}].tag"), format!("tag {tag:?} is given twice")));
                }
            }
            None => {
                let key = t.revision.clone().unwrap_or_default();
                if !untagged.insert(key) {
                    let what =
                        t.revision.as_deref().map_or("the latest revision".to_string(), |r| format!("revision {r:?}"));
                    return Err(Refusal::new(format!("targets[{i}]"), format!("{what} is named twice without a tag")));
                }
            }
        }
    }
    if latest > 1 {
        return Err(Refusal::new("targets", "at most one target may follow the latest revision"));
    }
    let sum: u32 = targets.iter().map(|t| u32::from(t.percent)).sum();
    if sum != 100 {
        return Err(Refusal::new("targets", format!("the shares add up to {sum}, not 100")));
    }
    Ok(())
}

/// The traffic after deploying revision `new` when traffic was `current` (as in the spec; empty: all to latest)
/// and the revision in service was `previous`:
///
/// * normally the new revision takes all traffic: 100% to the latest revision, tags kept at 0%;
/// * with `no_traffic` the shares stay where they are: a target following the latest revision is pinned to
///   `previous` (there must be one), and the new revision gets 0%;
/// * with `tag` the new revision gets that tag (its own URL), replacing the tag wherever it was.
pub fn traffic_after_deploy(
    current: &[Target],
    previous: Option<&str>,
    new: &str,
    no_traffic: bool,
    tag: Option<&str>,
) -> Result<Vec<Target>, Refusal> {
    let mut out: Vec<Target> = Vec::new();
    if no_traffic {
        let current = if current.is_empty() { vec![Target::latest()] } else { current.to_vec() };
        for t in current {
            let revision = match t.revision {
                Some(r) => Some(r),
                None => Some(
                    previous
                        .ok_or_else(|| {
                            Refusal::new(
                                "no_traffic",
                                "the revision serving now has no name to keep the traffic on: deploy once with traffic \
                                 (a named revision) first",
                            )
                        })?
                        .to_string(),
                ),
            };
            out.push(Target { revision, ..t });
        }
    } else {
        out.push(Target::latest());
        // Tags stay reachable at 0%.
        for t in current.iter().filter(|t| t.tag.is_some() && t.revision.is_some()) {
            out.push(Target { percent: 0, ..t.clone() });
        }
    }
    if let Some(tag) = tag {
        for t in out.iter_mut() {
            if t.tag.as_deref() == Some(tag) {
                t.tag = None;
            }
        }
        // A pinned target that lost its tag and has no share is dropped; a share is never dropped.
        out.retain(|t| t.tag.is_some() || t.percent > 0 || t.revision.is_none());
        out.push(Target { revision: Some(new.to_string()), percent: 0, tag: Some(tag.to_string()) });
    }
    // Merge untagged duplicates of one revision (e.g. pinned twice) into one share.
    let mut merged: Vec<Target> = Vec::new();
    for t in out {
        if t.tag.is_none() {
            if let Some(m) = merged.iter_mut().find(|m| m.tag.is_none() && m.revision == t.revision) {
                m.percent += t.percent;
                continue;
            }
        }
        merged.push(t);
    }
    Ok(merged)
}

/// A custom domain name as the App's `domains` takes it: lower-case ASCII (IDNs in their `xn--` form), at least two
/// labels, each 1–63 characters of letters, digits and '-' not at either end, at most 233 in all (so that the
/// challenge record `_maxcloud-challenge.<domain>` is a DNS name too), a top-level label
/// starting with a letter, no wildcards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DomainName(String);

impl DomainName {
    /// 253 (a DNS name) less what the challenge record puts before it.
    pub const MAX_LEN: usize = 253 - CHALLENGE_PREFIX.len() - 1;

    pub fn parse(s: &str) -> Result<DomainName, String> {
        if s.is_empty() {
            return Err("domain must not be empty".into());
        }
        if !s.is_ascii() {
            return Err(format!(
                "{s:?} is not an ASCII name: give an internationalised domain in its xn-- (punycode) form"
            ));
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "{s:?} is longer than {} characters (its {CHALLENGE_PREFIX} record must stay a valid DNS name)",
                Self::MAX_LEN
            ));
        }
        if s.contains('*') {
            return Err(format!("{s:?}: wildcard domains are not supported; add each host name"));
        }
        if s.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("{s:?} must be lower case ({:?})", s.to_ascii_lowercase()));
        }
        if s.ends_with('.') {
            return Err(format!("{s:?}: give the name without the trailing dot"));
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(format!("{s:?} is not a fully qualified domain name (e.g. shop.example.com)"));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(format!("{s:?} has an empty label"));
            }
            if label.len() > 63 {
                return Err(format!("{s:?}: label {label:?} is longer than 63 characters"));
            }
            if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
                return Err(format!("{s:?}: {c:?} is not allowed (letters, digits, '-' and '.')"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("{s:?}: label {label:?} must not start or end with '-'"));
            }
        }
        let tld = labels[labels.len() - 1];
        if !tld.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(format!("{s:?}: the top-level label {tld:?} must start with a letter"));
        }
        if s.len() < 4 {
            return Err(format!("{s:?} is shorter than 4 characters"));
        }
        Ok(DomainName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the TXT record that proves ownership: `_maxcloud-challenge.<domain>`.
    pub fn challenge_name(&self) -> String {
        format!("{CHALLENGE_PREFIX}.{}", self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The TXT record value proving ownership with `token`: `maxcloud-verify=<token>`.
pub fn challenge_value(token: &str) -> String {
    format!("{CHALLENGE_VALUE_PREFIX}{token}")
}

/// The App's custom domains (`spec.domains`).
pub fn spec_domains(spec: &Value) -> Vec<String> {
    spec.get("domains")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn rev(r: &str, percent: u8, tag: Option<&str>) -> Target {
        Target { revision: Some(r.into()), percent, tag: tag.map(str::to_string) }
    }

    #[test]
    fn revision_names_and_tags() {
        assert!(check_revision_name("shop", "r1").is_ok());
        assert!(check_revision_name("shop", "blue-green").is_ok());
        assert!(check_revision_name("shop", "1r").unwrap_err().contains("lower-case letter"));
        assert!(check_revision_name("shop", "Rev").unwrap_err().contains("lower-case letter"));
        assert!(check_revision_name("shop", "r_1").unwrap_err().contains("'_'"));
        assert!(check_revision_name("shop", "r-").unwrap_err().contains("end with"));
        assert!(check_revision_name("shop", &"r".repeat(31)).unwrap_err().contains("longer than 30"));
        let long_app = "a".repeat(40);
        assert!(check_revision_name(&long_app, &"r".repeat(25)).unwrap_err().contains("exceeds 63"));
        assert!(check_tag("shop", "canary").is_ok());
        assert!(check_tag("shop", "Canary").is_err());
    }

    #[test]
    fn generated_names_count_up_past_any_in_use() {
        assert_eq!(next_revision_name([]), "r1");
        assert_eq!(next_revision_name(["r1", "r2"]), "r3");
        assert_eq!(next_revision_name(["blue", "r7", "r2"]), "r8");
        assert_eq!(next_revision_name(["green"]), "r1");
    }

    #[test]
    fn traffic_splits_are_checked_field_by_field() {
        let k = known(&["r1", "r2"]);
        assert_eq!(check_traffic("shop", &[rev("r1", 90, None), rev("r2", 10, None)], &k), Ok(()));
        assert_eq!(
            check_traffic("shop", &[rev("r1", 90, None), rev("r3", 10, None)], &k).unwrap_err().field,
            "targets[1].revision"
        );
        let e = check_traffic("shop", &[rev("r1", 90, None), rev("r2", 20, None)], &k).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("targets", "the shares add up to 110, not 100"));
        let e = check_traffic("shop", &[rev("r1", 100, Some("a")), rev("r2", 0, Some("a"))], &k).unwrap_err();
        assert_eq!(e.field, "targets[1].tag");
        let e = check_traffic("shop", &[rev("r1", 100, Some("Bad"))], &k).unwrap_err();
        assert_eq!(e.field, "targets[0].tag");
        let e = check_traffic("shop", &[Target::latest(), Target { percent: 0, ..Target::latest() }], &k).unwrap_err();
        assert_eq!(e.field, "targets[1]");
        assert_eq!(check_traffic("shop", &[], &k).unwrap_err().field, "targets");
        let e = check_traffic("shop", &[rev("r1", 101, None)], &k).unwrap_err();
        assert_eq!(e.field, "targets[0].percent");
    }

    #[test]
    fn deploys_move_traffic_or_pin_it() {
        // A normal deploy: everything to the latest, the canary tag kept at 0%.
        let current = vec![rev("r1", 100, None), rev("r2", 0, Some("canary"))];
        assert_eq!(
            traffic_after_deploy(&current, Some("r2"), "r3", false, None).unwrap(),
            vec![Target::latest(), rev("r2", 0, Some("canary"))]
        );
        // --no-traffic --tag canary: shares pinned, the latest-following share pinned to the previous revision,
        // the tag moved to the new revision.
        let current = vec![Target::latest()];
        assert_eq!(
            traffic_after_deploy(&current, Some("r1"), "r2", true, Some("canary")).unwrap(),
            vec![rev("r1", 100, None), rev("r2", 0, Some("canary"))]
        );
        let current = vec![rev("r1", 100, None), rev("r2", 0, Some("canary"))];
        assert_eq!(
            traffic_after_deploy(&current, Some("r2"), "r3", true, Some("canary")).unwrap(),
            vec![rev("r1", 100, None), rev("r3", 0, Some("canary"))]
        );
        // Nothing to pin to.
        assert_eq!(traffic_after_deploy(&[], None, "r1", true, None).unwrap_err().field, "no_traffic");
        // Pinning merges shares of one revision.
        let current = vec![rev("r1", 50, None), Target { percent: 50, ..Target::latest() }];
        assert_eq!(traffic_after_deploy(&current, Some("r1"), "r2", true, None).unwrap(), vec![rev("r1", 100, None)]);
    }

    #[test]
    fn domain_names() {
        assert_eq!(DomainName::parse("shop.example.com").unwrap().as_str(), "shop.example.com");
        assert!(DomainName::parse("xn--bcher-kva.example").is_ok());
        assert!(DomainName::parse("Shop.example.com").unwrap_err().contains("lower case"));
        assert!(DomainName::parse("bücher.example").unwrap_err().contains("punycode"));
        assert!(DomainName::parse("*.example.com").unwrap_err().contains("wildcard"));
        assert!(DomainName::parse("localhost").unwrap_err().contains("fully qualified"));
        assert!(DomainName::parse(&format!("{}.example.com", "a".repeat(64))).unwrap_err().contains("longer than 63"));
        let long = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(DomainName::parse(&long).unwrap_err().contains("longer than 233"));
        let fits = format!("{}.{}.{}.com", "a".repeat(63), "b".repeat(63), "c".repeat(101));
        assert_eq!(fits.len(), 233);
        assert!(DomainName::parse(&fits).unwrap_err().contains("longer than 63"), "labels still count");
        assert!(DomainName::parse("a..example").unwrap_err().contains("empty label"));
        assert!(DomainName::parse("-a.example").unwrap_err().contains("start or end"));
        assert!(DomainName::parse("shop.example.123").unwrap_err().contains("top-level"));
        assert!(DomainName::parse("shop.example.com.").unwrap_err().contains("trailing dot"));
        assert!(DomainName::parse("shop_1.example").unwrap_err().contains("'_'"));
        assert_eq!(DomainName::parse("a.example").unwrap().challenge_name(), "_maxcloud-challenge.a.example");
        assert_eq!(challenge_value("abc"), "maxcloud-verify=abc");
    }
}
