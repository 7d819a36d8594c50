//! Committed offsets. STUB: replaced by the real implementation.

use crate::shard::{Effects, GroupCoordinatorShard, RequestContext, TopicsView};
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;

#[derive(Debug, Default)]
pub struct OffsetStore {}

impl GroupCoordinatorShard {
    pub fn offset_commit(
        &mut self,
        _ctx: &RequestContext,
        _request: OffsetCommitRequest,
        _topics: &dyn TopicsView,
    ) -> Effects {
        todo!()
    }
    pub fn offset_fetch_group(
        &self,
        _ctx: &RequestContext,
        _group: OffsetFetchRequestGroup,
        _require_stable: bool,
        _topics: &dyn TopicsView,
    ) -> OffsetFetchResponseGroup {
        todo!()
    }
    pub fn offset_delete(&mut self, _ctx: &RequestContext, _request: OffsetDeleteRequest) -> Effects {
        todo!()
    }
    pub fn expire_offsets(&mut self, _now_ms: i64) -> Effects {
        todo!()
    }
    pub(crate) fn replay_offset_commit(&mut self, _key: OffsetCommitKey, _value: Option<OffsetCommitValue>) {
        todo!()
    }
}
