//! Validation the schema cannot do, or that render must do offline.

use magnetar_api::{BookKeeperCluster, PulsarBroker, PulsarCoordinator, PulsarProxy, ZooKeeperCluster};

use crate::Invalid;

pub fn zookeeper(_r: &ZooKeeperCluster) -> Result<(), Invalid> { Ok(()) }
pub fn bookkeeper(_r: &BookKeeperCluster) -> Result<(), Invalid> { Ok(()) }
pub fn broker(_r: &PulsarBroker) -> Result<(), Invalid> { Ok(()) }
pub fn proxy(_r: &PulsarProxy) -> Result<(), Invalid> { Ok(()) }
pub fn coordinator(_r: &PulsarCoordinator) -> Result<(), Invalid> { Ok(()) }
