//! The transaction admin APIs on the wire, against a transaction a real librdkafka
//! producer holds open and then commits: ListTransactions (state, producer id,
//! duration and pattern filters), DescribeTransactions, DescribeProducers; and
//! the transaction-related ApiVersions answer (the `transaction.version` feature).
//! No client at hand has these admin calls (librdkafka, confluent-kafka and
//! kafka-python lack them), so they are sent as raw requests, as Kafka's
//! `kafka-transactions.sh` sends them.

use anyhow::{ensure, Context, Result};
use gregor_integration_tests::expect_response;
use gregor_integration_tests::group_wire::{check_code, name, Conn};
use gregor_integration_tests::rdk;
use gregor_integration_tests::{wait_until, BrokerProcess};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::list_transactions_response::ListTransactionsResponse;
use gregor_protocol::ErrorCode;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use std::time::Duration;

const TOPIC: &str = "txn-admin";
const TXN_ID: &str = "admin-txn";

fn list(conn: &mut Conn, request: ListTransactionsRequest, version: i16) -> Result<ListTransactionsResponse> {
    let response = expect_response!(conn.call(request, version)?, ListTransactions);
    check_code(response.error_code, ErrorCode::None, "ListTransactions")?;
    Ok(response)
}

fn listed_ids(response: &ListTransactionsResponse) -> Vec<(String, String)> {
    let mut ids: Vec<_> = response
        .transaction_states
        .iter()
        .map(|state| (state.transactional_id.clone(), state.transaction_state.clone()))
        .collect();
    ids.sort();
    ids
}

