//! Several `gregor` processes on 127.0.0.1 forming one cluster: every node has
//! both roles, a client listener and a CONTROLLER listener, and the voters are
//! listed statically (`controller.quorum.voters`), as a Kafka operator configures
//! a KRaft cluster.

use crate::raw::RawConn;
use crate::BrokerProcess;
use anyhow::{bail, Context, Result};
use gregor_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use gregor_protocol::messages::{CreateTopicsRequest, DescribeQuorumRequest};
use gregor_protocol::ResponseBody;
use std::time::{Duration, Instant};

pub const CLUSTER_ID: &str = "R3JlZ29yQ2x1c3RlclRlcw";

pub struct Cluster {
    /// Node `i + 1` is `nodes[i]`; `None` while stopped by the test.
    pub nodes: Vec<BrokerProcess>,
    pub client_ports: Vec<u16>,
    pub controller_ports: Vec<u16>,
    running: Vec<bool>,
}

/// Ports free now (bound to 0 and released), for listeners that must be known
/// before the nodes start.
pub fn free_ports(count: usize) -> Result<Vec<u16>> {
    let sockets: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<std::io::Result<_>>()?;
    sockets.iter().map(|socket| Ok(socket.local_addr()?.port())).collect()
}

impl Cluster {
    /// Starts `count` nodes with `extra` overrides on each.
    pub fn start(count: usize, extra: &[(&str, &str)]) -> Result<Cluster> {
        let ports = free_ports(2 * count)?;
        let (client_ports, controller_ports) = ports.split_at(count);
        let voters: Vec<String> =
            controller_ports.iter().enumerate().map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1)).collect();
        let voters = voters.join(",");
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let node_id = (i + 1).to_string();
            let listeners =
                format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", client_ports[i], controller_ports[i]);
            let mut overrides: Vec<(&str, &str)> = vec![
                ("node.id", &node_id),
                ("listeners", &listeners),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", &voters),
            ];
            overrides.extend_from_slice(extra);
            let node = BrokerProcess::start_with_env(&overrides, &[("CLUSTER_ID", CLUSTER_ID)])
                .with_context(|| format!("starting node {node_id}"))?;
            nodes.push(node);
        }
        Ok(Cluster {
            nodes,
            client_ports: client_ports.to_vec(),
            controller_ports: controller_ports.to_vec(),
            running: vec![true; count],
        })
    }

    /// `controllers` controller-only nodes (ids 1..) and `brokers` broker-only nodes
    /// after them, as Kafka's isolated mode. `client_ports[i]` of a controller is its
    /// controller listener.
    pub fn start_split(controllers: usize, brokers: usize, extra: &[(&str, &str)]) -> Result<Cluster> {
        let count = controllers + brokers;
        let ports = free_ports(count)?;
        let voters: Vec<String> =
            ports[..controllers].iter().enumerate().map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1)).collect();
        let voters = voters.join(",");
        let mut nodes = Vec::with_capacity(count);
        for (i, port) in ports.iter().enumerate() {
            let node_id = (i + 1).to_string();
            let is_controller = i < controllers;
            let listeners = if is_controller {
                format!("CONTROLLER://127.0.0.1:{port}")
            } else {
                format!("PLAINTEXT://127.0.0.1:{port}")
            };
            let roles = if is_controller { "controller" } else { "broker" };
            let mut overrides: Vec<(&str, &str)> = vec![
                ("node.id", &node_id),
                ("process.roles", roles),
                ("listeners", &listeners),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", &voters),
            ];
            overrides.extend_from_slice(extra);
            let node = BrokerProcess::start_with_env(&overrides, &[("CLUSTER_ID", CLUSTER_ID)])
                .with_context(|| format!("starting node {node_id} ({roles})"))?;
            nodes.push(node);
        }
        Ok(Cluster {
            nodes,
            client_ports: ports.clone(),
            controller_ports: ports[..controllers].to_vec(),
            running: vec![true; count],
        })
    }

    pub fn bootstrap(&self) -> String {
        self.client_ports
            .iter()
            .zip(&self.running)
            .filter(|(_, running)| **running)
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&mut self, node_id: i32) -> &mut BrokerProcess {
        &mut self.nodes[(node_id - 1) as usize]
    }

    pub fn kill9(&mut self, node_id: i32) -> Result<()> {
        self.running[(node_id - 1) as usize] = false;
        self.node(node_id).kill9()
    }

    pub fn stop(&mut self, node_id: i32) -> Result<()> {
        self.running[(node_id - 1) as usize] = false;
        self.node(node_id).stop().map(|_| ())
    }

    pub fn start_again(&mut self, node_id: i32) -> Result<()> {
        self.node(node_id).start_again()?;
        self.running[(node_id - 1) as usize] = true;
        Ok(())
    }

    pub fn running_ids(&self) -> Vec<i32> {
        self.running.iter().enumerate().filter(|(_, running)| **running).map(|(i, _)| i as i32 + 1).collect()
    }

    /// The quorum as node `node_id` sees it: (leader id, epoch, high watermark,
    /// voters with their replicated offsets), or None while it knows no leader.
    pub fn describe_quorum(&self, node_id: i32) -> Result<Option<QuorumState>> {
        let port = self.client_ports[(node_id - 1) as usize];
        let mut conn = RawConn::connect(&format!("127.0.0.1:{port}"))?;
        let request = DescribeQuorumRequest {
            topics: vec![TopicData {
                topic_name: "__cluster_metadata".into(),
                partitions: vec![PartitionData { partition_index: 0, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let ResponseBody::DescribeQuorum(response) = conn.round_trip(request, 2, 1)? else {
            bail!("not a DescribeQuorum response")
        };
        let Some(partition) = response.topics.first().and_then(|topic| topic.partitions.first()) else {
            bail!("DescribeQuorum answered no partition: {response:?}")
        };
        if partition.leader_id < 0 {
            return Ok(None);
        }
        Ok(Some(QuorumState {
            leader_id: partition.leader_id,
            epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            answered_by_leader: partition.error_code == 0,
            voters: partition.current_voters.iter().map(|voter| (voter.replica_id, voter.log_end_offset)).collect(),
        }))
    }

    /// The active controller all running nodes agree on, waiting up to `timeout`.
    pub fn wait_for_controller(&self, timeout: Duration) -> Result<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for node_id in self.running_ids() {
                if let Ok(Some(state)) = self.describe_quorum(node_id) {
                    seen.push(state.leader_id);
                }
            }
            if seen.len() == self.running_ids().len() && seen.windows(2).all(|pair| pair[0] == pair[1]) {
                if let Some(leader) = seen.first() {
                    if self.running_ids().contains(leader) {
                        return Ok(*leader);
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("no agreed active controller within {timeout:?} (seen {seen:?})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// CreateTopics through node `node_id`'s client listener; returns the error
    /// code of the topic (0 when created).
    pub fn create_topic(&self, node_id: i32, name: &str, partitions: i32, replication_factor: i16) -> Result<i16> {
        let port = self.client_ports[(node_id - 1) as usize];
        let mut conn = RawConn::connect(&format!("127.0.0.1:{port}"))?;
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor,
                ..Default::default()
            }],
            timeout_ms: 5000,
            ..Default::default()
        };
        conn.send(request, 7, 1)?;
        let (_, response) = conn.read_response(gregor_protocol::ApiKey::CreateTopics, 7, Duration::from_secs(40))?;
        let ResponseBody::CreateTopics(response) = response else { bail!("not a CreateTopics response") };
        Ok(response.topics.first().map_or(-1, |topic| topic.error_code))
    }
}

impl Cluster {
    /// Waits until node `node_id`'s Metadata lists `count` live (registered and
    /// unfenced) brokers.
    pub fn wait_for_brokers(&self, node_id: i32, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let port = self.client_ports[(node_id - 1) as usize];
            let seen = RawConn::connect(&format!("127.0.0.1:{port}"))
                .and_then(|mut conn| conn.round_trip(gregor_protocol::messages::MetadataRequest::default(), 12, 1))
                .map(|response| match response {
                    ResponseBody::Metadata(metadata) => metadata.brokers.len(),
                    _ => 0,
                })
                .unwrap_or(0);
            if seen == count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("node {node_id} lists {seen} live brokers, not {count}, after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Cluster::create_topic`], retried while the cluster is still forming (too
    /// few brokers registered yet, no controller, a timeout) until `timeout`.
    pub fn create_topic_within(
        &self,
        node_id: i32,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        timeout: Duration,
    ) -> Result<i16> {
        const RETRIABLE: [i16; 4] = [38, 41, 7, 5];
        let deadline = Instant::now() + timeout;
        loop {
            let code = self.create_topic(node_id, name, partitions, replication_factor).unwrap_or(-1);
            if (code != -1 && !RETRIABLE.contains(&code)) || Instant::now() >= deadline {
                return Ok(code);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[derive(Debug, Clone)]
pub struct QuorumState {
    pub leader_id: i32,
    pub epoch: i32,
    pub high_watermark: i64,
    /// Only the leader reports the voters' progress.
    pub answered_by_leader: bool,
    pub voters: Vec<(i32, i64)>,
}
