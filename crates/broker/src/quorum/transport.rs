//! Raft messages between voters: one outbound TCP connection per peer, to its
//! controller listener, carrying [`gregor_quorum::wire`] frames. Messages are sent
//! best effort, as Raft expects of its network: while a peer is unreachable its
//! messages are dropped and raft-rs sends again. Inbound frames arrive on this
//! node's controller listener (see [`crate::connection`]) and are stepped by the
//! driver.

use super::Command;
use bytes::Bytes;
use gregor_config::QuorumVoter;
use gregor_quorum::wire::{decode_refusal, encode_frame, RaftFrame, MESSAGES_PER_FRAME_MAX};
use gregor_quorum::Message;
use std::collections::HashMap;
use std::sync::mpsc::SyncSender;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Batches of messages queued for one peer; beyond this they are dropped.
const QUEUED_BATCHES_MAX: usize = 1024;
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The senders of every peer link, used by the driver thread.
#[derive(Clone)]
pub struct PeerLinks {
    links: HashMap<u64, mpsc::Sender<Vec<Message>>>,
}

impl PeerLinks {
    /// Starts one link task per voter other than `self_id`, on the current runtime.
    pub fn start(
        self_id: i32,
        cluster_id: &str,
        voters: &[QuorumVoter],
        commands: SyncSender<Command>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> PeerLinks {
        let mut links = HashMap::new();
        for voter in voters.iter().filter(|voter| voter.id != self_id) {
            let (sender, receiver) = mpsc::channel(QUEUED_BATCHES_MAX);
            let Ok(peer_id) = u64::try_from(voter.id) else { continue };
            links.insert(peer_id, sender);
            let link = Link {
                self_id,
                peer_id,
                address: format!("{}:{}", voter.host, voter.port),
                cluster_id: cluster_id.to_owned(),
                commands: commands.clone(),
            };
            tokio::spawn(link.run(receiver, shutdown.clone()));
        }
        PeerLinks { links }
    }

    /// Queues messages for their peers; returns false for a peer whose queue is full
    /// or that is unknown (the messages to it are dropped).
    pub fn send(&self, to: u64, messages: Vec<Message>) -> bool {
        match self.links.get(&to) {
            Some(link) => link.try_send(messages).is_ok(),
            None => false,
        }
    }
}

struct Link {
    self_id: i32,
    peer_id: u64,
    address: String,
    cluster_id: String,
    commands: SyncSender<Command>,
}

impl Link {
    async fn run(self, mut queued: mpsc::Receiver<Vec<Message>>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = RECONNECT_BACKOFF_MIN;
        let mut correlation_id = 0i32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let stream = tokio::select! {
                connected = TcpStream::connect(&self.address) => connected,
                _ = shutdown.changed() => return,
            };
            let stream = match stream {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(
                        peer = self.peer_id,
                        "cannot reach voter {} at {}: {error}",
                        self.peer_id,
                        self.address
                    );
                    let _ = self.commands.try_send(Command::Unreachable(self.peer_id));
                    // Messages queued meanwhile are stale by the time the peer is back.
                    while queued.try_recv().is_ok() {}
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                    continue;
                }
            };
            backoff = RECONNECT_BACKOFF_MIN;
            let _ = stream.set_nodelay(true);
            let (mut read_half, mut write_half) = stream.into_split();
            let peer_id = self.peer_id;
            let address = self.address.clone();
            // The peer writes only to refuse us; read that and say why.
            let refusals = tokio::spawn(async move {
                let mut size = [0u8; 4];
                if read_half.read_exact(&mut size).await.is_err() {
                    return;
                }
                let size = usize::try_from(i32::from_be_bytes(size)).unwrap_or(0).min(64 * 1024);
                let mut body = vec![0u8; size];
                if read_half.read_exact(&mut body).await.is_ok() {
                    if let Ok((code, message)) = decode_refusal(Bytes::from(body)) {
                        tracing::error!("voter {peer_id} at {address} refused this node (error {code}): {message}");
                    }
                }
            });
            loop {
                let batch = tokio::select! {
                    batch = queued.recv() => batch,
                    _ = shutdown.changed() => None,
                };
                let Some(mut messages) = batch else {
                    refusals.abort();
                    return;
                };
                while messages.len() < MESSAGES_PER_FRAME_MAX {
                    match queued.try_recv() {
                        Ok(more) => messages.extend(more),
                        Err(_) => break,
                    }
                }
                correlation_id = correlation_id.wrapping_add(1);
                let frame = RaftFrame { cluster_id: self.cluster_id.clone(), from_node: self.self_id, messages };
                let bytes = match encode_frame(&frame, correlation_id) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        tracing::warn!("cannot encode Raft messages for voter {}: {error}", self.peer_id);
                        continue;
                    }
                };
                if let Err(error) = write_half.write_all(&bytes).await {
                    tracing::debug!("lost the connection to voter {}: {error}", self.peer_id);
                    let _ = self.commands.try_send(Command::Unreachable(self.peer_id));
                    break;
                }
                if refusals.is_finished() {
                    break;
                }
            }
            refusals.abort();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
