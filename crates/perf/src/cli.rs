//! The `gregor perf` command line. Benchmark scripts are written against these
//! names: rename nothing without changing them too.

use std::path::PathBuf;

use gregor_protocol::Compression;

use crate::cluster::StartFrom;

/// Kafka load tools: a producer and a consumer load generator, a fake broker
/// that discards what it gets, and this machine's I/O ceilings.
#[derive(Debug, clap::Args)]
pub struct PerfArgs {
    #[command(subcommand)]
    pub command: PerfCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PerfCommand {
    /// Produce records as fast as allowed (or at --throughput) and report rate and latency.
    Produce(ProduceArgs),
    /// Consume a topic, counting records from batch headers, and report rate and end-to-end latency.
    Consume(ConsumeArgs),
    /// A fake broker that accepts Produce and discards the data: the load generator's own ceiling.
    Sink(SinkArgs),
    /// Measure this machine's loopback TCP, file write and fsync ceilings.
    Ceilings(CeilingsArgs),
    /// The other end of the loopback measurement of `ceilings` (started by it).
    #[command(hide = true)]
    CeilingsPeer(CeilingsPeerArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(value: CompressionArg) -> Self {
        match value {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    /// A broker to start from, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Partitions of the topic when this run creates it (default 1); an existing topic keeps its own.
    #[arg(long)]
    pub partitions: Option<i32>,
    #[arg(long, default_value_t = 1024)]
    pub record_size_bytes: usize,
    /// Records to produce in all (default: run for --duration-s, 10 s when neither is given).
    #[arg(long, conflicts_with = "duration_s")]
    pub num_records: Option<u64>,
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Records per second in all producers together; 0 is unlimited.
    #[arg(long, default_value_t = 0.0, value_name = "RECORDS_PER_S")]
    pub throughput: f64,
    /// -1 or `all` (all in-sync replicas), 0 (no response) or 1 (the leader), as
    /// Kafka's producer config spells them.
    #[arg(long, default_value = "1", allow_negative_numbers = true, value_parser = parse_acks)]
    pub acks: i16,
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// The most bytes of records (uncompressed) in one batch.
    #[arg(long, default_value_t = 16384)]
    pub batch_size_bytes: usize,
    /// How long a throttled producer lets a batch fill before sending it partly full.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// Producers, each with its own connection to every leader.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Requests a connection may have unanswered.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// The share of each record value that is random; the rest compresses well.
    #[arg(long, default_value_t = 0.5)]
    pub random_ratio: f64,
    /// How long the broker may take to answer a Produce request.
    #[arg(long, default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// End with one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeArgs {
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// A consumer group (KIP-848 protocol, server-side assignment, no commits);
    /// without it the consumers split the partitions among themselves.
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Stop after this many records (default: at the end of every partition,
    /// unless --duration-s is given).
    #[arg(long, conflicts_with = "duration_s")]
    pub num_records: Option<u64>,
    #[arg(long)]
    pub duration_s: Option<f64>,
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,
    #[arg(long, default_value_t = 1)]
    pub fetch_min_bytes: i32,
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,
    /// The most bytes one partition contributes to a fetch response.
    #[arg(long, default_value_t = 1_048_576)]
    pub fetch_partition_max_bytes: i32,
    /// Where a consumer starts in a partition.
    #[arg(long, value_enum, default_value_t = StartFrom::Earliest)]
    pub from: StartFrom,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1:9099", value_name = "HOST:PORT")]
    pub listen: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CeilingsArgs {
    /// Where to write the test files (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How long each throughput measurement runs at most.
    #[arg(long, default_value_t = 3.0)]
    pub duration_s: f64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CeilingsPeerArgs {
    /// Where the measuring process listens.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: String,
    #[arg(long, default_value_t = 3.0)]
    pub duration_s: f64,
    /// Which way the bytes go: the peer sends (loopback, socket-to-file) or receives (sendfile).
    #[arg(long, value_enum, default_value_t = PeerRole::Send)]
    pub role: PeerRole,
    /// The peer stops sending after this many bytes, or at the duration.
    #[arg(long)]
    pub bytes_max: Option<u64>,
    /// The CPU the peer runs on.
    #[arg(long)]
    pub cpu: Option<usize>,
}

/// What the `ceilings` peer does with its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerRole {
    /// Streams 1 MiB writes from memory until the duration or byte limit.
    Send,
    /// Reads and discards until the measuring process closes.
    Receive,
}

/// `--acks`: -1, 0, 1, or `all` for -1.
fn parse_acks(value: &str) -> Result<i16, String> {
    match value {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        other => Err(format!("{other:?} is not one of -1, all, 0, 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Top {
        Perf(PerfArgs),
    }

    fn parse(args: &[&str]) -> PerfCommand {
        let Top::Perf(perf) = Cli::try_parse_from(args).unwrap().command;
        perf.command
    }

    #[test]
    fn produce_takes_every_documented_flag() {
        let command = parse(&[
            "gregor",
            "perf",
            "produce",
            "--bootstrap",
            "127.0.0.1:9092",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--record-size-bytes",
            "100",
            "--num-records",
            "1000",
            "--throughput",
            "500",
            "--acks",
            "-1",
            "--compression",
            "zstd",
            "--batch-size-bytes",
            "65536",
            "--linger-ms",
            "5",
            "--producers",
            "2",
            "--max-in-flight",
            "3",
            "--random-ratio",
            "0.2",
            "--json",
        ]);
        let PerfCommand::Produce(args) = command else { panic!("{command:?}") };
        assert_eq!((args.partitions, args.record_size_bytes, args.num_records), (Some(4), 100, Some(1000)));
        assert_eq!((args.acks, args.compression, args.batch_size_bytes), (-1, CompressionArg::Zstd, 65536));
        assert_eq!((args.linger_ms, args.producers, args.max_in_flight), (5, 2, 3));
        assert!(args.json && args.throughput == 500.0 && args.random_ratio == 0.2);
    }

    #[test]
    fn produce_defaults() {
        let PerfCommand::Produce(args) = parse(&["gregor", "perf", "produce", "--bootstrap", "b:1", "--topic", "t"])
        else {
            panic!()
        };
        assert_eq!((args.acks, args.record_size_bytes, args.batch_size_bytes, args.max_in_flight), (1, 1024, 16384, 5));
        assert_eq!((args.throughput, args.random_ratio, args.producers), (0.0, 0.5, 1));
        assert!(!args.json && args.partitions.is_none() && args.num_records.is_none());
    }

    #[test]
    fn consume_sink_and_ceilings_parse() {
        let PerfCommand::Consume(args) = parse(&[
            "gregor",
            "perf",
            "consume",
            "--bootstrap",
            "b:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--consumers",
            "3",
            "--duration-s",
            "2.5",
            "--fetch-max-wait-ms",
            "100",
            "--fetch-min-bytes",
            "10",
            "--fetch-max-bytes",
            "1000000",
            "--from",
            "latest",
            "--json",
        ]) else {
            panic!()
        };
        assert_eq!((args.group.as_deref(), args.consumers, args.duration_s), (Some("g"), 3, Some(2.5)));
        assert_eq!((args.fetch_max_wait_ms, args.fetch_min_bytes, args.fetch_max_bytes), (100, 10, 1_000_000));
        assert_eq!(args.from, StartFrom::Latest);
        let PerfCommand::Sink(sink) = parse(&["gregor", "perf", "sink"]) else { panic!() };
        assert_eq!(sink.listen, "127.0.0.1:9099");
        let PerfCommand::Ceilings(ceilings) = parse(&["gregor", "perf", "ceilings", "--dir", "/tmp/x", "--json"])
        else {
            panic!()
        };
        assert!(ceilings.json && ceilings.dir.is_some());
    }

    #[test]
    fn counts_and_durations_exclude_each_other() {
        let both = [
            "gregor",
            "perf",
            "produce",
            "--bootstrap",
            "b:1",
            "--topic",
            "t",
            "--num-records",
            "1",
            "--duration-s",
            "1",
        ];
        assert!(Cli::try_parse_from(both).is_err());
        let acks = ["gregor", "perf", "produce", "--bootstrap", "b:1", "--topic", "t", "--acks", "2"];
        assert!(Cli::try_parse_from(acks).is_err());
        let all = ["gregor", "perf", "produce", "--bootstrap", "b:1", "--topic", "t", "--acks", "all"];
        let PerfCommand::Produce(args) = parse(&all) else { panic!("acks=all") };
        assert_eq!(args.acks, -1);
    }
}
