//! `maxcloud-bench`: figures for the order pipeline, printed, never asserted.
//!
//! `orders`: the order service runs in-process on embedded defaults (SQLite, local Git provider) on a
//! loopback port; clients place App orders over HTTP in a closed loop (each waits for its order to be
//! merged before placing the next). Reported per concurrency level (1, 8, 64 clients):
//! - accepted -> merged latency p50/p99, measured by the server (order events, µs clock);
//! - client round trip (POST sent -> merge observed) p50/p99;
//! - throughput in merged orders per second.
//!
//! Then the same at 1 and 8 clients in a tenant repo that already holds 10,000 resource files, and the
//! Git step of one order (`apply_batch` with a single item) in that repo.
//!
//! `aggregator`: see `aggregator.rs`; `sync` (merge → applied through Flux): see `sync.rs`; `forge` (orders as
//! pull requests on a real Gitea): see `forge.rs`.

mod aggregator;
mod forge;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use maxcloud_gitops::{BatchItem, Change, Repos, Signature};
use maxcloud_server::{start, Config, Running};
use serde_json::{json, Value};
use tokio::sync::oneshot;

#[derive(Parser)]
#[command(about = "max-cloud benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Order accepted -> PR merged on the local provider.
    Orders {
        /// Orders per client at each concurrency level.
        #[arg(long, default_value_t = 0)]
        per_client: usize,
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 8, 64])]
        clients: Vec<usize>,
        /// Resource files to seed for the large-repo run.
        #[arg(long, default_value_t = 10_000)]
        large_repo_files: usize,
        /// Where the data directory (SQLite file, repos) is created: a fresh temporary directory inside
        /// it, removed at the end. Default `target/`, i.e. the disk the project lives on (on some
        /// sandboxes /tmp is much slower at creating files than the project disk).
        #[arg(long, default_value = "target")]
        work_dir: std::path::PathBuf,
    },
    /// The status aggregator against a real kube-apiserver: initial sync, memory, change -> event latency.
    Aggregator {
        /// XRs in the cluster (plus three composed objects each).
        #[arg(long, default_value_t = 10_000)]
        xrs: usize,
        /// Status changes timed after the initial sync.
        #[arg(long, default_value_t = 500)]
        changes: usize,
    },
    /// Merge -> applied through real Flux controllers, triggered by the order service's Receiver call.
    Sync {
        /// Orders placed one after another.
        #[arg(long, default_value_t = 30)]
        orders: usize,
    },
    /// Orders as pull requests on a real Gitea: accepted -> PR open -> merged; approval -> merged by webhook.
    Forge {
        /// App orders placed one after another.
        #[arg(long, default_value_t = 30)]
        orders: usize,
        /// Database orders approved on Gitea one after another.
        #[arg(long, default_value_t = 10)]
        reviews: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Server logs on stderr when asked for, e.g. MAXCLOUD_LOG=maxcloud_orders=debug.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("MAXCLOUD_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    match Cli::parse().bench {
        Bench::Aggregator { xrs, changes } => aggregator::run(xrs, changes).await,
        Bench::Sync { orders } => sync::run(orders).await,
        Bench::Forge { orders, reviews } => forge::run(orders, reviews).await,
        Bench::Orders { per_client, clients, large_repo_files, work_dir } => {
            orders(per_client, &clients, large_repo_files, &work_dir).await
        }
    }
}

/// Register an organisation through the API (`base`: `http://…/api/v1`); its API key and slug.
pub(crate) async fn register_org(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    org: &str,
) -> anyhow::Result<(String, String)> {
    let registered: Value = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "org_name": org}))
        .send()
        .await?
        .json()
        .await?;
    let key = registered["api_key"].as_str().with_context(|| format!("register: {registered}"))?.to_string();
    let slug = registered["organization"]["slug"].as_str().context("slug")?.to_string();
    Ok((key, slug))
}

