//! # gregor-perf
//!
//! The load tool behind `gregor perf`: a Kafka producer and consumer load
//! generator (the counterpart of kafka-producer-perf-test and
//! rdkafka_performance) that speaks Kafka through `gregor-protocol` over tokio
//! TCP and so works against any Kafka-compatible broker; a fake broker that
//! discards what it is sent (`sink`), which shows what the generator reaches
//! with no broker in the way; and this machine's I/O ceilings (`ceilings`).
//!
//! **Owns:** the `perf` command line, load generation and its accounting
//! (rates, latency percentiles, the JSON summary scripts read), the sink, the
//! ceiling measurements.
//!
//! The JSON summary (`--json`, the last stdout line) counts `bytes` as record
//! values for `produce` (as kafka-producer-perf-test does) and as record batches
//! as fetched for `consume` (the consumer never decodes records, so compressed
//! topics count compressed bytes); MB is 10^6 bytes. Produce latency is from the
//! write of a request to its response; consume latency is end to end, now minus
//! the batch's max timestamp (millisecond resolution).
//!
//! **Never:** anything of the broker (it is a client like any other and links
//! none of the broker's crates), per-record work on the hot paths (a batch is
//! encoded once and re-sent with a few bytes patched; consumers count records
//! from batch headers), output on stdout other than the summary, the JSON line
//! and the sink's one address line, or logging set-up.

pub mod batch;
pub mod ceilings;
pub mod cli;
pub mod cluster;
pub mod conn;
pub mod consume;
pub mod error;
mod group;
pub mod produce;
pub mod rate;
pub mod sink;
pub mod stats;

pub use error::PerfError;

use cli::{PerfArgs, PerfCommand};
use stats::Summary;

/// Runs one `gregor perf` command to its end. Every command but `ceilings`
/// runs on a single-threaded runtime: the benchmark pins the tool to one core,
/// where one thread without cross-thread wake-ups goes furthest.
pub fn run(args: PerfArgs) -> Result<(), PerfError> {
    match args.command {
        PerfCommand::Produce(args) => {
            let json = args.json;
            report(block_on(produce::run(args))??, json);
        }
        PerfCommand::Consume(args) => {
            let json = args.json;
            report(block_on(consume::run(args))??, json);
        }
        PerfCommand::Sink(args) => block_on(sink::run(args))??,
        PerfCommand::Ceilings(args) => {
            let (ceilings, dir) = ceilings::run(&args)?;
            println!("{}", ceilings.human(&dir));
            if args.json {
                println!("{}", ceilings.to_json());
            }
        }
        PerfCommand::CeilingsPeer(args) => ceilings::peer(&args)?,
    }
    Ok(())
}

fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, PerfError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| PerfError::io("starting the async runtime", error))?;
    Ok(runtime.block_on(future))
}

fn report(summary: Summary, json: bool) {
    println!("{}", summary.human());
    if json {
        println!("{}", summary.to_json());
    }
}
