//! Per-tenant quotas, checked when an order is placed: how many services and databases an organisation has, and
//! what its resources may request at their maximum scale — instances, CPU, memory (each resource's footprint,
//! `maxcloud.dev/price-*` of its XRD, × its maximum instances). Resources count from the moment their order is
//! accepted until their delete order is (`deleting`).
//!
//! The limits come from the platform's quota file (`--quotas`): a `default` for every organisation and, per
//! organisation slug, overrides field by field. A field left out is unlimited. An order is refused only when it
//! raises a total beyond its limit: shrinking or deleting always works, also above a lowered limit.

use std::collections::HashMap;
use std::path::Path;

use maxcloud_catalog::{quantity, Catalog};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One organisation's limits; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub services: Option<i64>,
    pub databases: Option<i64>,
    /// Σ maximum instances.
    pub max_scale: Option<i64>,
    /// Σ CPU requested at maximum scale, milli-vCPU.
    pub cpu_milli: Option<i64>,
    /// Σ memory requested at maximum scale, bytes.
    pub memory_bytes: Option<i64>,
}

impl Limits {
    /// `other`'s fields where it has them, else these.
    fn overridden_by(&self, other: &Limits) -> Limits {
        Limits {
            services: other.services.or(self.services),
            databases: other.databases.or(self.databases),
            max_scale: other.max_scale.or(self.max_scale),
            cpu_milli: other.cpu_milli.or(self.cpu_milli),
            memory_bytes: other.memory_bytes.or(self.memory_bytes),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        *self == Limits::default()
    }
}

/// What an organisation's resources add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub services: i64,
    pub databases: i64,
    pub max_scale: i64,
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

/// The platform's quota file, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quotas {
    default: Limits,
    tenants: HashMap<String, Limits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    services: Option<i64>,
    databases: Option<i64>,
    max_scale: Option<i64>,
    /// A Kubernetes quantity of vCPUs, e.g. `16` or `1500m`.
    cpu: Option<String>,
    /// A Kubernetes quantity of bytes, e.g. `32Gi`.
    memory: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotasFile {
    #[serde(default)]
    default: Option<LimitsFile>,
    #[serde(default)]
    tenants: HashMap<String, LimitsFile>,
}

fn limits(file: LimitsFile, at: &str) -> Result<Limits, String> {
    let count = |v: Option<i64>, field: &str| match v {
        Some(n) if n < 0 => Err(format!("{at}.{field}: must be 0 or more, got {n}")),
        other => Ok(other),
    };
    let amount = |v: Option<String>, field: &str, scale: i32| -> Result<Option<i64>, String> {
        v.map(|text| {
            quantity::scaled(text.trim(), scale)
                .map_err(|e| format!("{at}.{field}: {text:?} is not a Kubernetes quantity: {e}"))
                .and_then(|n| if n < 0 { Err(format!("{at}.{field}: must not be negative")) } else { Ok(n) })
        })
        .transpose()
    };
    Ok(Limits {
        services: count(file.services, "services")?,
        databases: count(file.databases, "databases")?,
        max_scale: count(file.max_scale, "max_scale")?,
        cpu_milli: amount(file.cpu, "cpu", 3)?,
        memory_bytes: amount(file.memory, "memory", 0)?,
    })
}

impl Quotas {
    /// Parses the quota file (YAML or JSON): `default:` and `tenants: {<slug>: …}`, each with any of `services`,
    /// `databases`, `max_scale`, `cpu`, `memory`. Errors name the field.
    pub fn parse(text: &str) -> Result<Quotas, String> {
        let file: QuotasFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let default = file.default.map(|d| limits(d, "default")).transpose()?.unwrap_or_default();
        let mut tenants = HashMap::new();
        for (slug, l) in file.tenants {
            if maxcloud_catalog::TenantSlug::parse(&slug).is_err() {
                return Err(format!("tenants.{slug}: not an organisation slug"));
            }
            let parsed = limits(l, &format!("tenants.{slug}"))?;
            tenants.insert(slug, parsed);
        }
        Ok(Quotas { default, tenants })
    }

    pub fn load(path: &Path) -> Result<Quotas, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("quota file {}: {e}", path.display()))?;
        Quotas::parse(&text).map_err(|e| format!("quota file {}: {e}", path.display()))
    }

    /// The limits of the organisation `slug`.
    pub fn for_tenant(&self, slug: &str) -> Limits {
        match self.tenants.get(slug) {
            Some(own) => self.default.overridden_by(own),
            None => self.default.clone(),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.default.is_unlimited() && self.tenants.values().all(Limits::is_unlimited)
    }
}

