//! Workload objects of a BookKeeperCluster.

use magnetar_api::BookKeeperCluster;

use crate::{BuildContext, Object, Owner};

pub fn build(_res: &BookKeeperCluster, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}
