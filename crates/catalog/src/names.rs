//! Domain types for names that cross the system boundary: parsed once, passed as types.
//!
//! * [`ResourceName`]: the name of an ordered resource (a DNS-1123 label).
//! * [`TenantSlug`]: the short name of a tenant; its namespace is `mc-<slug>`.
//! * [`ImageRef`]: a container image reference (distribution reference grammar).

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that failed to parse; the message says what was parsed and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct NameError {
    /// What kind of name was parsed ("resource name", "tenant slug", "image reference").
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

impl NameError {
    fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        NameError { what, value: value.to_owned(), reason: reason.into() }
    }
}

/// Checks a DNS-1123 label of at most `max` characters, returning the reason on failure.
fn check_dns_label(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    let len = s.chars().count();
    if len > max {
        return Err(format!("must be at most {max} characters long (is {len})"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!("must consist of lowercase letters, digits and '-' only (found {c:?})"));
    }
    if s.starts_with('-') {
        return Err("must start with a lowercase letter or digit".into());
    }
    if s.ends_with('-') {
        return Err("must end with a lowercase letter or digit".into());
    }
    Ok(())
}

/// Implements `as_str`, Display, FromStr, Serialize and Deserialize (as a string) for a
/// newtype with a `parse` constructor.
macro_rules! string_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The name of an ordered resource: a DNS-1123 label (lowercase letters, digits and '-',
/// starting and ending with a letter or digit, 1 to 63 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceName(String);

impl ResourceName {
    /// Maximum length of a resource name.
    pub const MAX_LEN: usize = 63;

    /// Parses a resource name: a DNS-1123 label that also starts with a letter (DNS-1035), because
    /// composed objects such as a Knative Service's Kubernetes Service take the same name and
    /// Kubernetes requires Service names to start with a letter.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_dns_label(s, Self::MAX_LEN).map_err(|r| NameError::new("resource name", s, r))?;
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(NameError::new("resource name", s, "must start with a lowercase letter".to_string()));
        }
        Ok(ResourceName(s.to_owned()))
    }
}
string_newtype!(ResourceName);

/// The short name of a tenant: a DNS-1123 label of at most 40 characters. The tenant's
/// Kubernetes namespace is `mc-<slug>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Maximum length of a tenant slug.
    pub const MAX_LEN: usize = 40;

    /// Slugs no organisation gets: `platform` names the platform repository (`platform.git`) next to the
    /// tenant repositories.
    pub const RESERVED: &'static [&'static str] = &["platform"];

    /// Parses a tenant slug.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_dns_label(s, Self::MAX_LEN).map_err(|r| NameError::new("tenant slug", s, r))?;
        Ok(TenantSlug(s.to_owned()))
    }

    /// Derives a slug from an organisation name: transliterates German umlauts and common
    /// accented Latin letters ("Müller & Söhne GmbH" -> "mueller-soehne-gmbh"), replaces every
    /// other run of non-alphanumerics by one '-', and trims to 40 characters. Returns `None`
    /// when nothing usable is left.
    pub fn from_org_name(name: &str) -> Option<TenantSlug> {
        let mut out = String::with_capacity(name.len());
        for c in name.chars() {
            let lower: String = c.to_lowercase().collect();
            for c in lower.chars() {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    out.push(c);
                } else if let Some(t) = transliterate(c) {
                    out.push_str(t);
                } else if !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
        let trimmed = out.trim_matches('-');
        let cut: String = trimmed.chars().take(Self::MAX_LEN).collect();
        let slug = cut.trim_end_matches('-');
        if Self::RESERVED.contains(&slug) {
            return TenantSlug::parse(&format!("{slug}-org")).ok();
        }
        TenantSlug::parse(slug).ok()
    }

    /// The slug with a numeric suffix for disambiguation ("acme-shop" -> "acme-shop-2"),
    /// shortening the base so the result stays within 40 characters.
    pub fn with_suffix(&self, n: u32) -> TenantSlug {
        let suffix = format!("-{n}");
        let keep = Self::MAX_LEN.saturating_sub(suffix.len());
        let base = self.0[..self.0.len().min(keep)].trim_end_matches('-');
        TenantSlug(format!("{base}{suffix}"))
    }

    /// The tenant's Kubernetes namespace, `mc-<slug>`.
    pub fn namespace(&self) -> String {
        format!("mc-{}", self.0)
    }
}
string_newtype!(TenantSlug);

