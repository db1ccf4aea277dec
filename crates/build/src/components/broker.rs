//! Workload objects of a PulsarBroker.

use magnetar_api::PulsarBroker;

use crate::{BuildContext, Object, Owner};

pub fn build(_res: &PulsarBroker, _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}