/// Routes merge notifications from the order service's event bus to waiting clients.
#[derive(Clone, Default)]
struct Waiters {
    inner: Arc<Mutex<WaitState>>,
}

#[derive(Default)]
struct WaitState {
    waiting: HashMap<String, oneshot::Sender<Instant>>,
    done_early: HashMap<String, Instant>,
}

impl Waiters {
    fn spawn(running: &Running) -> Waiters {
        let w = Waiters::default();
        let mut rx = running.orders.subscribe();
        let inner = w.inner.clone();
        tokio::spawn(async move {
            while let Ok(announcement) = rx.recv().await {
                let maxcloud_orders::Announcement::Order(update) = announcement else { continue };
                if update.state == "merged" || update.state == "failed" {
                    let now = Instant::now();
                    let mut s = inner.lock().unwrap();
                    match s.waiting.remove(&update.order_id) {
                        Some(tx) => {
                            let _ = tx.send(now);
                        }
                        None => {
                            s.done_early.insert(update.order_id, now);
                        }
                    }
                }
            }
        });
        w
    }

    async fn wait(&self, order_id: &str) -> Instant {
        let rx = {
            let mut s = self.inner.lock().unwrap();
            if let Some(t) = s.done_early.remove(order_id) {
                return t;
            }
            let (tx, rx) = oneshot::channel();
            s.waiting.insert(order_id.to_string(), tx);
            rx
        };
        rx.await.unwrap_or_else(|_| Instant::now())
    }
}

struct Env {
    _dir: tempfile::TempDir,
    running: Running,
    http: reqwest::Client,
    base: String,
    waiters: Waiters,
}

async fn env(work_dir: &std::path::Path) -> anyhow::Result<Env> {
    std::fs::create_dir_all(work_dir)?;
    let dir = tempfile::Builder::new().prefix("maxcloud-bench-").tempdir_in(work_dir)?;
    let config = Config::embedded(dir.path().join("data"));
    let running = start(&config).await?;
    let base = format!("http://{}/api/v1", running.addr);
    let waiters = Waiters::spawn(&running);
    let http = reqwest::Client::builder().pool_max_idle_per_host(128).build()?;
    Ok(Env { _dir: dir, running, http, base, waiters })
}

async fn register(env: &Env, org: &str) -> anyhow::Result<(String, String)> {
    register_org(&env.http, &env.base, &format!("{org}@bench.example"), org).await
}

struct Run {
    server: Histogram<u64>,
    client: Histogram<u64>,
    orders: usize,
    wall: Duration,
}

async fn run_level(env: &Env, key: &str, prefix: &str, clients: usize, per_client: usize) -> anyhow::Result<Run> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = env.http.clone();
        let base = env.base.clone();
        let key = key.to_string();
        let waiters = env.waiters.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let sent = Instant::now();
                let resp = http
                    .post(format!("{base}/orders"))
                    .bearer_auth(&key)
                    .json(&json!({"kind": "App", "name": format!("{prefix}-{c}-{i}"), "parameters": {"image": "nginx:1.27"}}))
                    .send()
                    .await?;
                let status = resp.status();
                let body: Value = resp.json().await?;
                if status.as_u16() != 201 {
                    bail!("order refused: {status} {body}");
                }
                let id = body["id"].as_str().context("order id")?.to_string();
                let merged = waiters.wait(&id).await;
                out.push((id, merged.duration_since(sent)));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await??);
    }
    let wall = start.elapsed();
    let mut server = Histogram::<u64>::new(3)?;
    let mut client = Histogram::<u64>::new(3)?;
    let store = &env.running.store;
    for (id, rtt) in &results {
        client.record(rtt.as_micros() as u64)?;
        let events = store.order_events(id).await?;
        let at = |s: &str| events.iter().find(|e| e.state == s).map(|e| e.at);
        match (at("accepted"), at("merged")) {
            (Some(a), Some(m)) => server.record((m - a).max(0) as u64)?,
            _ => bail!("order {id} did not merge: {events:?}"),
        }
    }
    Ok(Run { server, client, orders: results.len(), wall })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn report(label: &str, clients: usize, r: &Run) {
    println!(
        "{label:<22} clients={clients:<3} orders={:<5} accepted->merged p50={:>7.2}ms p99={:>7.2}ms | client rtt p50={:>7.2}ms p99={:>7.2}ms | {:>7.1} orders/s",
        r.orders,
        ms(r.server.value_at_quantile(0.5)),
        ms(r.server.value_at_quantile(0.99)),
        ms(r.client.value_at_quantile(0.5)),
        ms(r.client.value_at_quantile(0.99)),
        r.orders as f64 / r.wall.as_secs_f64(),
    );
}

