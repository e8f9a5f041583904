//! Container logs of a service (`GET /api/v1/services/{id}/logs`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One line a container of the service printed: the data of an SSE `log` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// When the container printed it (RFC 3339, as the node recorded it), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The revision whose pod printed it (`<service>-<revision>`), if the pod names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub pod: String,
    pub container: String,
    pub line: String,
}
