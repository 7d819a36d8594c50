//! # gregor-broker
//!
//! The `gregor` binary and everything that touches sockets, tasks and the clock.
//!
//! **Owns:** loading the configuration, the listeners and connections (framing,
//! request size limits, in-order answers, the connection bound), dispatch of each
//! request to its handler (one file per API under [`handlers`]), the table of API
//! versions we advertise, the partitions this node leads (the replica manager), the
//! purgatory where long-polling fetches wait, KIP-227 fetch sessions, the group
//! coordinator's runtime (shards of `gregor-group` over `__consumer_offsets`), the
//! transaction coordinator's (shards of `gregor-txn` over `__transaction_state`, and
//! the marker writer), and the wiring of the metadata log: controller decisions from
//! `gregor-metadata` are appended to the `__cluster_metadata` log and only then
//! applied to the published image.
//!
//! **Never:** business rules that belong in a state machine (what a topic creation
//! means lives in `gregor-metadata`, how a batch is stored in `gregor-storage`), or a
//! wait on the disk on a reactor thread: fsyncs, reads that may miss the page cache
//! and the coordinators' work go through [`tokio::task::spawn_blocking`]. The one
//! exception is the produce append, a write into the page cache that costs less than
//! the thread hand-off it would take (see `handlers::produce`).

pub mod api_versions;
pub mod authorization;
pub mod broker;
pub mod cluster;
pub mod cluster_view;
pub mod config_resource;
pub mod connection;
pub mod connection_quotas;
pub mod controller;
pub mod controller_client;
pub mod coordinator;
pub mod coordinator_runtime;
pub mod dispatch;
pub mod error;
pub mod fetch_session;
pub mod handlers;
pub mod internal_topic;
pub mod legacy;
pub mod meta_properties;
pub mod partition_dirs;
pub mod partitions;
pub mod purgatory;
pub mod quorum;
pub mod request_context;
pub mod server;
pub mod storage_tool;
pub mod time;
pub mod topics;
pub mod txn_coordinator;
pub mod zero_copy;

pub use broker::Broker;
pub use server::{run, RunningServer};