/// ASCII spelling of a lowercase non-ASCII letter, if it has a common one.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ä' | 'æ' => "ae",
        'ö' | 'œ' => "oe",
        'ü' => "ue",
        'ß' => "ss",
        'à' | 'á' | 'â' | 'ã' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' | 'ľ' | 'ĺ' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ø' | 'ō' | 'ő' => "o",
        'ř' | 'ŕ' => "r",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ť' | 'ţ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'þ' => "th",
        'ð' => "d",
        _ => return None,
    })
}

// Distribution reference grammar pieces (github.com/distribution/reference), restricted so
// that a first path component is a registry domain only if it contains '.' or ':' or is
// `localhost` (as `docker pull` decides). IPv6 registry addresses are not supported.
const DOMAIN_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
/// A first path component that cannot be mistaken for a domain (no '.').
const FIRST_PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*";
const TAG: &str = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

fn domain_pattern() -> String {
    let c = DOMAIN_COMPONENT;
    format!(r"(?:localhost(?::[0-9]+)?|{c}(?:\.{c})+(?::[0-9]+)?|{c}:[0-9]+)")
}

/// The anchored regular expression for a whole image reference, as used for `spec.image` in
/// `xrds/app.yaml` (RE2- and ECMA-compatible; tests check that the two are identical).
pub fn image_ref_pattern() -> String {
    let p = PATH_COMPONENT;
    let q = FIRST_PATH_COMPONENT;
    format!("^(?:{domain}/{p}(?:/{p})*|{q}(?:/{p})+|{p})(?::{TAG})?(?:@{DIGEST})?$", domain = domain_pattern())
}

fn anchored(p: &str) -> Regex {
    // The patterns are constants of this module; a failure is a programming error caught by
    // every test run.
    Regex::new(&format!("^(?:{p})$")).expect("valid built-in regex")
}

static IMAGE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(&image_ref_pattern()).expect("valid built-in regex"));
static DOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(&domain_pattern()));
static PATH_COMPONENT_RE: LazyLock<Regex> = LazyLock::new(|| anchored(PATH_COMPONENT));
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| anchored(TAG));
static DIGEST_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DIGEST));

/// A container image reference, `[domain[:port]/]path[:tag][@digest]`, e.g. `nginx`,
/// `ghcr.io/acme/shop:1.2.3` or `registry.example.com:5000/a/b@sha256:<64 hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    text: String,
    domain: Option<(usize, usize)>,
    path: (usize, usize),
    tag: Option<(usize, usize)>,
    digest: Option<(usize, usize)>,
}

impl ImageRef {
    /// Maximum length of an image reference.
    pub const MAX_LEN: usize = 512;

