//! AddOffsetsToTxn (v0-v4): the `__consumer_offsets` partition of the consumer group
//! joins the transaction like a data partition, so its TxnOffsetCommits get the
//! transaction's commit or abort marker.

use crate::shard::{fenced_for_version, Effects, RequestContext, TxnCoordinatorShard};
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;

/// The first AddOffsetsToTxn version that understands PRODUCER_FENCED.
const FENCED_SINCE_VERSION: i16 = 2;

impl TxnCoordinatorShard {
    /// Handles AddOffsetsToTxn; `group_partition` is the group's coordinator partition
    /// (`("__consumer_offsets", partition_for_group(group_id, partitions))`), which the
    /// broker computes.
    pub fn add_offsets_to_txn(
        &mut self,
        ctx: &RequestContext,
        request: AddOffsetsToTxnRequest,
        group_partition: (String, i32),
    ) -> Effects {
        let mut effects = Effects::default();
        let error = self.add_partitions(
            ctx.now_ms,
            &request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            &[group_partition],
            &mut effects,
        );
        let error = fenced_for_version(error, ctx.api_version, FENCED_SINCE_VERSION);
        effects.reply(ctx.reply, AddOffsetsToTxnResponse { error_code: error.code(), ..Default::default() });
        effects
    }
}
