//! A broker with two listeners answers each client with the endpoints of the listener
//! it came in on, as Kafka does: Metadata, DescribeCluster and FindCoordinator over
//! the EXTERNAL listener name its EXTERNAL port, over PLAINTEXT its PLAINTEXT port.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::BrokerProcess;
use gregor_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::MetadataRequest;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::time::{Duration, Instant};

/// A port nothing listens on right now, for the second listener.
fn free_port() -> Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe")?;
    Ok(probe.local_addr()?.port())
}

/// (node id, port, rack) of every broker Metadata v12 lists, and the controller id.
type Listed = Vec<(i32, i32, Option<String>)>;
fn metadata_brokers(conn: &mut RawConn) -> Result<(Listed, i32)> {
    let request = MetadataRequest { topics: Some(Vec::new()), ..MetadataRequest::default() };
    let ResponseBody::Metadata(response) = conn.round_trip(request, 12, 1)? else { bail!("not a Metadata answer") };
    let listed = response.brokers.iter().map(|broker| (broker.node_id, broker.port, broker.rack.clone())).collect();
    Ok((listed, response.controller_id))
}

fn cluster_brokers(conn: &mut RawConn) -> Result<Vec<(i32, i32, bool)>> {
    let request = DescribeClusterRequest { endpoint_type: 1, include_fenced_brokers: true, ..Default::default() };
    let ResponseBody::DescribeCluster(response) = conn.round_trip(request, 2, 2)? else {
        bail!("not a DescribeCluster answer")
    };
    ensure!(response.error_code == 0, "DescribeCluster error {}", response.error_code);
    Ok(response.brokers.iter().map(|broker| (broker.broker_id, broker.port, broker.is_fenced)).collect())
}

/// The group coordinator's (node id, port), retried while the offsets topic is created.
fn coordinator(conn: &mut RawConn) -> Result<(i32, i32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = FindCoordinatorRequest { key: "listeners-group".into(), ..Default::default() };
        let ResponseBody::FindCoordinator(response) = conn.round_trip(request, 3, 3)? else {
            bail!("not a FindCoordinator answer")
        };
        if response.error_code == 0 {
            return Ok((response.node_id, response.port));
        }
        ensure!(
            response.error_code == ErrorCode::CoordinatorNotAvailable.code() && Instant::now() < deadline,
            "FindCoordinator error {}",
            response.error_code
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_listener_answers_its_own_endpoints() -> Result<()> {
    let external_port = free_port()?;
    let listeners = format!("PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:{external_port}");
    let broker = BrokerProcess::start(&[
        ("listeners", listeners.as_str()),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ("offsets.topic.num.partitions", "1"),
        ("broker.rack", "rack-a"),
    ])?;
    let result = (|| -> Result<()> {
        let plaintext_port = i32::from(broker.port());
        let external_port = i32::from(external_port);
        let mut plaintext = RawConn::connect(&broker.bootstrap())?;
        let mut external = RawConn::connect(&format!("127.0.0.1:{external_port}"))?;

        let rack = Some("rack-a".to_owned());
        let (brokers, controller) = metadata_brokers(&mut plaintext)?;
        ensure!(brokers == vec![(1, plaintext_port, rack.clone())], "Metadata over PLAINTEXT: {brokers:?}");
        ensure!(controller == 1, "controller {controller}");
        let (brokers, _) = metadata_brokers(&mut external)?;
        ensure!(brokers == vec![(1, external_port, rack)], "Metadata over EXTERNAL: {brokers:?}");

        let brokers = cluster_brokers(&mut external)?;
        ensure!(brokers == vec![(1, external_port, false)], "DescribeCluster over EXTERNAL: {brokers:?}");

        let found = coordinator(&mut external)?;
        ensure!(found == (1, external_port), "FindCoordinator over EXTERNAL: {found:?}");
        let found = coordinator(&mut plaintext)?;
        ensure!(found == (1, plaintext_port), "FindCoordinator over PLAINTEXT: {found:?}");
        Ok(())
    })();
    broker.with_diag(result)
}
