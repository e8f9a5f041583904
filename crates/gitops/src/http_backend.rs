//! Read-only Git smart HTTP through `git http-backend` (CGI).
//!
//! The HTTP server (axum, in another crate) maps `GET|POST /git/<repo>.git/<rest>` to a
//! [`CgiRequest`], refuses anything for which [`is_read_only_request`] is false, and calls [`run`].
//! The repositories are also configured with `http.receivepack=false`, so `git http-backend`
//! refuses pushes on its own as well.

use std::path::Path;
use std::process::Stdio;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::GitError;

/// One HTTP request for `git http-backend`.
#[derive(Debug, Clone, Default)]
pub struct CgiRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Repository directory name under the project root, e.g. `acme-shop.git`.
    pub repo: String,
    /// Rest of the path after the repository, e.g. `/info/refs` or `/git-upload-pack`.
    pub path_info_rest: String,
    /// Raw query string without `?` (e.g. `service=git-upload-pack`), possibly empty.
    pub query: String,
    /// `Content-Type` request header.
    pub content_type: Option<String>,
    /// `Content-Encoding` request header (git clients gzip large upload-pack requests).
    pub content_encoding: Option<String>,
    /// `Git-Protocol` request header (e.g. `version=2`); enables protocol v2 when present.
    pub git_protocol: Option<String>,
    /// Authenticated user, passed as `REMOTE_USER` (may be empty).
    pub remote_user: String,
    /// Request body.
    pub body: Bytes,
}

/// The CGI program's answer as an HTTP response.
#[derive(Debug, Clone)]
pub struct CgiResponse {
    /// HTTP status (from the CGI `Status:` header, default 200).
    pub status: u16,
    /// All other CGI headers, in order.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Bytes,
}

/// Whether a request only reads: smart upload-pack (fetch/clone) or the dumb-protocol files.
///
/// Anything mentioning `git-receive-pack` (push), in the path or as `?service=`, is false, as is
/// any path that is not part of the read protocol.
pub fn is_read_only_request(path_info_rest: &str, query: &str) -> bool {
    if path_info_rest.contains("receive-pack") || query.contains("receive-pack") {
        return false;
    }
    let service = query.split('&').find_map(|kv| kv.strip_prefix("service="));
    if let Some(service) = service {
        if service != "git-upload-pack" {
            return false;
        }
    }
    matches!(path_info_rest, "/info/refs" | "/git-upload-pack" | "/HEAD") || path_info_rest.starts_with("/objects/")
}

/// A plain repository directory name: `[A-Za-z0-9._-]+` ending in `.git`, not starting with `.`.
fn valid_repo_name(repo: &str) -> bool {
    repo.len() > 4
        && repo.ends_with(".git")
        && !repo.starts_with('.')
        && repo.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Run `git http-backend` for `req` with `GIT_PROJECT_ROOT=project_root` and return its response.
///
/// The request body is written to the program's stdin while its stdout and stderr are read, so
/// large bodies cannot deadlock on full pipes. The environment is cleared (no `GIT_*` variables
/// leak in) except `PATH` and `HOME`. The response is buffered in memory.
pub async fn run(project_root: &Path, req: CgiRequest) -> Result<CgiResponse, GitError> {
    if !valid_repo_name(&req.repo) {
        return Err(GitError::NotFound(format!("repository {:?}", req.repo)));
    }
    if !req.path_info_rest.starts_with('/') || req.path_info_rest.contains("..") {
        return Err(GitError::InvalidInput(format!("invalid path {:?}", req.path_info_rest)));
    }
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
        .env("GIT_PROJECT_ROOT", project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}{}", req.repo, req.path_info_rest))
        .env("QUERY_STRING", &req.query)
        .env("REQUEST_METHOD", &req.method)
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .env("REMOTE_USER", &req.remote_user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    if let Some(ct) = &req.content_type {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(ce) = &req.content_encoding {
        cmd.env("HTTP_CONTENT_ENCODING", ce);
    }
    if let Some(proto) = &req.git_protocol {
        cmd.env("GIT_PROTOCOL", proto);
    }

    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take();
    let body = req.body;
    let write = async move {
        if let Some(mut stdin) = stdin {
            // The program may exit without reading everything (e.g. on an error); a broken pipe
            // is then not our error — its response says what went wrong.
            if let Err(err) = stdin.write_all(&body).await {
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(err);
                }
            }
            drop(stdin);
        }
        Ok(())
    };
    let (written, output) = tokio::join!(write, child.wait_with_output());
    let output = output?;
    written?;
    if !output.stderr.is_empty() {
        tracing::warn!(
            repo = %req.repo,
            path = %req.path_info_rest,
            stderr = %String::from_utf8_lossy(&output.stderr).trim_end(),
            "git http-backend wrote to stderr"
        );
    }
    if !output.status.success() && output.stdout.is_empty() {
        return Err(GitError::Io(std::io::Error::other(format!("git http-backend failed: {}", output.status))));
    }
    parse_cgi_output(Bytes::from(output.stdout))
}

/// Split CGI output into status, headers and body. Headers end at the first empty line (CRLF or
/// LF line endings).
fn parse_cgi_output(out: Bytes) -> Result<CgiResponse, GitError> {
    let mut status = 200;
    let mut headers = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = out[pos..].iter().position(|&b| b == b'\n') else {
            return Err(GitError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "git http-backend output has no end of headers",
            )));
        };
        let mut line = &out[pos..pos + nl];
        pos += nl + 1;
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(line);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("Status") {
            status = value.split_whitespace().next().and_then(|code| code.parse().ok()).unwrap_or(500);
        } else {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(CgiResponse { status, headers, body: out.slice(pos..) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_classification() {
        assert!(is_read_only_request("/info/refs", "service=git-upload-pack"));
        assert!(is_read_only_request("/git-upload-pack", ""));
        assert!(is_read_only_request("/info/refs", ""));
        assert!(is_read_only_request("/HEAD", ""));
        assert!(is_read_only_request("/objects/ab/cdef", ""));
        assert!(!is_read_only_request("/info/refs", "service=git-receive-pack"));
        assert!(!is_read_only_request("/git-receive-pack", ""));
        assert!(!is_read_only_request("/info/refs", "x=1&service=git-receive-pack"));
        assert!(!is_read_only_request("/info/refs", "service=git-upload-archive"));
        assert!(!is_read_only_request("/config", ""));
    }

    #[test]
    fn parses_cgi_headers() {
        let r =
            parse_cgi_output(Bytes::from_static(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope\n"))
                .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.headers, vec![("Content-Type".into(), "text/plain".into())]);
        assert_eq!(&r.body[..], b"nope\n");

        let r = parse_cgi_output(Bytes::from_static(b"Expires: never\nX-A: b\n\n\x00\x01")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.len(), 2);
        assert_eq!(&r.body[..], b"\x00\x01");

        assert!(parse_cgi_output(Bytes::from_static(b"Content-Type: x")).is_err());
    }
}
