//! DescribeGroups, ListGroups, DeleteGroups. STUB: replaced by the real implementation.

use crate::record::CoordinatorRecord;
use crate::shard::{GroupCoordinatorShard, RequestContext};
use gregor_protocol::messages::describe_groups_response::DescribedGroup;
use gregor_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::ErrorCode;

impl GroupCoordinatorShard {
    pub fn describe_group(&self, _ctx: &RequestContext, _group_id: &str) -> DescribedGroup {
        todo!()
    }
    pub fn list_groups(&self, _states_filter: &[String], _types_filter: &[String]) -> Vec<ListedGroup> {
        todo!()
    }
    pub fn delete_group(&mut self, _ctx: &RequestContext, _group_id: &str) -> (Vec<CoordinatorRecord>, ErrorCode) {
        todo!()
    }
}
