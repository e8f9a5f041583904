//! Timing of `Repos::apply_batch` for batch sizes 1, 8 and 64 in a repository with 10 and with
//! 10,000 files under `apps/`:
//! `cargo run --release -p maxcloud-gitops --example batch_timing [orders] [sizes] [files]`
//! (defaults: 512 orders per run, sizes `1,8,64`, files `10,10000`).
//!
//! Every order creates a new file and is auto-merged. As the order worker does, the repository
//! is packed with `git gc` when it holds more than 50 packs; gc time is reported separately.
//! `pack/batch` is the mean size of the pack a batch writes (measured outside the timing).

use std::time::{Duration, Instant};

use maxcloud_gitops::{render_commit_message, BatchItem, Change, OrderText, Repos, Signature};

struct Order {
    id: String,
    path: String,
    content: Vec<u8>,
    message: String,
}

fn parse_list(arg: Option<String>, default: &[usize]) -> Result<Vec<usize>, std::num::ParseIntError> {
    match arg {
        Some(list) => list.split(',').map(str::parse).collect(),
        None => Ok(default.to_vec()),
    }
}

/// Total size of the `.pack` files in `dir`.
fn packs_size(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "pack") {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let orders: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(512);
    let sizes = parse_list(args.next(), &[1, 8, 64])?;
    let file_counts = parse_list(args.next(), &[10, 10_000])?;
    let author = Signature { name: "max-cloud".into(), email: "orders@max-cloud.test".into() };
    let slug = "bench";
    for &files in &file_counts {
        for &size in &sizes {
            let dir = tempfile::tempdir()?;
            let repos = Repos::new(dir.path());
            repos.init_tenant(slug, "# bench\n", &author)?;
            let seed: Vec<(String, Vec<u8>)> = (0..files)
                .map(|i| {
                    (
                        format!("apps/app-{i:05}.yaml"),
                        format!("apiVersion: maxcloud.dev/v1alpha1\nkind: App\nmetadata:\n  name: app-{i:05}\nspec:\n  image: ghcr.io/acme/app:{i}\n").into_bytes(),
                    )
                })
                .collect();
            repos.seed_files(slug, &seed, "seed\n", &author)?;
            repos.gc(slug)?;

            let all: Vec<Order> = (0..orders)
                .map(|i| {
                    let id = format!("0191c2d4-0000-7000-8000-{i:012}");
                    let name = format!("new-{i:05}");
                    let path = format!("apps/{name}.yaml");
                    let message = render_commit_message(&OrderText {
                        order_id: id.clone(),
                        action: "create".into(),
                        kind: "App".into(),
                        name: name.clone(),
                        path: path.clone(),
                        requester: "alice@example.com".into(),
                        tenant: slug.into(),
                        ..Default::default()
                    })?;
                    let content = format!("kind: App\nname: {name}\n").into_bytes();
                    Ok(Order { id, path, content, message })
                })
                .collect::<Result<_, maxcloud_gitops::GitError>>()?;

            let pack_dir = repos.path(slug).join("objects").join("pack");
            let mut batch_t = Vec::new();
            let mut pack_bytes = 0u64;
            let mut gc_t = Duration::ZERO;
            let mut gcs = 0;
            for chunk in all.chunks(size) {
                let items: Vec<BatchItem> = chunk
                    .iter()
                    .map(|o| BatchItem {
                        change: Change {
                            order_id: &o.id,
                            path: &o.path,
                            content: Some(&o.content),
                            message: &o.message,
                            author: &author,
                        },
                        merge: true,
                    })
                    .collect();
                let before = packs_size(&pack_dir)?;
                let t = Instant::now();
                let results = repos.apply_batch(slug, &items)?;
                batch_t.push(t.elapsed());
                pack_bytes += packs_size(&pack_dir)? - before;
                if let Some(Err(err)) = results.iter().find(|r| r.is_err()) {
                    return Err(format!("order failed: {err}").into());
                }
                if repos.pack_count(slug)? > 50 {
                    let t = Instant::now();
                    repos.gc(slug)?;
                    gc_t += t.elapsed();
                    gcs += 1;
                }
            }
            let total: Duration = batch_t.iter().sum();
            batch_t.sort();
            let p = |q: f64| batch_t[((batch_t.len() as f64 - 1.0) * q).round() as usize];
            println!(
                "files {files:>6} batch {size:>3}: {:>7.0} orders/s | per batch mean {:>8.3?} p50 {:>8.3?} p90 {:>8.3?} max {:>8.3?} | per order {:>8.3?} | pack/batch {:>9} B | gc {gcs}× {:.3?}",
                orders as f64 / total.as_secs_f64(),
                total / batch_t.len() as u32,
                p(0.5),
                p(0.9),
                batch_t[batch_t.len() - 1],
                total / orders as u32,
                pack_bytes / batch_t.len() as u64,
                gc_t,
            );
        }
    }
    Ok(())
}