async fn orders(per_client: usize, levels: &[usize], large: usize, work_dir: &std::path::Path) -> anyhow::Result<()> {
    println!("maxcloud-bench orders: SQLite + local Git provider, closed-loop HTTP clients on loopback");
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let env = env(work_dir).await?;
    println!("data dir: {}", env._dir.path().display());
    let (key, _) = register(&env, "bench-small").await?;
    // Warm-up: connections, page cache, first repo objects.
    run_level(&env, &key, "warm", 4, 10).await?;
    for &clients in levels {
        let n = if per_client > 0 { per_client } else { (1024 / clients).clamp(16, 256) };
        let r = run_level(&env, &key, &format!("c{clients}"), clients, n).await?;
        report("small repo", clients, &r);
    }

    // A tenant whose repo already holds `large` resource files.
    let (key, slug) = register(&env, "bench-large").await?;
    let repos = Repos::new(env._dir.path().join("data/repos"));
    let seed_start = Instant::now();
    let files: Vec<(String, Vec<u8>)> = (0..large)
        .map(|i| (format!("apps/seed-{i:05}.yaml"), format!("apiVersion: maxcloud.dev/v1alpha1\nkind: App\nmetadata:\n  name: seed-{i:05}\nspec:\n  image: nginx\n").into_bytes()))
        .collect();
    let author = Signature { name: "bench".into(), email: "bench@maxcloud.dev".into() };
    repos.seed_files(&slug, &files, "seed resources", &author)?;
    println!("seeded {large} files into {slug} in {:.2}s", seed_start.elapsed().as_secs_f64());
    for clients in [1usize, 8] {
        let n = if per_client > 0 { per_client } else { 256 / clients };
        let r = run_level(&env, &key, &format!("big{clients}"), clients, n.max(32)).await?;
        report(&format!("{large}-file repo"), clients, &r);
    }

    // The Git step alone in the large repo, as the worker runs it for one order: `apply_batch` with a
    // single auto-merged item (one commit, one pack, `main` moved).
    let mut git = Histogram::<u64>::new(3)?;
    for i in 0..300 {
        let order_id = format!("00000000-0000-4000-8000-{i:012}");
        let path = format!("apps/gitonly-{i}.yaml");
        let content = format!("kind: App\nmetadata:\n  name: gitonly-{i}\n");
        let message = format!("create App gitonly-{i}\n\nOrder-Id: {order_id}\n");
        let change = Change {
            order_id: &order_id,
            path: &path,
            content: Some(content.as_bytes()),
            message: &message,
            author: &author,
        };
        let t = Instant::now();
        for result in repos.apply_batch(&slug, &[BatchItem { change, merge: true }])? {
            result?;
        }
        git.record(t.elapsed().as_micros() as u64)?;
    }
    println!(
        "git step (apply_batch, 1 order) in {}-file repo: p50={:.2}ms p99={:.2}ms max={:.2}ms (300 orders)",
        large + 300,
        ms(git.value_at_quantile(0.5)),
        ms(git.value_at_quantile(0.99)),
        ms(git.max())
    );
    env.running.stop().await?;
    Ok(())
}
