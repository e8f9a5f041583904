//! Test support for the parts of max-cloud that meet a cluster or a Git host: a real Kubernetes control plane
//! (etcd, kube-apiserver, kube-controller-manager), Flux (source-, kustomize- and notification-controller) and a
//! Gitea server, built from their Go modules at the versions pinned in `scripts/versions.env`, started on loopback
//! with free ports and temporary directories, RBAC on, torn down on drop; and a mock of GitHub ([`GitHubMock`]: its
//! REST API, Git over HTTP and webhook deliveries). Used by the cross-crate tests and the aggregator bench.

pub mod controlplane;
pub mod crossplane;
pub mod flux;
pub mod gitea;
pub mod github;
pub mod kubelet;
pub mod loki;
pub mod process;
pub mod registry;
pub mod tools;

pub use controlplane::ControlPlane;
pub use crossplane::Crossplane;
pub use flux::Flux;
pub use gitea::Gitea;
pub use github::GitHubMock;
pub use kubelet::Kubelet;
pub use loki::Loki;
pub use registry::Registry;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tool: {0}")]
    Tool(String),
    #[error("cannot start: {0}")]
    Start(String),
    #[error("kubernetes: {0}")]
    Kube(String),
    #[error("gitea: {0}")]
    Gitea(String),
    #[error("YAML: {0}")]
    Yaml(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