    /// Parses an image reference.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let err = |reason: String| NameError::new("image reference", s, reason);
        if s.is_empty() {
            return Err(err("must not be empty".into()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(err(format!("must be at most {} characters long", Self::MAX_LEN)));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(err("must not contain whitespace".into()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !DIGEST_RE.is_match(d) {
                    return Err(err(format!(
                        "invalid digest {d:?} (expected algorithm:hex, e.g. sha256:<64 hex digits>)"
                    )));
                }
                (n, Some((n.len() + 1, s.len())))
            }
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let t = &name_tag[at + 1..];
                if !TAG_RE.is_match(t) {
                    return Err(err(format!(
                        "invalid tag {t:?} (up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')"
                    )));
                }
                (&name_tag[..at], Some((at + 1, name_tag.len())))
            }
            None => (name_tag, None),
        };
        let (domain, path_start) = match name.split_once('/') {
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
                if !DOMAIN_RE.is_match(first) {
                    return Err(err(format!("invalid registry domain {first:?}")));
                }
                (Some((0, first.len())), first.len() + 1)
            }
            _ => (None, 0),
        };
        let path = &name[path_start..];
        if path.is_empty() {
            return Err(err("repository path must not be empty".into()));
        }
        for component in path.split('/') {
            if !PATH_COMPONENT_RE.is_match(component) {
                let reason = if component.chars().any(|c| c.is_ascii_uppercase())
                    && PATH_COMPONENT_RE.is_match(&component.to_ascii_lowercase())
                {
                    format!("repository path must be lowercase ({component:?})")
                } else {
                    format!(
                        "invalid repository path component {component:?} (lowercase letters and digits, separated by '.', '_', '__' or '-')"
                    )
                };
                return Err(err(reason));
            }
        }
        // The component checks above mirror the grammar; the full pattern is the reference.
        if !IMAGE_RE.is_match(s) {
            return Err(err("does not match the image reference grammar".into()));
        }
        Ok(ImageRef { text: s.to_owned(), domain, path: (path_start, name.len()), tag, digest })
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn slice(&self, range: (usize, usize)) -> &str {
        &self.text[range.0..range.1]
    }

    /// The registry domain (with port), if the reference names one.
    pub fn domain(&self) -> Option<&str> {
        self.domain.map(|r| self.slice(r))
    }

    /// The repository path without domain, tag and digest (e.g. `acme/shop`).
    pub fn path(&self) -> &str {
        self.slice(self.path)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.map(|r| self.slice(r))
    }

    /// The digest (`algorithm:hex`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.map(|r| self.slice(r))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ImageRef {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::parse(s)
    }
}

