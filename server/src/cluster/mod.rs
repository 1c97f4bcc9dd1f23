//! Cluster membership over HTTP: the admin endpoints every node serves, and the join loop of
//! a node started with `--join`.
//!
//! ```text
//!   GET  /api/v1/cluster/status ─► this node's RaftNode::status + each member's status
//!                                   (asked over the node-to-node gRPC Admin rpc, 1 s each)
//!   POST /api/v1/cluster/join   {"node_id":N,"cluster_addr":"host:port"}
//!        ─► RaftNode::add_voter: on the leader add a learner, wait until it has the log,
//!           make it a voter; on a follower the same, forwarded to the leader over gRPC
//!   POST /api/v1/cluster/remove {"node_id":N} ─► RaftNode::remove_member (same forwarding)
//!
//!   o11y serve --join URL,... ─► listeners up ─► join(): already a voter? done
//!        └─ else POST /api/v1/cluster/join to each URL in turn, backing off between rounds
//!           (503 and unreachable members are retried; a 400 refusal ends the loop)
//! ```
//!
//! Answers: 200 with `{"status":"success","data":...}`; 400 (`bad_data`) for malformed
//! requests and refused changes (unknown node, last voter, id or address taken); 503
//! (`unavailable`) when there is no leader, no quorum or another change is in progress —
//! callers retry those. Member addresses are the gRPC addresses of the membership config, so
//! no HTTP address needs to be replicated: forwarding goes over the node-to-node gRPC.

pub mod http;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use o11y_raft::{pb, MembershipError, PeerClient, RaftNode, Status};
use serde::{Deserialize, Serialize};

use crate::api::json::Success;
use crate::api::{ApiError, ErrorType};

/// How long a member's status may take in `GET /api/v1/cluster/status`.
const MEMBER_STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// One node's view of the cluster, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: u64,
    pub role: String,
    pub term: u64,
    /// The leader this node knows, if any.
    pub leader: Option<u64>,
    /// The leader's gRPC address.
    pub leader_addr: Option<String>,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

impl From<Status> for NodeStatus {
    fn from(s: Status) -> Self {
        NodeStatus {
            id: s.id,
            role: s.role,
            term: s.term,
            leader: s.leader,
            leader_addr: s.leader_addr,
            last_log_index: s.last_log_index,
            applied_index: s.applied_index,
            voters: s.voters,
            learners: s.learners,
        }
    }
}

impl From<pb::StatusReply> for NodeStatus {
    fn from(s: pb::StatusReply) -> Self {
        NodeStatus {
            id: s.node_id,
            role: s.role,
            term: s.term,
            leader: (s.leader_id != 0).then_some(s.leader_id),
            leader_addr: (!s.leader_addr.is_empty()).then_some(s.leader_addr),
            last_log_index: s.last_log_index,
            applied_index: s.applied_index,
            voters: s.voters,
            learners: s.learners,
        }
    }
}

/// A member as the asked node's membership config names it, with its own status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: u64,
    /// Node-to-node gRPC address.
    pub cluster_addr: String,
    pub voter: bool,
    /// The member's own view (absent when it could not be asked).
    pub status: Option<NodeStatus>,
    /// Why the member could not be asked.
    pub error: Option<String>,
}

/// `GET /api/v1/cluster/status` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node: NodeStatus,
    pub members: Vec<MemberStatus>,
}

/// `POST /api/v1/cluster/join` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub node_id: u64,
    /// The joining node's gRPC address as the other members reach it.
    pub cluster_addr: String,
}

/// `POST /api/v1/cluster/remove` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    pub node_id: u64,
}

/// The cluster admin routes over `node`.
pub fn router(node: Arc<RaftNode>) -> Router {
    Router::new()
        .route("/api/v1/cluster/status", get(status))
        .route("/api/v1/cluster/join", post(join_handler))
        .route("/api/v1/cluster/remove", post(remove_handler))
        .with_state(node)
}

/// This node's status and every member's.
pub async fn cluster_status(node: &RaftNode) -> ClusterStatus {
    let me = node.id();
    let asks = node.members().into_iter().map(|m| async move {
        let (status, error) = if m.id == me {
            (Some(NodeStatus::from(node.status())), None)
        } else {
            let client = PeerClient::new(&m.addr, MEMBER_STATUS_TIMEOUT);
            let req = pb::AdminRequest {
                op: pb::admin_request::Op::Status as i32,
                ..Default::default()
            };
            match tokio::time::timeout(MEMBER_STATUS_TIMEOUT, client.admin(req)).await {
                Ok(Ok(s)) => (Some(NodeStatus::from(s)), None),
                Ok(Err(e)) => (None, Some(format!("{}: {}", e.code(), e.message()))),
                Err(_) => (
                    None,
                    Some(format!("no answer within {MEMBER_STATUS_TIMEOUT:?}")),
                ),
            }
        };
        MemberStatus {
            id: m.id,
            cluster_addr: m.addr,
            voter: m.voter,
            status,
            error,
        }
    });
    let members = futures::future::join_all(asks).await;
    ClusterStatus {
        node: node.status().into(),
        members,
    }
}

async fn status(State(node): State<Arc<RaftNode>>) -> Result<Success, ApiError> {
    Success::serialize(&cluster_status(&node).await)
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_data(format!("invalid request body: {e}; expected JSON {shape}"))
    })
}

