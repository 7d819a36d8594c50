//! Start-up, listeners, background tasks and graceful shutdown.
//!
//! Start-up order: open the log dirs, read or format `meta.properties`, bind the
//! listeners (so port 0 resolves before we advertise it), replay the metadata log,
//! open the hosted partitions, then accept. Shutdown: stop accepting, let every
//! connection finish the request it is handling, then flush and close the logs.

use crate::broker::{Broker, Endpoint};
use crate::connection::{self, RequestBudget};
use crate::connection_quotas::{AcceptBackoff, ConnectionQuotas, ConnectionSlots};
use crate::controller::{Controller, LocalMetadataLog, METADATA_TOPIC};
use crate::error::BrokerError;
use crate::meta_properties::MetaProperties;
use crate::quorum::{ObserverMetadataLog, RaftMetadataLog, SegmentDisk};
use crate::time::now_ms;
use gregor_config::BrokerConfig;
use gregor_storage::LogManager;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A started broker: its bound addresses and the handle to stop it.
pub struct RunningServer {
    pub broker: Arc<Broker>,
    pub addresses: Vec<SocketAddr>,
    pub started_in: Duration,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Stops accepting, waits for connections to finish their current request,
    /// then flushes and closes every log.
    pub async fn shutdown(mut self) -> Result<(), BrokerError> {
        let _ = self.shutdown.send(true);
        // Requests parked in JoinGroup/SyncGroup would hold their connections open
        // until a rebalance timeout; releasing them lets every connection finish now.
        self.broker.groups.shutdown();
        self.broker.txns.shutdown();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(30), drain).await.is_err() {
            tracing::warn!("connections still busy after 30 s; closing the logs anyway");
            self.tasks.abort_all();
        }
        let logs = Arc::clone(&self.broker.logs);
        tokio::task::spawn_blocking(move || logs.shutdown()).await??;
        Ok(())
    }
}

/// Starts a broker with `config` and returns once it accepts connections.
pub async fn run(config: BrokerConfig) -> Result<RunningServer, BrokerError> {
    let started = Instant::now();
    // Identity first: a node refused for another cluster or node.id leaves its dirs untouched.
    let storage_dirs = crate::meta_properties::storage_dirs(&config);
    let node_id = config.node_id;
    let cluster_id = crate::meta_properties::cluster_id_from_env();
    let meta = tokio::task::spawn_blocking(move || {
        MetaProperties::load_or_format(&storage_dirs, node_id, cluster_id.as_deref())
    })
    .await??;
    let (meta, formatted) = meta;
    if formatted {
        tracing::info!(cluster_id = %meta.cluster_id, "formatted new storage");
    }
    let log_dirs = config.log_dirs.clone();
    let logs = Arc::new(tokio::task::spawn_blocking(move || LogManager::open(&log_dirs)).await??);

    let mut listeners = Vec::new();
    let mut endpoints = Vec::new();
    for listener in &config.listeners {
        let address = format!("{}:{}", bind_host(&listener.host), listener.port);
        let bound = TcpListener::bind(&address)
            .await
            .map_err(|source| BrokerError::Bind { address: address.clone(), source })?;
        let local = bound.local_addr().map_err(|source| BrokerError::Bind { address, source })?;
        // The default listener also binds IPv6 loopback on the same port where the
        // host has one, because clients may resolve "localhost" to ::1.
        if config.bind_ipv6_loopback && local.ip().is_loopback() {
            if let Ok(v6) = TcpListener::bind(("::1", local.port())).await {
                if let Ok(local_v6) = v6.local_addr() {
                    listeners.push((v6, local_v6, listener.name.clone()));
                }
            }
        }
        let advertised = config
            .advertised_listeners
            .iter()
            .find(|advertised| advertised.name == listener.name)
            .map(|advertised| (advertised.host.clone(), advertised.port))
            .unwrap_or_else(|| (listener.host.clone(), listener.port));
        let host = if advertised.0.is_empty() || advertised.0 == "0.0.0.0" || advertised.0 == "::" {
            advertised_host_for(&local)
        } else {
            advertised.0
        };
        let port = if advertised.1 == 0 { local.port() } else { advertised.1 };
        // Controller listeners are for the nodes of the cluster, never advertised to clients.
        if !config.controller_listener_names.contains(&listener.name) {
            endpoints.push(Endpoint { listener_name: listener.name.clone(), host, port });
        }
        listeners.push((bound, local, listener.name.clone()));
    }
    listeners.sort_by_key(|(_, address, _)| address.is_ipv6());

    let clustered = !config.controller_quorum_voters.is_empty();
    if !clustered && !config.controller_quorum_bootstrap_servers.is_empty() {
        return Err(BrokerError::Cluster(
            "controller.quorum.bootstrap.servers without controller.quorum.voters asks for a dynamic quorum \
             (KIP-853), which Gregor does not run yet: list the voters in controller.quorum.voters \
             (1@host:port,2@host:port,...)"
                .into(),
        ));
    }
    let roles = config.process_roles;
    let controller = if clustered && roles.controller {
        Controller::replicated(RaftMetadataLog::new(&config, &meta.cluster_id))
    } else if clustered {
        Controller::observing(ObserverMetadataLog::new(&config, &meta.cluster_id))
    } else {
        let logs = Arc::clone(&logs);
        let node_id = config.node_id;
        Controller::local(tokio::task::spawn_blocking(move || LocalMetadataLog::open(&logs, node_id)).await??)
    };
    let mut broker = Broker::new(config, meta.cluster_id.clone(), endpoints, logs, controller);
    broker.log_dir_ids = vec![meta.directory_id];
    let broker = Arc::new(broker);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    match broker.controller.quorum.clone() {
        Some(quorum) => {
            let broker = Arc::clone(&broker);
            let shutdown = shutdown_rx.clone();
            tokio::task::spawn_blocking(move || {
                let disk = open_quorum_disk(&broker)?;
                quorum.start(&broker, disk, shutdown)
            })
            .await??;
        }
        // A broker-only node starts empty and fetches the metadata from the quorum.
        None if broker.controller.observer.is_some() => {}
        None => {
            let broker = Arc::clone(&broker);
            tokio::task::spawn_blocking(move || broker.load_metadata()).await??;
        }
    }
    // Group coordinator shards load in the background; their groups answer
    // COORDINATOR_LOAD_IN_PROGRESS until then.
    broker.groups.sync_with(&broker);
    broker.txns.sync_with(&broker);

    let mut tasks = JoinSet::new();
    let limits = Arc::new(Limits {
        connections: Arc::new(ConnectionSlots::default()),
        quotas: Arc::new(ConnectionQuotas::default()),
        budget: Arc::new(RequestBudget::new(&broker.config())),
    });
    let addresses: Vec<SocketAddr> = listeners.iter().map(|(_, address, _)| *address).collect();
    for (listener, _, name) in listeners {
        tasks.spawn(accept_loop(Arc::clone(&broker), listener, name, Arc::clone(&limits), shutdown_rx.clone()));
    }
    tasks.spawn(background(Arc::clone(&broker), shutdown_rx.clone()));
    if broker.controller.is_clustered() && roles.broker {
        tasks.spawn(crate::cluster::broker_lifecycle(Arc::clone(&broker), shutdown_rx.clone()));
    }
    if broker.controller.quorum.is_some() {
        tasks.spawn(crate::cluster::controller_duties(Arc::clone(&broker), shutdown_rx.clone()));
    }
    if let Some(observer) = broker.controller.observer.clone() {
        tasks.spawn(observer.run(Arc::clone(&broker), shutdown_rx.clone()));
    }
    Ok(RunningServer { broker, addresses, started_in: started.elapsed(), shutdown: shutdown_tx, tasks })
}