impl AsRef<str> for ImageRef {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        for ok in ["shop", "a", "shop-db-1", "s1", &"a".repeat(63)] {
            assert_eq!(ResourceName::parse(ok).unwrap().as_str(), ok);
        }
        for (bad, reason) in [
            ("", "must not be empty"),
            ("Shop", "lowercase"),
            ("-shop", "start"),
            ("shop-", "end"),
            ("shop_db", "'_'"),
            ("shop.db", "'.'"),
            ("1shop", "start with a lowercase letter"),
            (&"a".repeat(64), "at most 63"),
        ] {
            let e = ResourceName::parse(bad).unwrap_err();
            assert!(e.to_string().contains(reason), "{bad:?}: {e}");
            assert!(e.to_string().starts_with("invalid resource name"), "{e}");
        }
        let n: ResourceName = "shop".parse().unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"shop\"");
        assert_eq!(serde_json::from_str::<ResourceName>("\"shop\"").unwrap(), n);
        assert!(serde_json::from_str::<ResourceName>("\"Shop\"").is_err());
    }

    #[test]
    fn tenant_slugs() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse(&"a".repeat(40)).is_ok());
        assert!(TenantSlug::parse(&"a".repeat(41)).is_err());
        assert!(TenantSlug::parse("Acme").is_err());
        assert_eq!(TenantSlug::parse("acme").unwrap().namespace(), "mc-acme");

        let slug = |s: &str| TenantSlug::from_org_name(s).map(|t| t.to_string());
        assert_eq!(slug("Acme Shop").as_deref(), Some("acme-shop"));
        assert_eq!(slug("Müller & Söhne GmbH").as_deref(), Some("mueller-soehne-gmbh"));
        assert_eq!(slug("  Straße -- 42 ").as_deref(), Some("strasse-42"));
        assert_eq!(slug("Café Résumé").as_deref(), Some("cafe-resume"));
        assert_eq!(slug("ÄÖÜ").as_deref(), Some("aeoeue"));
        assert_eq!(slug("Platform").as_deref(), Some("platform-org"), "reserved for the platform repository");
        assert_eq!(slug("!!!"), None);
        assert_eq!(slug("東京"), None);
        assert_eq!(slug(""), None);
        let long = slug("The Very Long Organisation Name Of Something GmbH").unwrap();
        assert!(long.len() <= 40, "{long}");
        assert!(!long.ends_with('-'), "{long}");
        assert_eq!(long, "the-very-long-organisation-name-of-somet");
        // Truncation that lands on a dash trims it.
        let s = slug(&format!("{} b", "a".repeat(39))).unwrap();
        assert_eq!(s, "a".repeat(39));
    }

    #[test]
    fn tenant_slug_suffix() {
        let s = TenantSlug::parse("acme-shop").unwrap();
        assert_eq!(s.with_suffix(2).as_str(), "acme-shop-2");
        let long = TenantSlug::parse(&"a".repeat(40)).unwrap();
        let l = long.with_suffix(12);
        assert_eq!(l.as_str().len(), 40);
        assert!(l.as_str().ends_with("a-12"));
        let dashy = TenantSlug::parse(&format!("{}-{}", "a".repeat(37), "bb")).unwrap();
        assert_eq!(dashy.with_suffix(7).as_str(), format!("{}-7", "a".repeat(37)));
        assert!(TenantSlug::parse(dashy.with_suffix(u32::MAX).as_str()).is_ok());
    }

    /// Shared with the XRD pattern test in `tests/catalog.rs`.
    pub(crate) const GOOD_IMAGES: &[&str] = &[
        "nginx",
        "nginx:latest",
        "nginx:1.27-alpine",
        "library/nginx",
        "ghcr.io/acme/shop:1.2.3",
        "localhost/app",
        "localhost:5000/app:dev",
        "registry.example.com:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "registry.example.com:5000/a/b:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "my-registry:5000/team/app",
        "Registry.Example.COM/team/app",
        "a__b/c.d-e---f:TAG_1.x",
    ];

    pub(crate) const BAD_IMAGES: &[&str] = &[
        "",
        " nginx",
        "nginx latest",
        "Nginx",
        "ghcr.io/Acme/shop",
        "Acme/shop",
        "nginx:",
        "nginx:-bad",
        "nginx:.bad",
        "nginx:a/b",
        "nginx@sha256:xyz",
        "nginx@sha256:abc123",
        "nginx@",
        "ghcr.io/",
        "/nginx",
        "nginx/",
        "nginx//x",
        "-nginx",
        "nginx-",
        "ng_.inx",
        "exa_mple.com/app",
        "example.com:port/app",
    ];

    #[test]
    fn image_refs() {
        for ok in GOOD_IMAGES {
            let r = ImageRef::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(r.as_str(), *ok);
        }
        for bad in BAD_IMAGES {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}:{}", "a".repeat(10), "t".repeat(129));
        assert!(ImageRef::parse(&long).is_err());

        let r = ImageRef::parse(
            "registry.example.com:5000/a/b:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert_eq!(r.domain(), Some("registry.example.com:5000"));
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!((r.domain(), r.path(), r.tag(), r.digest()), (None, "nginx", None, None));
        let r = ImageRef::parse("localhost:5000").unwrap();
        assert_eq!((r.path(), r.tag()), ("localhost", Some("5000")));

        let msg = |s: &str| ImageRef::parse(s).unwrap_err().to_string();
        assert!(msg("ghcr.io/Acme/shop").contains("must be lowercase"));
        assert!(msg("nginx:-x").contains("invalid tag"));
        assert!(msg("nginx@sha256:abc").contains("invalid digest"));
        assert!(msg("a b").contains("whitespace"));
        assert!(msg("").contains("must not be empty"));

        let r: ImageRef = serde_json::from_str("\"nginx:1\"").unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), "nginx:1");
    }

    #[test]
    fn image_pattern_agrees_with_parser() {
        let re = Regex::new(&image_ref_pattern()).unwrap();
        for s in GOOD_IMAGES {
            assert!(re.is_match(s), "{s}");
        }
        for s in BAD_IMAGES {
            assert!(!re.is_match(s), "{s}");
        }
    }
}