fn membership_error(e: MembershipError) -> ApiError {
    let typ = if e.is_retriable() {
        ErrorType::Unavailable
    } else if matches!(e, MembershipError::Refused(_)) {
        ErrorType::BadData
    } else {
        ErrorType::Internal
    };
    ApiError::new(typ, e.to_string())
}

async fn join_handler(State(node): State<Arc<RaftNode>>, body: Bytes) -> Result<Success, ApiError> {
    let req: JoinRequest = parse_body(&body, r#"{"node_id": N, "cluster_addr": "host:port"}"#)?;
    if req.node_id == 0 {
        return Err(ApiError::bad_data("node_id must be at least 1"));
    }
    check_cluster_addr(&req.cluster_addr).map_err(ApiError::bad_data)?;
    node.add_voter(req.node_id, &req.cluster_addr)
        .await
        .map_err(membership_error)?;
    Success::serialize(&cluster_status(&node).await)
}

async fn remove_handler(
    State(node): State<Arc<RaftNode>>,
    body: Bytes,
) -> Result<Success, ApiError> {
    let req: RemoveRequest = parse_body(&body, r#"{"node_id": N}"#)?;
    if req.node_id == 0 {
        return Err(ApiError::bad_data("node_id must be at least 1"));
    }
    node.remove_member(req.node_id)
        .await
        .map_err(membership_error)?;
    Success::serialize(&cluster_status(&node).await)
}

/// Checks a `host:port` gRPC address: a host, a numeric non-zero port, no scheme or path.
pub fn check_cluster_addr(addr: &str) -> Result<(), String> {
    let shown: String = addr.chars().take(100).collect();
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("cluster_addr {shown:?} must be host:port"));
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) || addr.contains("://") {
        return Err(format!(
            "cluster_addr {shown:?} must be host:port (no scheme or path)"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!("cluster_addr {shown:?} has an invalid port")),
    }
}

/// Why `--join` gave up.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("no member URL to join through")]
    NoUrls,
    #[error("{url} refused the join: {message}")]
    Refused { url: String, message: String },
    #[error(
        "could not join the cluster within {waited:?} ({attempts} attempts); last error: {last}"
    )]
    GaveUp {
        waited: Duration,
        attempts: u32,
        last: String,
    },
    #[error(transparent)]
    Url(#[from] http::ClientError),
}

/// How a joining node retries.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// Give up after this long.
    pub deadline: Duration,
    /// First pause between rounds over the URLs; doubled up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Time one join request may take (the leader waits for the new node to catch up).
    pub request_timeout: Duration,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            deadline: Duration::from_secs(600),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(90),
        }
    }
}

/// Makes `node` a voter of the cluster the members at `urls` belong to, unless it already
/// is one (a restart). Tries each URL in turn; retries unreachable members and 503s with
/// backoff until `opts.deadline`; a refusal (400) ends it at once.
pub async fn join(
    node: Arc<RaftNode>,
    urls: &[String],
    cluster_addr: &str,
    opts: JoinOptions,
) -> Result<(), JoinError> {
    if urls.is_empty() {
        return Err(JoinError::NoUrls);
    }
    let bases = urls
        .iter()
        .map(|u| http::BaseUrl::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    let id = node.id();
    let body = serde_json::json!({ "node_id": id, "cluster_addr": cluster_addr })
        .to_string()
        .into_bytes();
    let is_voter = |node: &RaftNode| node.members().iter().any(|m| m.id == id && m.voter);
    if is_voter(&node) {
        tracing::info!(node = id, "already a voter of the cluster; not joining");
        return Ok(());
    }
    let start = tokio::time::Instant::now();
    let mut backoff = opts.backoff;
    let mut attempts = 0u32;
    let mut last = String::new();
    loop {
        for (url, base) in urls.iter().zip(&bases) {
            if is_voter(&node) {
                tracing::info!(node = id, "became a voter");
                return Ok(());
            }
            attempts += 1;
            tracing::info!(node = id, %url, cluster_addr, attempt = attempts, "asking to join the cluster");
            match http::request(
                base,
                "POST",
                "/api/v1/cluster/join",
                Some(&body),
                opts.request_timeout,
            )
            .await
            {
                Ok(r) if (200..300).contains(&r.status) => {
                    tracing::info!(node = id, %url, "joined the cluster as a voter");
                    return Ok(());
                }
                Ok(r) if r.status == 400 => {
                    return Err(JoinError::Refused {
                        url: url.clone(),
                        message: r.error_message(),
                    })
                }
                Ok(r) => last = format!("{url}: HTTP {}: {}", r.status, r.error_message()),
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(node = id, error = %last, "join attempt failed; will retry");
        }
        let elapsed = start.elapsed();
        if elapsed + backoff > opts.deadline {
            return Err(JoinError::GaveUp {
                waited: elapsed,
                attempts,
                last,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(opts.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_are_checked() {
        assert!(check_cluster_addr("node1:9095").is_ok());
        assert!(check_cluster_addr("[::1]:9095").is_ok());
        for bad in [
            "node1",
            ":9095",
            "http://n:1",
            "n:0",
            "n:x",
            "a/b:1",
            "n:70000",
        ] {
            assert!(check_cluster_addr(bad).is_err(), "{bad}");
        }
    }
}
