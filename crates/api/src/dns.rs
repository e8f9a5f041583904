//! Looking up the TXT records that prove a tenant owns a custom domain.
//!
//! A fresh stub resolver per lookup: a record the tenant has just created must not be hidden by a negative answer
//! cached from the previous attempt. The name server is the system's (`/etc/resolv.conf`) or one given with
//! `--dns-resolver ip:port` (UDP, falling back to TCP for truncated answers).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::Resolver;

/// Where TXT records are looked up.
#[derive(Debug, Clone, Default)]
pub enum DnsResolver {
    /// The system's resolver configuration.
    #[default]
    System,
    /// One name server, e.g. `127.0.0.1:5353`.
    Server(SocketAddr),
}

/// Why a lookup gave no answer (as opposed to an answer without the record).
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {name} failed: {reason}")]
pub struct LookupFailed {
    pub name: String,
    pub reason: String,
}

impl DnsResolver {
    /// The TXT strings at `name` (each record's character strings joined, as RFC 7208 reads them); empty when the
    /// name or the record does not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupFailed> {
        let failed = |reason: String| LookupFailed { name: name.to_string(), reason };
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        opts.cache_size = 0;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let builder = match self {
            DnsResolver::System => Resolver::builder_tokio().map_err(|e| failed(e.to_string()))?,
            DnsResolver::Server(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
                Resolver::builder_with_config(config, TokioConnectionProvider::default())
            }
        };
        let mut builder = builder;
        *builder.options_mut() = opts;
        let resolver = builder.build();
        // Fully qualified: no search domains appended.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| txt.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect::<String>())
                .collect()),
            // An answer without the record (the name exists without TXT, or does not exist): no records. A refusal
            // or server failure is no answer at all.
            Err(e) => match e.proto().map(|p| p.kind()) {
                Some(ProtoErrorKind::NoRecordsFound {
                    response_code: ResponseCode::NoError | ResponseCode::NXDomain,
                    ..
                }) => Ok(Vec::new()),
                Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
                    Err(failed(format!("the name server answered {response_code}")))
                }
                _ => Err(failed(e.to_string())),
            },
        }
    }
}