#[test]
fn admin_apis_describe_an_open_then_committed_transaction() -> Result<()> {
    let broker = BrokerProcess::start(&[("transaction.state.log.num.partitions", "4")])?;
    let result = (|| -> Result<()> {
        let bootstrap = broker.bootstrap();
        rdk::create_topic(&bootstrap, TOPIC, 2, &[])?;
        let mut conn = Conn::new(&bootstrap)?;

        // transaction.version is advertised and finalized at 2.
        let request = ApiVersionsRequest {
            client_software_name: "gregor-itests".into(),
            client_software_version: "1.0".into(),
            ..Default::default()
        };
        let versions = expect_response!(conn.call(request, 3)?, ApiVersions);
        check_code(versions.error_code, ErrorCode::None, "ApiVersions")?;
        let supported = versions
            .supported_features
            .iter()
            .find(|feature| feature.name == "transaction.version")
            .context("transaction.version missing from the supported features")?;
        ensure!((supported.min_version, supported.max_version) == (0, 2), "supported {supported:?}");
        let finalized = versions
            .finalized_features
            .iter()
            .find(|feature| feature.name == "transaction.version")
            .context("transaction.version is not finalized")?;
        ensure!(finalized.max_version_level == 2, "finalized {finalized:?}");

        let producer: ThreadedProducer<DefaultProducerContext> = rdk::config(&bootstrap)
            .set("transactional.id", TXN_ID)
            .set("transaction.timeout.ms", "60000")
            .create()
            .context("transactional producer")?;
        producer.init_transactions(Duration::from_secs(30)).context("init_transactions")?;
        producer.begin_transaction().context("begin_transaction")?;
        for partition in [0, 1] {
            let record = BaseRecord::<[u8], [u8]>::to(TOPIC).partition(partition).payload(b"open");
            producer.send(record).map_err(|(error, _)| error).context("send")?;
        }
        producer.flush(Duration::from_secs(30)).context("flush")?;

        // The open transaction, as ListTransactions and DescribeTransactions see it.
        let ongoing = ListTransactionsRequest { state_filters: vec!["Ongoing".into()], ..Default::default() };
        let listed = list(&mut conn, ongoing, 0)?;
        ensure!(listed_ids(&listed) == vec![(TXN_ID.into(), "Ongoing".into())], "{listed:?}");
        let producer_id = listed.transaction_states[0].producer_id;

        let described = expect_response!(
            conn.call(
                DescribeTransactionsRequest {
                    transactional_ids: vec![TXN_ID.into(), "nobody".into()],
                    ..Default::default()
                },
                0
            )?,
            DescribeTransactions
        );
        let open = &described.transaction_states[0];
        check_code(open.error_code, ErrorCode::None, "DescribeTransactions")?;
        ensure!(open.transaction_state == "Ongoing" && open.producer_id == producer_id, "{open:?}");
        ensure!(open.transaction_timeout_ms == 60_000, "timeout {}", open.transaction_timeout_ms);
        ensure!(open.transaction_start_time_ms > 0, "start time {}", open.transaction_start_time_ms);
        let partitions: Vec<(String, Vec<i32>)> = open
            .topics
            .iter()
            .map(|topic| {
                let mut partitions = topic.partitions.clone();
                partitions.sort();
                (topic.topic.clone(), partitions)
            })
            .collect();
        ensure!(partitions == vec![(TOPIC.to_string(), vec![0, 1])], "partitions {partitions:?}");
        check_code(described.transaction_states[1].error_code, ErrorCode::TransactionalIdNotFound, "unknown id")?;

        // Filters: producer id, duration (v1: open longer than), pattern (v2).
        let by_producer = ListTransactionsRequest { producer_id_filters: vec![producer_id + 1], ..Default::default() };
        ensure!(list(&mut conn, by_producer, 0)?.transaction_states.is_empty(), "another producer id matched");
        let long_running = ListTransactionsRequest { duration_filter: 3_600_000, ..Default::default() };
        ensure!(
            list(&mut conn, long_running, 1)?.transaction_states.is_empty(),
            "a new transaction is not an hour old"
        );
        let pattern =
            ListTransactionsRequest { transactional_id_pattern: Some("admin-.*".into()), ..Default::default() };
        ensure!(listed_ids(&list(&mut conn, pattern, 2)?).len() == 1, "the pattern did not match");
        let unknown = ListTransactionsRequest { state_filters: vec!["Sleeping".into()], ..Default::default() };
        let answered = list(&mut conn, unknown, 0)?;
        ensure!(answered.unknown_state_filters == vec!["Sleeping".to_string()], "{answered:?}");

        // DescribeProducers: the open transaction starts at offset 0 of each partition.
        let describe_producers = || DescribeProducersRequest {
            topics: vec![TopicRequest { name: TOPIC.into(), partition_indexes: vec![0, 1], ..Default::default() }],
            ..Default::default()
        };
        let producers = expect_response!(conn.call(describe_producers(), 0)?, DescribeProducers);
        for partition in &producers.topics[0].partitions {
            check_code(partition.error_code, ErrorCode::None, "DescribeProducers")?;
            let active = partition.active_producers.iter().find(|p| p.producer_id == producer_id);
            let active =
                active.with_context(|| format!("producer missing on partition {}", partition.partition_index))?;
            ensure!(active.current_txn_start_offset == 0, "{active:?}");
        }

        producer.commit_transaction(Duration::from_secs(30)).context("commit_transaction")?;
        let committed = wait_until(Duration::from_secs(10), || {
            let request =
                ListTransactionsRequest { state_filters: vec!["CompleteCommit".into()], ..Default::default() };
            list(&mut conn, request, 0).map(|listed| listed_ids(&listed).len() == 1).unwrap_or(false)
        });
        ensure!(committed, "the transaction never showed as CompleteCommit");
        let producers = expect_response!(conn.call(describe_producers(), 0)?, DescribeProducers);
        for partition in &producers.topics[0].partitions {
            let active = partition.active_producers.iter().find(|p| p.producer_id == producer_id);
            let active = active.context("producer missing after commit")?;
            ensure!(
                active.current_txn_start_offset == -1,
                "partition {}: transaction still open: {active:?} ({})",
                partition.partition_index,
                name(partition.error_code)
            );
        }
        Ok(())
    })();
    broker.with_diag(result)
}
