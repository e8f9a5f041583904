//! What every part of the test environment needs to run an upstream process: a free loopback port, a child
//! with its output in `<dir>/<name>.log`, a one-shot command, the tail of a log, a process's memory.

use std::ffi::OsStr;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Error;

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
