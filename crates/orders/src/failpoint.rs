//! Crash injection for the crash-resume tests.
//!
//! `MAXCLOUD_FAILPOINT=<name>[:<n>]` aborts the process (like `kill -9`: no destructors, no flushing)
//! the `n`-th time (default: first) the worker passes the named point. Points: `before_git`,
//! `after_git` (objects written and refs moved, nothing recorded yet), `after_record`. Unset, this
//! costs one relaxed atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Armed {
    name: String,
    nth: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("MAXCLOUD_FAILPOINT").ok()?;
            let (name, nth) = match spec.split_once(':') {
                Some((n, k)) => (n.to_string(), k.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed { name, nth, hits: AtomicU64::new(0) })
        })
        .as_ref()
}

pub(crate) fn hit(name: &str) {
    if let Some(a) = armed() {
        if a.name == name && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.nth {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}
