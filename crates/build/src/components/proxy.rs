//! Workload objects of a PulsarProxy.

use magnetar_api::PulsarProxy;

use crate::{BuildContext, Object, Owner};

pub fn build(_res: &PulsarProxy, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}
