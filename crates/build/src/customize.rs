//! `customization[]`: JSON merge patches on generated objects (SPEC 1.1).

use magnetar_api::common::Customization;

use crate::{Invalid, Object};

pub fn apply(_objects: &mut [Object], _customization: &[Customization]) -> Result<(), Invalid> {
    Ok(())
}
