//! The order workflow (DESIGN.md §4).
//!
//! [`OrderService::place`] validates an order against the catalog, stores it (state `accepted`) and wakes
//! the tenant's lane of the [`worker`]; it does no Git work itself. The worker drives stored orders forward
//! — commit on `order/<id>`, record the PR, merge under the merge policy, record the merge — one tenant
//! at a time, so a crash at any step resumes from the store and the repo without losing or duplicating
//! orders, commits or PRs.

mod events;
mod failpoint;
mod forge_lane;
pub mod quota;
mod receiver;
mod secrets;
mod service;
mod webhooks;
mod worker;

pub use events::{Announcement, EventBus};
pub use forge_lane::ForgeSettings;
pub use receiver::FluxReceiver;
pub use secrets::{secret_path, tenant_key, PlaceSecret, SECRET_KIND};
pub use service::{OrderError, OrderService, OrderUpdate, PlaceOrder, Placed};
pub use webhooks::{SetPolicy, WebhookOutcome, WebhookRefused};
pub use worker::{PriceEstimate, WorkerConfig};
