//! The toolset Deployment of a PulsarCoordinator.

use magnetar_api::{PulsarBroker, PulsarCoordinator};

use crate::{BuildContext, Object, Owner};

pub fn build(_res: &PulsarCoordinator, _brokers: &[&PulsarBroker], _owner: &Owner, _ctx: &BuildContext) -> Vec<Object> {
    Vec::new()
}