fn bind_host(host: &str) -> &str {
    if host.is_empty() {
        "0.0.0.0"
    } else {
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// For a listener on every interface Kafka advertises the host's name; we do the
/// same, falling back to the loopback address when the name is unknown.
fn advertised_host_for(local: &SocketAddr) -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| if local.is_ipv6() { "::1".to_owned() } else { "127.0.0.1".to_owned() })
}

fn connection_limit(config: &BrokerConfig) -> usize {
    usize::try_from(config.max_connections).unwrap_or(0)
}

/// What every listener shares: `max.connections`, the per-address counts and the
/// creation rate, and the budget of queued requests.
struct Limits {
    connections: Arc<ConnectionSlots>,
    quotas: Arc<ConnectionQuotas>,
    budget: Arc<RequestBudget>,
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener: TcpListener,
    name: String,
    limits: Arc<Limits>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut served = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let listener_name = listener.local_addr().map(|address| address.to_string()).unwrap_or_default();
    loop {
        // Like Kafka, wait for a free slot before accepting when max.connections
        // is reached, rather than accepting and dropping.
        let permit = tokio::select! {
            slot = limits.connections.take(|| connection_limit(&broker.config())) => slot,
            _ = shutdown.changed() => break,
        };
        // The connection is not accepted before max.connection.creation.rate allows it.
        let delay = limits.quotas.creation_delay(&broker.config());
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => break,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.succeeded();
                let config = broker.config();
                let slot = match limits.quotas.admit(peer.ip(), &config).await {
                    Ok(slot) => slot,
                    Err(reason) => {
                        // As Kafka: accepted, then closed at once.
                        tracing::info!("{reason} (max.connections.per.ip)");
                        drop(stream);
                        continue;
                    }
                };
                drop(config);
                let broker = Arc::clone(&broker);
                let shutdown = shutdown.clone();
                let budget = Arc::clone(&limits.budget);
                let name = name.clone();
                served.spawn(async move {
                    connection::serve(broker, stream, peer, &name, budget, shutdown).await;
                    drop(slot);
                    drop(permit);
                });
            }
            Err(error) => {
                drop(permit);
                let wait = backoff.failed(&error, &listener_name);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
        // Reap finished connections so the set stays as large as the live ones.
        while served.try_join_next().is_some() {}
    }
    drop(listener);
    while served.join_next().await.is_some() {}
}

