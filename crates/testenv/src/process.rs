//! What every part of the test environment needs to run an upstream process: a free loopback port, a child
//! with its output in `<dir>/<name>.log`, a one-shot command, the tail of a log, a process's memory.

use std::ffi::OsStr;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Error;

/// A loopback port for a process the test starts, free a moment ago and given to no other caller of this process.
///
/// Chosen below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, usually 32768–60999):
/// `bind(0)` and every outgoing connection take their ports from that range, so a port found free there can be
/// taken before the started process binds it — a cold CI run lost a Flux controller's metrics port to exactly that.
/// Below the range only explicit binds compete, and this process remembers what it handed out. Where the range
/// leaves no room below it, the port comes from `bind(0)` as before.
pub fn free_port() -> Result<u16, Error> {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    const FLOOR: u32 = 10_000;
    let ceiling = ephemeral_start().unwrap_or(32_768);
    if ceiling <= FLOOR + 1_000 {
        return Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    }
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // A random start (std's per-process random hash keys; no RNG crate needed), then upwards.
    let start = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let span = u64::from(ceiling - FLOOR);
    for step in 0..span {
        let port = (FLOOR as u64 + (start + step) % span) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> Option<u32> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// Starts `program` with stdout and stderr in `<dir>/<name>.log` and the extra environment `env`.
pub fn spawn<V: AsRef<OsStr>>(
    dir: &Path,
    name: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, V)],
) -> Result<Child, Error> {
    let log = File::create(dir.join(format!("{name}.log")))?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::from(log.try_clone()?)).stderr(Stdio::from(log));
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.spawn().map_err(|e| Error::Start(format!("{name}: {e}")))
}

/// Runs a command to completion; its stderr is the error when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), Error> {
    let out = Command::new(program).args(args).output().map_err(|e| Error::Start(format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Start(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr))))
    }
}

/// The last `lines` lines of a text.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ceiling = ephemeral_start().unwrap_or(32_768);
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        if ceiling > 11_000 {
            assert!(ports.iter().all(|p| (10_000..ceiling as u16).contains(p)), "{ports:?}");
        }
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{port}: {e}"));
        }
    }
}
