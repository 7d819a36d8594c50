//! A cluster of real `gregor` processes on 127.0.0.1 (issue 16): the metadata
//! quorum elects an active controller, every broker registers, topics with
//! replication factor 3 are placed across the brokers, the quorum survives the
//! loss of a minority and stops deciding without a majority, a fenced broker's
//! leaderships move, a restarted node catches up, and nodes of another cluster
//! or a single node's data folder are refused.

use anyhow::{bail, Result};
use gregor_integration_tests::cluster::{Cluster, CLUSTER_ID};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::{wait_until, BrokerProcess};
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::{MetadataRequest, MetadataResponse};
use gregor_protocol::ResponseBody;
use std::time::{Duration, Instant};

/// Short sessions so that fencing is quick to observe.
const FAST: &[(&str, &str)] = &[("broker.session.timeout.ms", "2000"), ("broker.heartbeat.interval.ms", "200")];

fn metadata(cluster: &Cluster, node_id: i32, topic: &str) -> Result<MetadataResponse> {
    let port = cluster.client_ports[(node_id - 1) as usize];
    let mut conn = RawConn::connect(&format!("127.0.0.1:{port}"))?;
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic { name: Some(topic.into()), ..Default::default() }]),
        ..Default::default()
    };
    match conn.round_trip(request, 12, 1)? {
        ResponseBody::Metadata(response) => Ok(response),
        other => bail!("not a Metadata response: {:?}", other.api_key()),
    }
}

/// (partition, leader, replicas, isr) of one partition.
type PartitionView = (i32, i32, Vec<i32>, Vec<i32>);

/// Every partition of `topic` as node `node_id` answers.
fn partitions(cluster: &Cluster, node_id: i32, topic: &str) -> Result<Vec<PartitionView>> {
    let response = metadata(cluster, node_id, topic)?;
    let Some(found) = response.topics.iter().find(|t| t.name.as_deref() == Some(topic)) else {
        return Ok(Vec::new());
    };
    Ok(found
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()))
        .collect())
}

#[test]
fn three_nodes_elect_one_controller_register_and_place_rf3_topics_across_brokers() -> Result<()> {
    let cluster = Cluster::start(3, FAST)?;
    let controller = cluster.wait_for_controller(Duration::from_secs(20))?;
    assert!((1..=3).contains(&controller));
    cluster.wait_for_brokers(controller, 3, Duration::from_secs(20))?;
    // Every broker registers: the brokers in Metadata, from any node.
    assert!(
        wait_until(Duration::from_secs(20), || metadata(&cluster, 1, "none")
            .map(|m| m.brokers.len() == 3)
            .unwrap_or(false)),
        "not every broker registered: {:?}",
        metadata(&cluster, 1, "none")?.brokers
    );
    // A topic with replication factor 3, created through a node that may not be
    // the active controller (forwarded), is placed on all three brokers with
    // leaders spread across them.
    let through = if controller == 1 { 2 } else { 1 };
    assert_eq!(cluster.create_topic_within(through, "rf3", 3, 3, Duration::from_secs(20))?, 0);
    let mut placed = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        placed = (1..=3).map(|node| partitions(&cluster, node, "rf3").unwrap_or_default()).collect();
        placed.iter().all(|seen| seen.len() == 3) && placed.windows(2).all(|pair| pair[0] == pair[1])
    }));
    let leaders: std::collections::BTreeSet<i32> = placed[0].iter().map(|(_, leader, _, _)| *leader).collect();
    assert_eq!(leaders.len(), 3, "leaders not spread: {:?}", placed[0]);
    for (_, leader, replicas, isr) in &placed[0] {
        let mut sorted = replicas.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3]);
        assert_eq!(replicas.first(), Some(leader));
        assert_eq!(isr.len(), 3);
    }
    // A replication factor above the broker count is refused as Kafka refuses it.
    assert_eq!(cluster.create_topic(through, "rf4", 1, 4)?, 38, "INVALID_REPLICATION_FACTOR");
    Ok(())
}

