//! A minimal HTTP/1.1 client for the cluster admin API: what a joining node and
//! `o11y cluster` need to talk to a member (`http://host:port`, JSON in and out), without
//! pulling a full HTTP client into the server.
//!
//! ```text
//!   base URL ─► parse (http only; host, port, path prefix)
//!     ─► TCP connect ─► one request (Content-Length, Connection: close)
//!     ─► read to EOF (bounded size and time) ─► status, body (chunked bodies decoded)
//! ```

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Why a request failed before an HTTP status was received.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    // The I/O error is part of the message (not a `source`) so that a one-line display of
    // this error says everything.
    #[error("cannot connect to {addr}: {error}")]
    Connect { addr: String, error: std::io::Error },
    #[error("{addr}: no response within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: {error}")]
    Io { addr: String, error: std::io::Error },
    #[error("{addr}: malformed HTTP response: {reason}")]
    BadResponse { addr: String, reason: String },
}

/// A server base URL: `http://host[:port][/prefix]` (a bare `host:port` means `http://`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `host:port` to connect to.
    pub addr: String,
    /// `Host` header value.
    pub host: String,
    /// Path prefix without a trailing slash (often empty).
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: url.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "scheme {scheme:?} is not supported (use http://)"
                )))
            }
            None => url,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') || authority.contains(char::is_whitespace) {
            return Err(bad("the host part may not contain '@' or spaces"));
        }
        // `[v6]:port`, `host:port` or `host`.
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let addr = if has_port {
            let port = &authority[authority.rfind(':').unwrap_or(0) + 1..];
            port.parse::<u16>()
                .map_err(|_| bad(&format!("invalid port {port:?}")))?;
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        if path.contains(['?', '#']) {
            return Err(bad("a query string or fragment is not allowed"));
        }
        Ok(BaseUrl {
            addr,
            host: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
        })
    }
}

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error` field of an API error body, or the body itself (shortened).
    pub fn error_message(&self) -> String {
        match self.json().get("error").and_then(|e| e.as_str()) {
            Some(e) => e.to_string(),
            None => String::from_utf8_lossy(&self.body)
                .chars()
                .take(300)
                .collect::<String>()
                .trim()
                .to_string(),
        }
    }
}

/// Sends one request (`path` below the base URL's prefix) with an optional JSON body and
/// waits up to `timeout` for the whole response.
pub async fn request(
    base: &BaseUrl,
    method: &str,
    path: &str,
    json_body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    match tokio::time::timeout(timeout, exchange(base, method, path, json_body)).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout {
            addr: base.addr.clone(),
            timeout,
        }),
    }
}

async fn exchange(
    base: &BaseUrl,
    method: &str,
    path: &str,
    json_body: Option<&[u8]>,
) -> Result<Reply, ClientError> {
    let io = |error| ClientError::Io {
        addr: base.addr.clone(),
        error,
    };
    let mut s = tokio::net::TcpStream::connect(&base.addr)
        .await
        .map_err(|error| ClientError::Connect {
            addr: base.addr.clone(),
            error,
        })?;
    let body = json_body.unwrap_or_default();
    let mut head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n",
        base.prefix,
        base.host,
        body.len()
    );
    if json_body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.map_err(io)?;
    s.write_all(body).await.map_err(io)?;
    let mut out = Vec::new();
    let mut limited = (&mut s).take(MAX_RESPONSE_BYTES as u64 + 64 * 1024);
    limited.read_to_end(&mut out).await.map_err(io)?;
    parse_response(&out).map_err(|reason| ClientError::BadResponse {
        addr: base.addr.clone(),
        reason,
    })
}

fn parse_response(raw: &[u8]) -> Result<Reply, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", truncate(status_line)))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k == "content-length" {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {:?}", truncate(v)))?,
            );
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| format!("body shorter than its Content-Length {n}"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(format!("body larger than {MAX_RESPONSE_BYTES} bytes"));
    }
    Ok(Reply { status, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&b[..nl]).map_err(|_| "bad chunk size")?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let n = usize::from_str_radix(size, 16)
            .map_err(|_| format!("bad chunk size {:?}", truncate(size)))?;
        if n == 0 {
            return Ok(out);
        }
        let data = b.get(nl + 2..nl + 2 + n).ok_or("truncated chunk")?;
        out.extend_from_slice(data);
        b = b.get(nl + 2 + n + 2..).ok_or("truncated chunk end")?;
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_parse() {
        let u = BaseUrl::parse("http://node1:9090").unwrap();
        assert_eq!(
            (u.addr.as_str(), u.host.as_str(), u.prefix.as_str()),
            ("node1:9090", "node1:9090", "")
        );
        let u = BaseUrl::parse("127.0.0.1:9090/o11y/").unwrap();
        assert_eq!(
            (u.addr.as_str(), u.prefix.as_str()),
            ("127.0.0.1:9090", "/o11y")
        );
        assert_eq!(BaseUrl::parse("http://example").unwrap().addr, "example:80");
        assert_eq!(
            BaseUrl::parse("http://[::1]:9090").unwrap().addr,
            "[::1]:9090"
        );
        assert_eq!(BaseUrl::parse("http://[::1]").unwrap().addr, "[::1]:80");
        for bad in [
            "https://x:1",
            "http://",
            "http://x:notaport",
            "http://u@x:1",
            "http://x:1/?a=b",
        ] {
            let e = BaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid server URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn responses_parse() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"{}".as_slice()));
        let r = parse_response(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, b"abcde".as_slice()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        let r = Reply {
            status: 400,
            body: br#"{"status":"error","errorType":"bad_data","error":"nope"}"#.to_vec(),
        };
        assert_eq!(r.error_message(), "nope");
    }
}
