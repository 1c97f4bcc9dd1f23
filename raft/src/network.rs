//! Node-to-node traffic: openraft's `RaftNetwork` over tonic gRPC (or over the in-process
//! simulated router in tests), the gRPC server every node runs, and snapshot streaming.
//!
//! ```text
//! leader                                       follower
//! Peer::append_entries ── AppendEntries(Blob) ──► RaftGrpc ─► Raft::append_entries
//! Peer::vote           ── Vote(Blob) ───────────► RaftGrpc ─► Raft::vote
//! Peer::full_snapshot  ── InstallSnapshot(stream SnapshotChunk) ──► receive_snapshot
//!                          header, then ≤1 MiB file pieces          ─► incoming/<id>/ (checked)
//!                          each with its xxh3                        ─► Raft::install_full_snapshot
//! follower ── Propose / ReadIndex ──► leader (forwarded writes and read-index requests)
//! any node ── Admin(ADD_VOTER / REMOVE_NODE) ──► leader (membership changes, node.rs)
//! ```
//!
//! Payloads are O11y's binary encoding (`codec`) inside `bytes` fields. Channels connect
//! lazily and reconnect by themselves; an unreachable peer is reported as `Unreachable`, so
//! openraft backs off (exponentially, 50 ms up to 2 s) before retrying it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Snapshot, Vote};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use xxhash_rust::xxh3::xxh3_64;

use crate::codec::{self, Reader};
use crate::command::{Request, Response};
use crate::node::{MembershipError, ProposeError, RaftNode};
use crate::pb;
use crate::sim::SimRouter;
use crate::state_machine::{decode_snapshot_meta, encode_snapshot_meta, SnapshotFiles};
use crate::TypeConfig;

/// Largest gRPC message (append-entries batches of large entries).
pub const MAX_MESSAGE_BYTES: usize = 512 << 20;
/// Size of one snapshot piece.
const SNAPSHOT_CHUNK: u64 = 1 << 20;
/// Entry bytes sent in one AppendEntries RPC (at least one entry is always sent).
///
/// openraft bounds every AppendEntries call by the heartbeat interval (50–100 ms) and backs
/// off for seconds after a timeout. Its own limit counts entries (`max_payload_entries`),
/// and coalesced entries reach `max_entry_bytes` (1 MiB) each, so a lagging follower was sent
/// hundreds of MiB at once, timed out every time and never caught up. A few MiB go through
/// loopback, the follower's log append and its fsync well within the interval.
///
/// 1 MiB with a 100 ms heartbeat: with 2 MiB and 50 ms, appends under remote_write load on
/// two shared cores took longer than the interval (ingest-bench `--spawn 3`); with 512 KiB
/// the one request in flight per follower carried too little (80k samples/s, against 133k).
pub const MAX_APPEND_BYTES: usize = 1 << 20;

/// How nodes reach each other.
#[derive(Clone)]
pub enum Transport {
    /// tonic gRPC to the addresses in the membership.
    Grpc,
    /// Direct calls through an in-process router with fault injection (tests).
    Sim(Arc<SimRouter>),
}

/// openraft's network factory.
pub struct Network {
    from: u64,
    transport: Transport,
    timeout: Duration,
}

impl Network {
    pub fn new(from: u64, transport: Transport, timeout: Duration) -> Network {
        Network {
            from,
            transport,
            timeout,
        }
    }
}

/// A connection to one peer.
pub struct Peer {
    from: u64,
    target: u64,
    inner: PeerInner,
}

enum PeerInner {
    Grpc(PeerClient),
    Sim(Arc<SimRouter>),
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        Peer {
            from: self.from,
            target,
            inner: match &self.transport {
                Transport::Grpc => PeerInner::Grpc(PeerClient::new(&node.addr, self.timeout)),
                Transport::Sim(r) => PeerInner::Sim(r.clone()),
            },
        }
    }
}

pub(crate) type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

