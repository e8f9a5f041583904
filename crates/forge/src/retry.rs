//! Retries of forge requests: what to do with each answer, and the loop that does it.
//!
//! - 2xx/3xx and other 4xx answers are final (the caller maps them to [`crate::ForgeError`]).
//! - 5xx answers and network errors are retried with exponential backoff and full jitter
//!   (`random(0, min(max_delay, base · 2^attempt))`, AWS's "full jitter"), at most `attempts` times in all.
//! - Rate limits: 429, or 403 with `Retry-After` or `X-RateLimit-Remaining: 0` (GitHub's primary and secondary
//!   limits; Gitea sends 429). The wait is `Retry-After` seconds, else until `X-RateLimit-Reset` (epoch seconds),
//!   else the backoff. A wait longer than `max_rate_limit_wait` is not slept: the call fails at once as
//!   unavailable, naming when the limit resets, so an order lane is never parked for an hour.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use rand::Rng;

use crate::ForgeError;

/// How requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (1 = no retry).
    pub attempts: u32,
    /// Backoff of the first retry (before jitter).
    pub base_delay: Duration,
    /// Cap of one backoff.
    pub max_delay: Duration,
    /// Longest rate-limit wait that is slept through.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to do after one try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Hand the answer to the caller.
    Done,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Rate limited for longer than we wait: give up with this message.
    GiveUp(String),
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based), with full jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << retry.min(20)).min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
    }

    /// Decide on an answer; `retry` is the number of retries so far, `now` the wall clock.
    pub fn next(&self, status: StatusCode, headers: &HeaderMap, retry: u32, now: SystemTime) -> Next {
        if let Some(wait) = rate_limit_wait(status, headers, now) {
            let wait = wait.unwrap_or_else(|| self.backoff(retry));
            return if wait > self.max_rate_limit_wait {
                Next::GiveUp(format!("rate limited for another {} s (status {})", wait.as_secs(), status.as_u16()))
            } else {
                Next::RetryAfter(wait)
            };
        }
        if status.is_server_error() {
            return Next::RetryAfter(self.backoff(retry));
        }
        Next::Done
    }

    /// Send with retries. `send` makes one try: `Ok` with the whole answer, or `Err` with a network error.
    pub async fn run<F, Fut>(&self, what: &str, mut send: F) -> Result<Response, ForgeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Response, String>>,
    {
        let mut retry = 0;
        loop {
            let last_try = retry + 1 >= self.attempts.max(1);
            let wait = match send().await {
                Ok(response) => match self.next(response.status, &response.headers, retry, SystemTime::now()) {
                    Next::Done => return Ok(response),
                    Next::GiveUp(message) => return Err(ForgeError::Unavailable(format!("{what}: {message}"))),
                    Next::RetryAfter(_) if last_try => {
                        let status = response.status.as_u16();
                        return Err(ForgeError::Unavailable(format!(
                            "{what}: status {status} after {} tries: {}",
                            retry + 1,
                            short(&response.text())
                        )));
                    }
                    Next::RetryAfter(wait) => wait,
                },
                Err(e) if last_try => {
                    return Err(ForgeError::Unavailable(format!("{what}: {e} (after {} tries)", retry + 1)))
                }
                Err(_) => self.backoff(retry),
            };
            tracing::debug!(what, retry, wait_ms = wait.as_millis() as u64, "forge request retried");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// `Some` if the answer is a rate limit: with the wait the headers ask for, or `None` to back off.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Option<Duration>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (retry_after.is_some() || exhausted));
    if !limited {
        return None;
    }
    if retry_after.is_some() {
        return Some(retry_after);
    }
    let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    // One second more: the limit resets at the start of that second.
    Some(reset.map(|at| Duration::from_secs(at.saturating_sub(now) + 1)))
}

/// The first 300 characters of an answer, for messages.
pub(crate) fn short(text: &str) -> String {
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn success_and_client_errors_are_final() {
        let p = RetryPolicy::default();
        for s in [200, 201, 204, 404, 409, 422, 401] {
            assert_eq!(p.next(StatusCode::from_u16(s).unwrap(), &HeaderMap::new(), 0, at(NOW)), Next::Done, "{s}");
        }
        // A 403 without rate-limit headers is a permission problem, not a limit.
        assert_eq!(p.next(StatusCode::FORBIDDEN, &headers(&[("x-ratelimit-remaining", "12")]), 0, at(NOW)), Next::Done);
    }

    #[test]
    fn server_errors_back_off_within_the_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            ..Default::default()
        };
        for retry in 0..10 {
            match p.next(StatusCode::BAD_GATEWAY, &HeaderMap::new(), retry, at(NOW)) {
                Next::RetryAfter(d) => {
                    let cap = Duration::from_millis(100 * (1 << retry.min(3)));
                    assert!(d <= cap, "retry {retry}: {d:?} > {cap:?}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rate_limits_wait_for_the_reset() {
        let p = RetryPolicy::default();
        let reset = (NOW + 7).to_string();
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        assert_eq!(p.next(StatusCode::FORBIDDEN, &h, 0, at(NOW)), Next::RetryAfter(Duration::from_secs(8)));
        assert_eq!(p.next(StatusCode::TOO_MANY_REQUESTS, &h, 0, at(NOW)), Next::RetryAfter(Duration::from_secs(8)));
        let h = headers(&[("retry-after", "3")]);
        assert_eq!(p.next(StatusCode::FORBIDDEN, &h, 0, at(NOW)), Next::RetryAfter(Duration::from_secs(3)));
        // A reset an hour away is not slept through.
        let reset = (NOW + 3600).to_string();
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        assert!(matches!(p.next(StatusCode::FORBIDDEN, &h, 0, at(NOW)), Next::GiveUp(m) if m.contains("3601 s")));
        // 429 without headers backs off.
        assert!(matches!(p.next(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), 0, at(NOW)), Next::RetryAfter(_)));
    }

    #[tokio::test]
    async fn run_retries_until_success_and_gives_up_after_the_attempts() {
        let p = RetryPolicy { attempts: 4, base_delay: Duration::from_millis(1), ..Default::default() };
        let answer = |status: u16| Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"x"),
        };
        let mut tries = 0;
        let r = p
            .run("get", || {
                tries += 1;
                let t = tries;
                async move {
                    match t {
                        1 => Err("connection reset".to_string()),
                        2 => Ok(answer(503)),
                        _ => Ok(answer(200)),
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!((r.status.as_u16(), tries), (200, 3));

        let mut tries = 0;
        let e = p
            .run("get", || {
                tries += 1;
                async { Ok(answer(500)) }
            })
            .await
            .unwrap_err();
        assert_eq!(tries, 4);
        assert!(matches!(e, ForgeError::Unavailable(m) if m.contains("status 500 after 4 tries")));
    }
}
