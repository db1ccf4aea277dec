//! Workload objects of a ZooKeeperCluster.

use magnetar_api::ZooKeeperCluster;

use crate::{BuildContext, Object, Owner};

pub fn build(_res: &ZooKeeperCluster, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}