fn status_to_rpc<E: std::error::Error>(s: Status) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown => {
            RPCError::Unreachable(Unreachable::new(&s))
        }
        _ => RPCError::Network(NetworkError::new(&s)),
    }
}

fn decode_err<E: std::error::Error>(
    e: codec::DecodeError,
) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match &self.inner {
            PeerInner::Grpc(c) => {
                let mut rpc = rpc;
                let sent = limit_append_bytes(&mut rpc, MAX_APPEND_BYTES);
                let data = Bytes::from(codec::encode_append_entries(&rpc));
                let mut req = GrpcRequest::new(pb::Blob { data });
                req.set_timeout(option.hard_ttl());
                let resp = c
                    .client()
                    .append_entries(req)
                    .await
                    .map_err(status_to_rpc)?;
                let resp =
                    codec::decode_append_response(&resp.into_inner().data).map_err(decode_err)?;
                Ok(match (resp, sent) {
                    // Only a prefix was sent: openraft sends the rest next.
                    (AppendEntriesResponse::Success, Some(last)) => {
                        AppendEntriesResponse::PartialSuccess(Some(last))
                    }
                    (r, _) => r,
                })
            }
            PeerInner::Sim(r) => r.append_entries(self.from, self.target, rpc).await,
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        match &self.inner {
            PeerInner::Grpc(c) => {
                let data = Bytes::from(codec::encode_vote_request(&rpc));
                let mut req = GrpcRequest::new(pb::Blob { data });
                req.set_timeout(option.hard_ttl());
                let resp = c.client().vote(req).await.map_err(status_to_rpc)?;
                codec::decode_vote_response(&resp.into_inner().data).map_err(decode_err)
            }
            PeerInner::Sim(r) => r.vote(self.from, self.target, rpc).await,
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let chunks = snapshot_chunks(vote, snapshot);
        let send = async {
            match &self.inner {
                PeerInner::Grpc(c) => {
                    let stream = chunks.map(|c| {
                        c.unwrap_or_else(|e| {
                            // A local read error: send a chunk the receiver rejects, ending the stream.
                            tracing::error!(%e, "reading snapshot file");
                            pb::SnapshotChunk {
                                file: u32::MAX,
                                ..Default::default()
                            }
                        })
                    });
                    let resp =
                        c.client()
                            .install_snapshot(stream)
                            .await
                            .map_err(|s| match s.code() {
                                tonic::Code::Unavailable => {
                                    StreamingError::Unreachable(Unreachable::new(&s))
                                }
                                _ => StreamingError::Network(NetworkError::new(&s)),
                            })?;
                    codec::decode_snapshot_response(&resp.into_inner().data)
                        .map_err(|e| StreamingError::Network(NetworkError::new(&e)))
                }
                PeerInner::Sim(r) => r.snapshot(self.from, self.target, chunks).await,
            }
        };
        tokio::select! {
            r = send => r,
            closed = cancel => Err(StreamingError::Closed(closed)),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(
            (0..)
                .map(|i: u32| Duration::from_millis(50u64 << i.min(5)).min(Duration::from_secs(2))),
        )
    }
}

/// Keeps the longest prefix of `rpc.entries` within `max_bytes` of payload (at least one
/// entry). Returns the id of the last entry kept when entries were dropped: the follower's
/// `Success` then means `PartialSuccess` up to it. Safe because a follower commits only up to
/// the last entry it accepted from this leader, whatever `leader_commit` says.
pub(crate) fn limit_append_bytes(
    rpc: &mut AppendEntriesRequest<TypeConfig>,
    max_bytes: usize,
) -> Option<openraft::LogId<u64>> {
    let mut bytes = 0usize;
    let mut keep = rpc.entries.len();
    for (i, e) in rpc.entries.iter().enumerate() {
        bytes += match &e.payload {
            openraft::EntryPayload::Normal(r) => r.as_bytes().len(),
            _ => 64,
        };
        if bytes > max_bytes && i > 0 {
            keep = i;
            break;
        }
    }
    if keep == rpc.entries.len() {
        return None;
    }
    rpc.entries.truncate(keep);
    rpc.entries.last().map(|e| e.log_id)
}

/// The pieces of a snapshot: a header, then every file in pieces of up to 1 MiB.
pub(crate) fn snapshot_chunks(
    vote: Vote<u64>,
    snapshot: Snapshot<TypeConfig>,
) -> impl Stream<Item = std::io::Result<pb::SnapshotChunk>> + Send + 'static {
    let mut header = Vec::new();
    codec::put_vote(&mut header, &vote);
    header.extend_from_slice(&encode_snapshot_meta(
        &snapshot.meta,
        &snapshot.snapshot.files,
    ));
    let first = pb::SnapshotChunk {
        header: Bytes::from(header),
        ..Default::default()
    };
    let SnapshotFiles { dir, files } = *snapshot.snapshot;
    let pieces = futures::stream::unfold(
        (0usize, 0u64, None::<fs::File>),
        move |(mut i, mut off, mut file)| {
            let dir = dir.clone();
            let files = files.clone();
            async move {
                loop {
                    let f = files.get(i)?;
                    if off >= f.len {
                        i += 1;
                        off = 0;
                        file = None;
                        continue;
                    }
                    if file.is_none() {
                        match fs::File::open(dir.join(&f.path)) {
                            Ok(h) => file = Some(h),
                            Err(e) => return Some((Err(e), (usize::MAX, 0, None))),
                        }
                    }
                    let n = (f.len - off).min(SNAPSHOT_CHUNK) as usize;
                    let mut buf = vec![0u8; n];
                    if let Err(e) = file.as_ref().expect("opened").read_exact_at(&mut buf, off) {
                        return Some((Err(e), (usize::MAX, 0, None)));
                    }
                    let chunk = pb::SnapshotChunk {
                        header: Bytes::new(),
                        file: i as u32,
                        offset: off,
                        checksum: xxh3_64(&buf),
                        data: Bytes::from(buf),
                    };
                    return Some((Ok(chunk), (i, off + n as u64, file)));
                }
            }
        },
    );
    futures::stream::iter([Ok(first)]).chain(pieces)
}

