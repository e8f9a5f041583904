//! The status aggregator (DESIGN.md §5): kube-rs watches over the catalog's composite resources in the
//! cluster, the service state derived from them (`derive`), recorded in the store (resource status and URL;
//! merged orders move to `ready` or `failed`) and announced as [`Event`]s for the live event stream.
//!
//! With [`Aggregator::with_applied`] it also watches the tenants' Flux `Kustomization`s: a merged order is
//! `applied` once the revision Flux last applied contains its merge commit.
//!
//! It keeps a [`Tree`] per XR (what its composition made, with conditions) for the API to show.
//!
//! With [`Aggregator::with_metering`] it also watches the pods of the tenants' services and records each pod's
//! requests and running interval (`metering`), from which the store adds up per-service usage.

pub mod aggregator;
pub mod derive;
pub mod metering;
pub mod tree;

pub use aggregator::{Aggregator, Ancestry, Event, CATALOG_GROUP, TENANT_KUSTOMIZATION};
pub use derive::observe;
pub use tree::{Node, ObjKey, Summary, Tree};
