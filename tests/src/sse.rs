//! Reading the server's live events (`GET /api/v1/events`) as a client does.

use std::time::Duration;

use futures::StreamExt;

/// One SSE frame: (event, id, data).
pub type Frame = (String, String, String);

/// Reads SSE frames until `done(frames so far)`, the stream ends or breaks (a killed server), or `timeout`
/// passes; returns what was read.
pub async fn read_events(resp: reqwest::Response, timeout: Duration, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
    let mut stream = resp.bytes_stream();
    let (mut buf, mut frames) = (String::new(), Vec::new());
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("").trim().to_string()
                };
                if !field("event").is_empty() {
                    frames.push((field("event"), field("id"), field("data")));
                }
            }
            if done(&frames) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    frames
}

/// The states of order `id` in `order` frames, in stream order.
pub fn states_of(frames: &[Frame], id: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|(event, _, _)| event == "order")
        .filter_map(|(_, _, d)| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter(|d| d["order_id"] == id)
        .map(|d| d["state"].as_str().unwrap_or("").to_string())
        .collect()
}