/// Receives a streamed snapshot into `incoming/`, verifies every piece and length, then hands
/// it to openraft, which installs it through the state machine.
pub(crate) async fn receive_snapshot<S>(
    node: &RaftNode,
    mut chunks: S,
) -> Result<SnapshotResponse<u64>, Status>
where
    S: Stream<Item = Result<pb::SnapshotChunk, Status>> + Unpin,
{
    let first = chunks
        .next()
        .await
        .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
    let mut r = Reader::new("snapshot header", &first.header);
    let vote = codec::vote(&mut r).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let rest = &first.header[first.header.len() - r.remaining()..];
    let (meta, files) =
        decode_snapshot_meta(rest).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = node
        .state_machine()
        .incoming_dir()
        .join(format!("{}-{stamp}", meta.snapshot_id.replace('/', "_")));
    let res = receive_files(&dir, &files, &mut chunks).await;
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    let snap = Snapshot {
        meta: meta.clone(),
        snapshot: Box::new(SnapshotFiles {
            dir: dir.clone(),
            files,
        }),
    };
    let r = node.raft().install_full_snapshot(vote, snap).await;
    let _ = fs::remove_dir_all(&dir);
    r.map_err(|e| Status::internal(e.to_string()))
}

async fn receive_files<S>(
    dir: &PathBuf,
    files: &[crate::state_machine::SnapshotFileInfo],
    chunks: &mut S,
) -> Result<(), Status>
where
    S: Stream<Item = Result<pb::SnapshotChunk, Status>> + Unpin,
{
    let io = |e: std::io::Error| Status::internal(format!("writing snapshot: {e}"));
    fs::create_dir_all(dir).map_err(io)?;
    let mut handles: Vec<Option<fs::File>> = Vec::new();
    let mut written = vec![0u64; files.len()];
    for f in files {
        let p = dir.join(&f.path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        handles.push(Some(fs::File::create(&p).map_err(io)?));
    }
    while let Some(c) = chunks.next().await {
        let c = c?;
        let i = c.file as usize;
        let Some(f) = files.get(i) else {
            return Err(Status::invalid_argument(format!(
                "snapshot piece for unknown file {i}"
            )));
        };
        if c.offset != written[i] || c.offset + c.data.len() as u64 > f.len {
            return Err(Status::invalid_argument(format!(
                "snapshot piece of {} at {} does not continue {} ({} of {} bytes)",
                f.path, c.offset, f.path, written[i], f.len
            )));
        }
        if xxh3_64(&c.data) != c.checksum {
            return Err(Status::data_loss(format!(
                "snapshot piece of {} at {} fails its checksum",
                f.path, c.offset
            )));
        }
        handles[i]
            .as_mut()
            .expect("open")
            .write_all(&c.data)
            .map_err(io)?;
        written[i] += c.data.len() as u64;
    }
    for (i, f) in files.iter().enumerate() {
        if written[i] != f.len {
            return Err(Status::data_loss(format!(
                "snapshot stream ended with {} at {} of {} bytes",
                f.path, written[i], f.len
            )));
        }
        handles[i].take().expect("open").sync_all().map_err(io)?;
    }
    Ok(())
}

/// A gRPC client to one node (lazily connected, reconnecting).
#[derive(Clone)]
pub struct PeerClient {
    client: pb::raft_client::RaftClient<Channel>,
}

impl PeerClient {
    /// A client for `addr` (`host:port`). Connects on first use.
    pub fn new(addr: &str, timeout: Duration) -> PeerClient {
        let uri = if addr.starts_with("http://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let ep = Endpoint::from_shared(uri)
            .unwrap_or_else(|_| Endpoint::from_static("http://invalid.invalid:1"))
            .connect_timeout(timeout.min(Duration::from_secs(1)))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let client = pb::raft_client::RaftClient::new(ep.connect_lazy())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        PeerClient { client }
    }

    /// The raw generated client.
    pub fn client(&self) -> pb::raft_client::RaftClient<Channel> {
        self.client.clone()
    }

    /// Proposes an encoded request on the node (which must lead).
    pub async fn propose(&self, req: Request, timeout: Duration) -> Result<Response, ProposeError> {
        let mut r = GrpcRequest::new(pb::Blob {
            data: req.as_bytes().clone(),
        });
        r.set_timeout(timeout);
        let resp = self.client().propose(r).await.map_err(status_to_propose)?;
        Response::decode(&resp.into_inner().data).map_err(|e| ProposeError::Forward(e.to_string()))
    }

    /// Writes commands through the node (any node: it forwards to the leader).
    pub async fn write(
        &self,
        commands: &[crate::command::Command],
        timeout: Duration,
    ) -> Result<Response, ProposeError> {
        let mut r = GrpcRequest::new(pb::Blob {
            data: Request::encode(commands).as_bytes().clone(),
        });
        r.set_timeout(timeout);
        let resp = self.client().write(r).await.map_err(status_to_propose)?;
        Response::decode(&resp.into_inner().data).map_err(|e| ProposeError::Forward(e.to_string()))
    }

    /// Asks the node (which must lead) for a read index.
    pub async fn read_index(&self) -> Result<u64, ProposeError> {
        let resp = self
            .client()
            .read_index(pb::Empty {})
            .await
            .map_err(status_to_propose)?;
        Ok(resp.into_inner().index)
    }

    /// Runs an admin operation (status, membership changes) on the node.
    pub async fn admin(&self, req: pb::AdminRequest) -> Result<pb::StatusReply, Status> {
        self.client().admin(req).await.map(|r| r.into_inner())
    }

    /// Asks the node (which must lead) to make `id` at `addr` a voter
    /// ([`RaftNode::add_voter_local`]); `timeout` covers the new node's catch-up.
    pub async fn add_voter(
        &self,
        id: u64,
        addr: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        let mut r = GrpcRequest::new(pb::AdminRequest {
            op: pb::admin_request::Op::AddVoter as i32,
            node_id: id,
            addr: addr.to_string(),
            voters: vec![],
        });
        r.set_timeout(timeout);
        self.client()
            .admin(r)
            .await
            .map(|_| ())
            .map_err(status_to_membership)
    }

    /// Asks the node (which must lead) to remove `id` ([`RaftNode::remove_member_local`]).
    pub async fn remove_member(&self, id: u64, timeout: Duration) -> Result<(), MembershipError> {
        let mut r = GrpcRequest::new(pb::AdminRequest {
            op: pb::admin_request::Op::RemoveNode as i32,
            node_id: id,
            addr: String::new(),
            voters: vec![],
        });
        r.set_timeout(timeout);
        self.client()
            .admin(r)
            .await
            .map(|_| ())
            .map_err(status_to_membership)
    }

    /// Reads series from the node.
    pub async fn query(&self, req: pb::QueryRequest) -> Result<pb::QueryReply, Status> {
        self.client().query(req).await.map(|r| r.into_inner())
    }
}

fn status_to_propose(s: Status) -> ProposeError {
    match s.code() {
        tonic::Code::DeadlineExceeded => ProposeError::Timeout(Duration::ZERO),
        tonic::Code::Internal | tonic::Code::InvalidArgument | tonic::Code::DataLoss => {
            ProposeError::Fatal(s.message().to_string())
        }
        _ => ProposeError::Forward(format!("{}: {}", s.code(), s.message())),
    }
}

fn status_to_membership(s: Status) -> MembershipError {
    match s.code() {
        tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument => {
            MembershipError::Refused(s.message().to_string())
        }
        tonic::Code::Internal | tonic::Code::DataLoss => {
            MembershipError::Fatal(s.message().to_string())
        }
        _ => MembershipError::Unavailable(ProposeError::Forward(format!(
            "{}: {}",
            s.code(),
            s.message()
        ))),
    }
}

/// Maps a membership error to a gRPC status (retriable ones are `Unavailable`, refusals
/// `FailedPrecondition`).
pub fn membership_to_status(e: MembershipError) -> Status {
    match e {
        MembershipError::Refused(m) => Status::failed_precondition(m),
        MembershipError::Fatal(m) => Status::internal(m),
        other => Status::unavailable(other.to_string()),
    }
}

/// Maps a proposal error to a gRPC status (retriable ones are `Unavailable`).
pub fn propose_to_status(e: ProposeError) -> Status {
    match e {
        ProposeError::Fatal(m) => Status::internal(m),
        ProposeError::Timeout(_) => Status::deadline_exceeded(e.to_string()),
        other => Status::unavailable(other.to_string()),
    }
}

/// The gRPC service of one node.
pub struct RaftGrpc {
    node: Arc<RaftNode>,
}

/// Serves the node's gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    node: Arc<RaftNode>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let svc = pb::raft_server::RaftServer::new(RaftGrpc { node })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(svc)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
}

fn raft_status<E: std::fmt::Display>(e: E) -> Status {
    Status::internal(e.to_string())
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftGrpc {
    async fn append_entries(
        &self,
        req: GrpcRequest<pb::Blob>,
    ) -> Result<GrpcResponse<pb::Blob>, Status> {
        let rpc = codec::decode_append_entries(req.into_inner().data)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let resp = self
            .node
            .raft()
            .append_entries(rpc)
            .await
            .map_err(raft_status)?;
        Ok(GrpcResponse::new(pb::Blob {
            data: Bytes::from(codec::encode_append_response(&resp)),
        }))
    }

    async fn vote(&self, req: GrpcRequest<pb::Blob>) -> Result<GrpcResponse<pb::Blob>, Status> {
        let rpc = codec::decode_vote_request(&req.into_inner().data)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let resp = self.node.raft().vote(rpc).await.map_err(raft_status)?;
        Ok(GrpcResponse::new(pb::Blob {
            data: Bytes::from(codec::encode_vote_response(&resp)),
        }))
    }

    async fn install_snapshot(
        &self,
        req: GrpcRequest<tonic::Streaming<pb::SnapshotChunk>>,
    ) -> Result<GrpcResponse<pb::Blob>, Status> {
        let resp = receive_snapshot(&self.node, req.into_inner()).await?;
        Ok(GrpcResponse::new(pb::Blob {
            data: Bytes::from(codec::encode_snapshot_response(&resp)),
        }))
    }

    async fn propose(&self, req: GrpcRequest<pb::Blob>) -> Result<GrpcResponse<pb::Blob>, Status> {
        let r = Request::from_encoded(req.into_inner().data);
        r.decode()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let resp = self
            .node
            .propose_local(r)
            .await
            .map_err(propose_to_status)?;
        Ok(GrpcResponse::new(pb::Blob {
            data: Bytes::from(resp.encode()),
        }))
    }

    async fn write(&self, req: GrpcRequest<pb::Blob>) -> Result<GrpcResponse<pb::Blob>, Status> {
        let commands = Request::from_encoded(req.into_inner().data)
            .decode()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let results = self
            .node
            .propose(commands)
            .await
            .map_err(propose_to_status)?;
        Ok(GrpcResponse::new(pb::Blob {
            data: Bytes::from(Response { results }.encode()),
        }))
    }

    async fn read_index(
        &self,
        _req: GrpcRequest<pb::Empty>,
    ) -> Result<GrpcResponse<pb::ReadIndexReply>, Status> {
        let index = self
            .node
            .read_index_local()
            .await
            .map_err(propose_to_status)?;
        Ok(GrpcResponse::new(pb::ReadIndexReply { index }))
    }

    async fn admin(
        &self,
        req: GrpcRequest<pb::AdminRequest>,
    ) -> Result<GrpcResponse<pb::StatusReply>, Status> {
        use pb::admin_request::Op;
        let req = req.into_inner();
        let op = Op::try_from(req.op).map_err(|_| Status::invalid_argument("unknown admin op"))?;
        let res = match op {
            Op::Status => Ok(()),
            Op::AddLearner => {
                if req.addr.is_empty() {
                    return Err(Status::invalid_argument("add-learner needs an address"));
                }
                self.node.add_learner(req.node_id, &req.addr).await
            }
            Op::ChangeMembership => {
                if req.voters.is_empty() {
                    return Err(Status::invalid_argument("change-membership needs voters"));
                }
                self.node
                    .change_membership(req.voters.iter().copied().collect(), true)
                    .await
            }
            Op::RemoveNode => {
                return match self.node.remove_member_local(req.node_id).await {
                    Ok(()) => Ok(GrpcResponse::new(status_reply(&self.node))),
                    Err(e) => Err(membership_to_status(e)),
                }
            }
            Op::AddVoter => {
                return match self.node.add_voter_local(req.node_id, &req.addr).await {
                    Ok(()) => Ok(GrpcResponse::new(status_reply(&self.node))),
                    Err(e) => Err(membership_to_status(e)),
                }
            }
        };
        res.map_err(propose_to_status)?;
        Ok(GrpcResponse::new(status_reply(&self.node)))
    }

    async fn query(
        &self,
        req: GrpcRequest<pb::QueryRequest>,
    ) -> Result<GrpcResponse<pb::QueryReply>, Status> {
        let req = req.into_inner();
        if req.linearizable {
            self.node.read_barrier().await.map_err(propose_to_status)?;
        }
        query_local(&self.node, &req).map(GrpcResponse::new)
    }
}

/// This node's status as a gRPC reply.
pub fn status_reply(node: &RaftNode) -> pb::StatusReply {
    let s = node.status();
    pb::StatusReply {
        node_id: s.id,
        role: s.role,
        term: s.term,
        leader_id: s.leader.unwrap_or(0),
        leader_addr: s.leader_addr.unwrap_or_default(),
        last_log_index: s.last_log_index,
        committed_index: 0,
        applied_index: s.applied_index,
        voters: s.voters,
        learners: s.learners,
        membership: s.membership,
    }
}

/// Runs a query against the node's local engine.
pub fn query_local(node: &RaftNode, req: &pb::QueryRequest) -> Result<pb::QueryReply, Status> {
    use o11y_tsdb::matcher::{MatchOp, Matcher};
    if req.ops.len() != req.names.len() || req.names.len() != req.values.len() {
        return Err(Status::invalid_argument("matcher fields differ in length"));
    }
    let mut matchers = Vec::with_capacity(req.ops.len());
    for ((op, n), v) in req.ops.iter().zip(&req.names).zip(&req.values) {
        let op = match op {
            0 => MatchOp::Equal,
            1 => MatchOp::NotEqual,
            2 => MatchOp::Regex,
            3 => MatchOp::NotRegex,
            o => return Err(Status::invalid_argument(format!("unknown matcher op {o}"))),
        };
        matchers.push(
            Matcher::new(op, n.as_str(), v.as_str())
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        );
    }
    let applied_index = node.state_machine().last_applied().map_or(0, |l| l.index);
    let db = node.db();
    let series = db
        .select(&req.tenant, &matchers, req.mint, req.maxt)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut reply = pb::QueryReply {
        applied_index,
        ..Default::default()
    };
    for s in series.iter() {
        let samples = s.samples().map_err(|e| Status::internal(e.to_string()))?;
        reply.series.push(s.labels().to_string());
        reply.sample_counts.push(samples.len() as u32);
        for (t, v) in samples {
            reply.timestamps.push(t);
            reply.value_bits.push(v.to_bits());
        }
    }
    Ok(reply)
}

/// Used by the simulated router to call a node's snapshot receiver directly.
pub(crate) async fn deliver_snapshot<S>(
    node: &RaftNode,
    chunks: S,
) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>>
where
    S: Stream<Item = std::io::Result<pb::SnapshotChunk>> + Unpin,
{
    let chunks = chunks.map(|c| c.map_err(|e| Status::internal(e.to_string())));
    receive_snapshot(node, chunks)
        .await
        .map_err(|s| StreamingError::Network(NetworkError::new(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    fn entry(index: u64, bytes: usize) -> Entry<TypeConfig> {
        let mut b = vec![1u8, 0];
        b.resize(bytes, 0);
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Request::from_encoded(Bytes::from(b))),
        }
    }

    fn rpc(sizes: &[usize]) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: sizes
                .iter()
                .enumerate()
                .map(|(i, s)| entry(i as u64 + 1, *s))
                .collect(),
        }
    }

    #[test]
    fn append_rpcs_are_cut_to_the_byte_budget() {
        // Within the budget (and heartbeats): unchanged.
        let mut r = rpc(&[100, 200, 300]);
        assert_eq!(limit_append_bytes(&mut r, 600), None);
        assert_eq!(r.entries.len(), 3);
        let mut r = rpc(&[]);
        assert_eq!(limit_append_bytes(&mut r, 600), None);
        // Over it: the longest prefix within it, reported by its last id.
        let mut r = rpc(&[100, 200, 300, 50]);
        let last = limit_append_bytes(&mut r, 400);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(last.map(|l| l.index), Some(2));
        // One entry larger than the budget still goes alone.
        let mut r = rpc(&[5000, 10]);
        let last = limit_append_bytes(&mut r, 400);
        assert_eq!(r.entries.len(), 1);
        assert_eq!(last.map(|l| l.index), Some(1));
    }
}