#[test]
fn killing_the_active_controller_elects_another_that_decides_within_the_election_timeout_and_a_second() -> Result<()> {
    let mut cluster = Cluster::start(3, FAST)?;
    let mut took_all = Vec::new();
    for round in 0..3 {
        let controller = cluster.wait_for_controller(Duration::from_secs(20))?;
        cluster.wait_for_brokers(controller, 3, Duration::from_secs(20))?;
        assert_eq!(
            cluster.create_topic_within(controller, &format!("before-{round}"), 1, 3, Duration::from_secs(20))?,
            0
        );
        let survivor = (1..=3).find(|id| *id != controller).unwrap_or(1);
        cluster.kill9(controller)?;
        let killed_at = Instant::now();
        let mut created = false;
        while killed_at.elapsed() < Duration::from_secs(10) {
            if cluster.create_topic(survivor, &format!("after-{round}"), 1, 2).unwrap_or(-1) == 0 {
                created = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = killed_at.elapsed();
        assert!(created, "no CreateTopics succeeded within 10 s of killing the active controller");
        let new_controller = cluster.wait_for_controller(Duration::from_secs(5))?;
        assert_ne!(new_controller, controller);
        eprintln!("controller failover {round}: CreateTopics succeeded {took:?} after kill -9");
        took_all.push(took);
        cluster.start_again(controller)?;
    }
    // controller.quorum.election.timeout.ms is 1000 by default. The median of three
    // kills, so that one run slowed by a loaded machine does not decide it.
    took_all.sort();
    assert!(took_all[1] < Duration::from_millis(2000), "failover took {took_all:?}");
    Ok(())
}

#[test]
fn a_fenced_brokers_leaderships_move_to_another_in_sync_replica() -> Result<()> {
    let mut cluster = Cluster::start(3, FAST)?;
    let controller = cluster.wait_for_controller(Duration::from_secs(20))?;
    cluster.wait_for_brokers(controller, 3, Duration::from_secs(20))?;
    assert_eq!(cluster.create_topic_within(controller, "moving", 3, 3, Duration::from_secs(20))?, 0);
    let victim = (1..=3).find(|id| *id != controller).unwrap_or(1);
    let mut before = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        before = partitions(&cluster, controller, "moving").unwrap_or_default();
        before.len() == 3
    }));
    assert!(before.iter().any(|(_, leader, _, _)| *leader == victim));
    cluster.kill9(victim)?;
    // broker.session.timeout.ms is 2 s here: then the controller fences it.
    let mut after = Vec::new();
    let moved = wait_until(Duration::from_secs(10), || {
        after = partitions(&cluster, controller, "moving").unwrap_or_default();
        after.len() == 3
            && after.iter().all(|(_, leader, _, isr)| *leader != victim && *leader >= 0 && !isr.contains(&victim))
    });
    assert!(moved, "leaderships did not move off fenced broker {victim}: {after:?}");
    // Back again, it registers anew and is unfenced; it is in the replica sets still.
    cluster.start_again(victim)?;
    assert!(wait_until(Duration::from_secs(20), || metadata(&cluster, controller, "none")
        .map(|m| m.brokers.iter().any(|b| b.node_id == victim))
        .unwrap_or(false)));
    Ok(())
}

#[test]
fn a_restarted_node_catches_up_with_what_was_decided_while_it_was_down() -> Result<()> {
    let mut cluster = Cluster::start(3, FAST)?;
    let controller = cluster.wait_for_controller(Duration::from_secs(20))?;
    let down = (1..=3).find(|id| *id != controller).unwrap_or(1);
    cluster.stop(down)?;
    for index in 0..20 {
        assert_eq!(cluster.create_topic(controller, &format!("while-down-{index}"), 1, 2)?, 0);
    }
    cluster.start_again(down)?;
    let caught_up = wait_until(Duration::from_secs(20), || {
        (0..20).all(|index| !partitions(&cluster, down, &format!("while-down-{index}")).unwrap_or_default().is_empty())
    });
    assert!(caught_up, "node {down} did not learn the topics created while it was down");
    Ok(())
}

