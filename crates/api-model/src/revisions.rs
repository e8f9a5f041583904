//! Revisions, traffic and custom domains of a service (the typed App facade).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One traffic target: a named revision, or the latest ready revision, with its share and an optional tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficTarget {
    /// Revision name as deployed (`r2`, `blue`); absent with `latest_revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Follow whatever revision is the latest ready one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest_revision: bool,
    /// Share of requests, 0 to 100; the shares add up to 100.
    pub percent: i64,
    /// Gives the target its own URL, `<tag>-<service>.<domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `PUT /api/v1/services/{id}/traffic`: how requests are split from now on (an App update order).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTrafficRequest {
    /// The split; or leave it out and give `to_latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TrafficTarget>>,
    /// Everything to the latest ready revision (tags given in `tags` stay reachable at 0%).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub to_latest: bool,
}

/// A revision of a service: what one deploy created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revision {
    /// The name given at deploy (`r3`, `blue`).
    pub name: String,
    /// The Knative revision in the cluster: `<service>-<name>`.
    pub full_name: String,
    pub image: String,
    /// The order that created it, and that order's state (`accepted` … `ready`, `failed`, …).
    pub order_id: String,
    pub order_state: String,
    pub created_at: String,
    /// Whether this is the service's newest revision (what `latest_revision` targets follow).
    pub latest: bool,
    /// Share of requests it gets as ordered (counting a target that follows the latest revision).
    pub percent: i64,
    /// Tags that address it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Whether traffic rules can name it (its order was not rejected, superseded or failed).
    pub addressable: bool,
}

/// `GET /api/v1/services/{id}/revisions`: the service's revisions, oldest first, and its traffic as ordered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revisions {
    pub service: String,
    /// The newest revision's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<String>,
    pub revisions: Vec<Revision>,
    /// The split as ordered (empty in the spec means 100% to the latest revision, shown as such).
    pub traffic: Vec<TrafficTarget>,
    /// The order that last changed the service.
    pub order_id: String,
    /// What the cluster serves, as its status reports it (absent until a connected cluster reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ServedRevisions>,
}

/// What the cluster serves of a service's revisions (revision names as deployed, without the `<service>-`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServedRevisions {
    /// The newest revision the cluster has created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created: Option<String>,
    /// The newest revision that is ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready: Option<String>,
    /// The split as served, with each tag's URL.
    pub traffic: Vec<ServedTarget>,
}

/// One target as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServedTarget {
    pub revision: String,
    pub percent: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `POST /api/v1/services/{id}/domains`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomainRequest {
    /// Host name, lower case, e.g. `shop.example.com` (IDNs in their `xn--` form; no wildcards).
    pub domain: String,
}

/// The DNS record that proves a domain is yours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DomainVerification {
    /// `TXT`
    #[serde(rename = "type")]
    pub record_type: String,
    /// `_maxcloud-challenge.<domain>`
    pub name: String,
    /// `maxcloud-verify=<token>`
    pub value: String,
}

/// A custom domain of a service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Domain {
    pub domain: String,
    pub service: String,
    /// `pending` (TXT record not seen yet), `verified` (ordered, order on its way) or `active` (on main).
    pub state: String,
    /// The record to create (shown in every state: removing it later does not undo a verification).
    pub verification: DomainVerification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// The order that added the domain to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub created_at: String,
}