/// How soon a rolled segment is fsynced (and the recovery point moved past it).
const ROLLED_SYNC_INTERVAL_MS: u64 = 500;

/// Periodic work: retention, time-based flushes, checkpoints, fetch-session expiry,
/// committed-offset expiry.
async fn background(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let config = broker.config();
    let retention_every =
        Duration::from_millis(u64::try_from(config.log_retention_check_interval_ms).unwrap_or(300_000).max(1));
    let checkpoint_every =
        Duration::from_millis(u64::try_from(config.log_flush_offset_checkpoint_interval_ms).unwrap_or(60_000).max(1));
    let flush_every = Duration::from_millis(
        u64::try_from(config.log_flush_scheduler_interval_ms).unwrap_or(u64::MAX).clamp(1, 24 * 3600 * 1000),
    );
    let mut retention = tokio::time::interval(retention_every);
    let mut checkpoint = tokio::time::interval(checkpoint_every);
    let mut flush = tokio::time::interval(flush_every);
    // Rolled segments are synced here rather than under the append lock.
    let mut rolled = tokio::time::interval(Duration::from_millis(ROLLED_SYNC_INTERVAL_MS));
    let mut sessions = tokio::time::interval(Duration::from_secs(1));
    let offsets_every =
        Duration::from_millis(u64::try_from(config.offsets_retention_check_interval_ms).unwrap_or(600_000).max(1));
    let mut offset_expiry = tokio::time::interval(offsets_every);
    let cleaner_every = Duration::from_millis(u64::try_from(config.log_cleaner_backoff_ms).unwrap_or(15_000).max(1));
    let mut cleaner = tokio::time::interval(cleaner_every);
    loop {
        let logs = Arc::clone(&broker.logs);
        let work: Box<dyn FnOnce() + Send> = tokio::select! {
            _ = shutdown.changed() => return,
            _ = retention.tick() => Box::new(move || {
                let deleted = logs.enforce_retention(now_ms());
                if deleted > 0 {
                    tracing::info!("retention deleted {deleted} segments");
                }
            }),
            _ = checkpoint.tick() => Box::new(move || {
                if let Err(error) = logs.checkpoint() {
                    tracing::warn!("checkpoint failed: {error}");
                }
            }),
            _ = cleaner.tick(), if config.log_cleaner_enable => Box::new(move || {
                for (tp, stats) in logs.compact_due(now_ms()) {
                    tracing::info!(
                        "log cleaner: {tp} rewrote {} segments into {}, {} -> {} bytes, {} records removed",
                        stats.segments_rewritten,
                        stats.segments_written,
                        stats.bytes_before,
                        stats.bytes_after,
                        stats.records_removed
                    );
                }
            }),
            _ = rolled.tick() => Box::new(move || logs.sync_rolled()),
            _ = flush.tick() => Box::new(move || {
                if let Err(error) = logs.flush_due(now_ms()) {
                    tracing::warn!("flush failed: {error}");
                }
            }),
            _ = sessions.tick() => {
                broker.fetch_sessions.expire(now_ms());
                continue;
            }
            _ = offset_expiry.tick() => {
                broker.groups.expire_offsets().await;
                continue;
            }
        };
        if let Err(error) = tokio::task::spawn_blocking(work).await {
            tracing::warn!("background task failed: {error}");
        }
    }
}

/// Opens the Raft log of a cluster node in the metadata log's folder. A folder
/// holding a single node's metadata log is refused: its records were never
/// replicated, and a cluster node must not start from them or over them.
fn open_quorum_disk(broker: &Broker) -> Result<SegmentDisk, BrokerError> {
    let tp = gregor_storage::TopicPartition { topic: METADATA_TOPIC.to_owned(), partition: 0 };
    let config =
        gregor_storage::LogConfig { retention_ms: -1, retention_bytes: -1, ..gregor_storage::LogConfig::default() };
    let log = broker.logs.get_or_create(&tp, config, now_ms())?;
    if !SegmentDisk::is_quorum_folder(log.dir()) && log.log_end_offset() > 0 {
        return Err(BrokerError::Cluster(format!(
            "{} holds the metadata log of a single node, not of a cluster member; a cluster node needs its own \
             data folder (log.dirs), formatted with the cluster's id (gregor storage format --cluster-id, or CLUSTER_ID); \
             nothing was changed",
            log.dir().display()
        )));
    }
    Ok(SegmentDisk::new(log))
}