#[test]
fn five_voters_keep_deciding_with_two_down_and_stop_with_three_down() -> Result<()> {
    let mut cluster = Cluster::start(5, FAST)?;
    let controller = cluster.wait_for_controller(Duration::from_secs(30))?;
    // Two down, the active controller among them.
    let other = (1..=5).find(|id| *id != controller).unwrap_or(1);
    cluster.kill9(controller)?;
    cluster.kill9(other)?;
    let survivors = cluster.running_ids();
    let created =
        wait_until(Duration::from_secs(15), || cluster.create_topic(survivors[0], "two-down", 1, 1).unwrap_or(-1) == 0);
    assert!(created, "three of five voters did not decide");
    // A third down: no majority, nothing is decided.
    cluster.kill9(survivors[0])?;
    let left = cluster.running_ids();
    let started = Instant::now();
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(4) {
        match cluster.create_topic(left[0], "three-down", 1, 1) {
            Ok(0) => {
                answer = Some(0);
                break;
            }
            Ok(code) => answer = Some(code),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(answer, Some(0), "two of five voters decided");
    Ok(())
}

#[test]
fn a_node_of_another_cluster_is_refused_and_a_single_nodes_folder_is_not_taken_over() -> Result<()> {
    // A single node's data folder is not reused as a cluster member's.
    let mut single = BrokerProcess::start(&[])?;
    let folder = single.data_dir().to_path_buf();
    single.stop()?;
    let ports = gregor_integration_tests::cluster::free_ports(2)?;
    let listeners = format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", ports[0], ports[1]);
    let voters = format!("1@127.0.0.1:{}", ports[1]);
    let folder_text = folder.display().to_string();
    let refused = std::process::Command::new(gregor_integration_tests::gregor_binary()?)
        .args(["serve", "--override", &format!("log.dirs={folder_text}")])
        .args(["--override", &format!("listeners={listeners}")])
        .args(["--override", "controller.listener.names=CONTROLLER"])
        .args(["--override", &format!("controller.quorum.voters={voters}")])
        .env("RUST_BACKTRACE", "0")
        .output()?;
    assert!(!refused.status.success(), "a single node's folder started as a cluster member");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("holds the metadata log of a single node"), "{stderr}");
    assert!(folder.join("__cluster_metadata-0").exists(), "the single node's metadata log was touched");

    // Two nodes of one cluster and a third formatted for another: the third
    // is refused by the others, which keep deciding without it.
    let ports = gregor_integration_tests::cluster::free_ports(6)?;
    let voters: String = (0..3).map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[3 + i])).collect::<Vec<_>>().join(",");
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node_id = (i + 1).to_string();
        let listeners = format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", ports[i], ports[3 + i]);
        let cluster_id = if i == 2 { "T3RoZXJDbHVzdGVySWRYWQ" } else { CLUSTER_ID };
        nodes.push(BrokerProcess::start_with_env(
            &[
                ("node.id", &node_id),
                ("listeners", &listeners),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", &voters),
            ],
            &[("CLUSTER_ID", cluster_id)],
        )?);
    }
    let refused_logged = wait_until(Duration::from_secs(20), || {
        nodes.iter().any(|node| node.stderr_tail(400).contains("must be formatted with the same cluster id"))
    });
    assert!(refused_logged, "nobody refused the node of the other cluster");
    Ok(())
}

