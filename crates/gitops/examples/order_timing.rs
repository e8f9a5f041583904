//! Rough timing of commit_order + merge_order in a tenant repository with 10,000 files under
//! `apps/`: `cargo run --release -p maxcloud-gitops --example order_timing [orders] [files] [gc]`.

use std::time::{Duration, Instant};

use maxcloud_gitops::{render_commit_message, Change, OrderText, Repos, Signature};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let orders: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let files: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let repos = Repos::new(dir.path());
    let author = Signature { name: "max-cloud".into(), email: "orders@max-cloud.test".into() };
    let slug = "bench";
    repos.init_tenant(slug, "# bench\n", &author)?;
    let seed: Vec<(String, Vec<u8>)> = (0..files)
        .map(|i| {
            (
                format!("apps/app-{i:05}.yaml"),
                format!("apiVersion: maxcloud.dev/v1alpha1\nkind: App\nmetadata:\n  name: app-{i:05}\nspec:\n  image: ghcr.io/acme/app:{i}\n").into_bytes(),
            )
        })
        .collect();
    let t = Instant::now();
    repos.seed_files(slug, &seed, "seed\n", &author)?;
    println!("seeded {files} files in {:?}", t.elapsed());
    if args.next().as_deref() == Some("gc") {
        let t = Instant::now();
        repos.gc(slug)?;
        println!("packed with git gc in {:?}", t.elapsed());
    }

    let mut commit_t = Vec::new();
    let mut merge_t = Vec::new();
    let mut total_t = Vec::new();
    for i in 0..orders {
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
        let content = format!("kind: App\nname: {name}\n");
        let change = Change {
            order_id: &id,
            path: &path,
            content: Some(content.as_bytes()),
            message: &message,
            author: &author,
        };
        let t0 = Instant::now();
        repos.commit_order(slug, &change)?;
        let t1 = Instant::now();
        repos.merge_order(slug, &change)?;
        let t2 = Instant::now();
        commit_t.push(t1 - t0);
        merge_t.push(t2 - t1);
        total_t.push(t2 - t0);
    }
    for (name, v) in [("commit_order", &mut commit_t), ("merge_order", &mut merge_t), ("commit+merge", &mut total_t)] {
        v.sort();
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        let mean: Duration = v.iter().sum::<Duration>() / v.len() as u32;
        println!(
            "{name:>13}: mean {:>8.3?} p50 {:>8.3?} p90 {:>8.3?} p99 {:>8.3?} max {:>8.3?}",
            mean,
            p(0.5),
            p(0.9),
            p(0.99),
            v[v.len() - 1]
        );
    }
    Ok(())
}
