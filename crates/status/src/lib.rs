//! The status aggregator (DESIGN.md §5): kube-rs watches over the catalog's composite resources in the
//! cluster, the service state derived from them (`derive`), recorded in the store (resource status and URL;
//! merged orders move to `ready` or `failed`) and announced as [`Event`]s for the live event stream.
//!
//! Not yet here (issue 4, next steps): the composed-resource tree per XR, Flux `Kustomization`s for the
//! `applied` state, pods for metering, and reports back to Git.

pub mod aggregator;
pub mod derive;

pub use aggregator::{Aggregator, Error, Event, CATALOG_GROUP};
pub use derive::observe;