#[test]
fn a_node_that_fell_behind_the_trimmed_log_catches_up_from_a_snapshot() -> Result<()> {
    // Snapshots every few records, so that the log a stopped node needs is gone
    // by the time it is back and the leader must send it a snapshot.
    let mut overrides = FAST.to_vec();
    overrides.push(("metadata.log.max.record.bytes.between.snapshots", "1024"));
    let mut cluster = Cluster::start(3, &overrides)?;
    let controller = cluster.wait_for_controller(Duration::from_secs(20))?;
    cluster.wait_for_brokers(controller, 3, Duration::from_secs(20))?;
    let down = (1..=3).find(|id| *id != controller).unwrap_or(1);
    cluster.stop(down)?;
    for index in 0..30 {
        assert_eq!(cluster.create_topic(controller, &format!("snap-{index}"), 1, 2)?, 0);
    }
    let snapshots = |node: i32| -> usize {
        let dir = cluster.nodes[(node - 1) as usize].data_dir().join("__cluster_metadata-0");
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(snapshots(controller) > 0, "the controller took no snapshot");
    cluster.start_again(down)?;
    let caught_up = wait_until(Duration::from_secs(20), || {
        (0..30).all(|index| !partitions(&cluster, down, &format!("snap-{index}")).unwrap_or_default().is_empty())
    });
    assert!(caught_up, "node {down} did not catch up{}", cluster.nodes[(down - 1) as usize].diag());
    assert!(
        cluster.nodes[(down - 1) as usize].stderr_tail(200).contains("loaded the metadata snapshot"),
        "node {down} caught up without a snapshot"
    );
    // And it comes back from its own snapshot after a restart.
    cluster.stop(down)?;
    cluster.start_again(down)?;
    assert!(wait_until(Duration::from_secs(20), || !partitions(&cluster, down, "snap-29")
        .unwrap_or_default()
        .is_empty()));
    Ok(())
}

#[test]
fn three_controllers_and_three_brokers_in_separate_processes_form_one_cluster() -> Result<()> {
    let mut cluster = Cluster::start_split(3, 3, FAST)?;
    // Brokers 4-6 follow the quorum and register with its leader.
    cluster.wait_for_brokers(4, 3, Duration::from_secs(30))?;
    for broker in 5..=6 {
        cluster.wait_for_brokers(broker, 3, Duration::from_secs(30))?;
    }
    let brokers: Vec<i32> = metadata(&cluster, 4, "none")?.brokers.iter().map(|b| b.node_id).collect();
    assert_eq!(brokers, vec![4, 5, 6], "controllers must not be brokers");
    // A topic created through a broker (forwarded to the active controller) is
    // placed on the brokers only, and every broker learns it.
    assert_eq!(cluster.create_topic_within(5, "split", 3, 3, Duration::from_secs(20))?, 0);
    let placed = wait_until(Duration::from_secs(10), || {
        (4..=6).all(|node| {
            let seen = partitions(&cluster, node, "split").unwrap_or_default();
            seen.len() == 3
                && seen.iter().all(|(_, leader, replicas, _)| (4..=6).contains(leader) && replicas.len() == 3)
        })
    });
    assert!(placed, "{:?}", partitions(&cluster, 4, "split"));
    // The quorum loses its leader; the brokers follow the new one.
    let leader = cluster.describe_quorum(4)?.map(|state| state.leader_id).unwrap_or(-1);
    assert!((1..=3).contains(&leader), "brokers name controller {leader}");
    cluster.kill9(leader)?;
    assert!(
        wait_until(Duration::from_secs(10), || cluster.create_topic(6, "split-after", 1, 3).unwrap_or(-1) == 0),
        "no CreateTopics through a broker after the active controller was killed"
    );
    assert!(wait_until(Duration::from_secs(10), || !partitions(&cluster, 4, "split-after")
        .unwrap_or_default()
        .is_empty()));
    Ok(())
}

#[test]
fn a_controller_with_a_different_voter_set_is_refused_with_a_message_saying_so() -> Result<()> {
    // Nodes 1 and 2 list each other; node 3 lists itself with them, but they do not
    // list it: its messages are refused, and the two decide without it.
    let ports = gregor_integration_tests::cluster::free_ports(6)?;
    let listeners = |i: usize| format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", ports[i], ports[3 + i]);
    let two: String = (0..2).map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[3 + i])).collect::<Vec<_>>().join(",");
    let three: String = (0..3).map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[3 + i])).collect::<Vec<_>>().join(",");
    let mut nodes = Vec::new();
    for i in 0..3 {
        let node_id = (i + 1).to_string();
        let (listeners, voters) = (listeners(i), if i == 2 { three.clone() } else { two.clone() });
        nodes.push(BrokerProcess::start_with_env(
            &[
                ("node.id", &node_id),
                ("listeners", &listeners),
                ("controller.listener.names", "CONTROLLER"),
                ("controller.quorum.voters", &voters),
            ],
            &[("CLUSTER_ID", CLUSTER_ID)],
        )?);
    }
    let refused = wait_until(Duration::from_secs(20), || {
        nodes[..2].iter().any(|node| node.stderr_tail(400).contains("every controller must list the same voters"))
            && nodes[2].stderr_tail(400).contains("refused this node")
    });
    assert!(refused, "the mismatched voter set was not reported{}", nodes[2].diag());
    Ok(())
}
