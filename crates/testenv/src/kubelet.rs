//! The node side of the pod log API, emulated: no kubelet can run here (no container runtime), but the
//! kube-apiserver's `pods/{name}/log` is a proxy to the kubelet of the pod's node. [`Kubelet::start`] registers a
//! `Node` whose address and kubelet port point at an HTTPS server on loopback that serves
//! `/containerLogs/{namespace}/{pod}/{container}` as a kubelet does — `tailLines`, `timestamps` (RFC 3339 with
//! nanoseconds, then a space) and `follow` (the answer stays open and new lines are streamed) — from lines the
//! test writes with [`Kubelet::write`]. Everything between the client and this server is the real API server:
//! authentication, RBAC on `pods/log`, the pod and node lookups and the proxying.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::broadcast;

use crate::{ControlPlane, Error};

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// One container's log: (time, line) pairs and a channel announcing new ones to followers.
struct Log {
    lines: Vec<(String, String)>,
    new: broadcast::Sender<(String, String)>,
}

type Logs = Arc<Mutex<HashMap<(String, String, String), Log>>>;

/// An emulated node with a kubelet serving container logs; the server stops when this is dropped.
pub struct Kubelet {
    pub node: String,
    pub addr: SocketAddr,
    logs: Logs,
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    /// Starts the kubelet's HTTPS endpoint on loopback (a self-signed certificate made with `openssl` in `dir`: the
    /// API server does not verify kubelet certificates without `--kubelet-certificate-authority`) and registers
    /// the `Node` `name` pointing at it.
    pub async fn start(cp: &ControlPlane, name: &str, dir: &Path) -> Result<Kubelet, Error> {
        let (cert, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()?;
        if !out.status.success() {
            return Err(Error::Start(format!("openssl: {}", String::from_utf8_lossy(&out.stderr))));
        }
        let tls = tls_config(&cert, &key)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let logs: Logs = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let server = tokio::spawn(serve(listener, tls, logs.clone(), requests.clone()));

        let client = cp.client().await?;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client);
        let node =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}))
                .map_err(|e| Error::Kube(e.to_string()))?;
        nodes.create(&PostParams::default(), &node).await.map_err(|e| Error::Kube(format!("create node: {e}")))?;
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": addr.port()}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "emulated"}],
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(|e| Error::Kube(format!("node status: {e}")))?;
        Ok(Kubelet { node: name.to_string(), addr, logs, requests, server })
    }

    /// Appends a line to a container's log, as the container would print it; followers get it at once.
    pub fn write(&self, namespace: &str, pod: &str, container: &str, line: &str) {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 time");
        let mut logs = self.logs.lock().expect("logs");
        let log = logs
            .entry((namespace.to_string(), pod.to_string(), container.to_string()))
            .or_insert_with(|| Log { lines: Vec::new(), new: broadcast::channel(1024).0 });
        log.lines.push((time.clone(), line.to_string()));
        let _ = log.new.send((time, line.to_string()));
    }

    /// The request paths (with queries) the API server proxied here, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = |e: String| Error::Start(format!("kubelet TLS: {e}"));
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls(e.to_string()))?;
    Ok(Arc::new(config))
}

async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    logs: Logs,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, logs, requests) = (acceptor.clone(), logs.clone(), requests.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |req| {
                let (logs, requests) = (logs.clone(), requests.clone());
                async move { Ok::<_, Infallible>(answer(req, &logs, &requests)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(req: Request<hyper::body::Incoming>, logs: &Logs, requests: &Mutex<Vec<String>>) -> Response<Body> {
    let uri = req.uri().clone();
    requests.lock().expect("requests").push(uri.to_string());
    let parts: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let ["containerLogs", namespace, pod, container] = parts.as_slice() else {
        return plain(StatusCode::NOT_FOUND, "not found".into());
    };
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let follow = query.get("follow").is_some_and(|v| v == "true");
    let timestamps = query.get("timestamps").is_some_and(|v| v == "true");
    let tail: Option<usize> = query.get("tailLines").and_then(|v| v.parse().ok());
    let key = (namespace.to_string(), pod.to_string(), container.to_string());
    let (past, new) = {
        let mut all = logs.lock().expect("logs");
        let log = all.entry(key).or_insert_with(|| Log { lines: Vec::new(), new: broadcast::channel(1024).0 });
        let skip = tail.map(|n| log.lines.len().saturating_sub(n)).unwrap_or(0);
        let past: String = log.lines[skip..].iter().map(|entry| render(entry, timestamps)).collect();
        (past, log.new.subscribe())
    };
    if !follow {
        return plain(StatusCode::OK, past);
    }
    // Followed: what is there, then every new line until the client goes away (or the emulator stops).
    let stream = futures::stream::unfold((Some(past), new), move |(past, mut rx)| async move {
        if let Some(past) = past {
            return Some((Ok(Frame::data(Bytes::from(past))), (None, rx)));
        }
        loop {
            match rx.recv().await {
                Ok(entry) => return Some((Ok(Frame::data(Bytes::from(render(&entry, timestamps)))), (None, rx))),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Response::new(StreamBody::new(stream).boxed())
}

/// A line as the kubelet prints it: `<RFC 3339 time> <line>` with timestamps, else the line.
fn render((time, line): &(String, String), timestamps: bool) -> String {
    if timestamps {
        format!("{time} {line}\n")
    } else {
        format!("{line}\n")
    }
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = status;
    response
}