/// How a kind counts: (services, databases). A Workspace composes one App and one Database.
fn counts(kind: &str) -> (i64, i64) {
    match kind {
        "App" => (1, 0),
        "Database" => (0, 1),
        "Workspace" => (1, 1),
        _ => (0, 0),
    }
}

/// Adds one resource (its defaulted spec) to `totals`.
pub fn add(catalog: &Catalog, totals: &mut Totals, kind: &str, spec: &Value) {
    let (services, databases) = counts(kind);
    totals.services += services;
    totals.databases += databases;
    if let Some(f) = catalog.get(kind).and_then(|t| t.footprint(spec)) {
        totals.max_scale += f.max_instances;
        totals.cpu_milli += f.cpu_milli.saturating_mul(f.max_instances);
        totals.memory_bytes += f.memory_bytes.saturating_mul(f.max_instances);
    }
}

/// A limit an order would break: the field to blame (relative to the order's parameters; `name` for counts) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub field: String,
    pub message: String,
}

/// Refuses `after` where it raises a total above `limits` (compared with `before`); `kind` names the fields.
pub fn check(catalog: &Catalog, kind: &str, limits: &Limits, before: &Totals, after: &Totals) -> Result<(), Exceeded> {
    let fields = catalog.get(kind).and_then(|t| t.footprint_fields());
    let field = |pick: fn(&maxcloud_catalog::FootprintFields) -> &String| {
        fields.as_ref().map(|f| pick(f).clone()).unwrap_or_else(|| "name".to_string())
    };
    let gib = |b: i64| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64);
    let vcpu = |m: i64| format!("{} vCPU", m as f64 / 1000.0);
    let rows: [(Option<i64>, i64, i64, String, &str, Box<dyn Fn(i64) -> String>); 5] = [
        (limits.services, before.services, after.services, "name".into(), "services", Box::new(|n| n.to_string())),
        (limits.databases, before.databases, after.databases, "name".into(), "databases", Box::new(|n| n.to_string())),
        (
            limits.max_scale,
            before.max_scale,
            after.max_scale,
            field(|f| &f.max_instances),
            "instances at maximum scale",
            Box::new(|n| n.to_string()),
        ),
        (
            limits.cpu_milli,
            before.cpu_milli,
            after.cpu_milli,
            field(|f| &f.cpu),
            "CPU at maximum scale",
            Box::new(vcpu),
        ),
        (
            limits.memory_bytes,
            before.memory_bytes,
            after.memory_bytes,
            field(|f| &f.memory),
            "memory at maximum scale",
            Box::new(gib),
        ),
    ];
    for (limit, before, after, field, what, show) in rows {
        if let Some(limit) = limit {
            if after > limit && after > before {
                return Err(Exceeded {
                    field,
                    message: format!(
                        "quota exceeded: {what} would be {} with this order, the organisation's limit is {} (in use: {}); \
                         ask the platform team to raise it",
                        show(after),
                        show(limit),
                        show(before)
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_files_override_field_by_field_and_name_bad_fields() {
        let q = Quotas::parse(
            "default: {services: 2, cpu: '4', memory: 8Gi}\ntenants:\n  big: {services: 10, max_scale: 50}\n",
        )
        .unwrap();
        assert_eq!(
            q.for_tenant("small"),
            Limits { services: Some(2), cpu_milli: Some(4000), memory_bytes: Some(8 << 30), ..Limits::default() }
        );
        assert_eq!(q.for_tenant("big").services, Some(10));
        assert_eq!(q.for_tenant("big").max_scale, Some(50));
        assert_eq!(q.for_tenant("big").cpu_milli, Some(4000), "inherited");
        for (text, message) in [
            ("default: {services: -1}", "default.services: must be 0 or more"),
            ("default: {cpu: lots}", "default.cpu: \"lots\" is not a Kubernetes quantity"),
            ("default: {gpus: 1}", "gpus"),
            ("tenants: {Bad_Slug: {services: 1}}", "tenants.Bad_Slug: not an organisation slug"),
        ] {
            let err = Quotas::parse(text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
        assert!(Quotas::parse("{}").unwrap().is_unlimited());
    }
}
