//! What front ends render alike, in Alibaba's terms: dates, page fields, a
//! secret's rotation, stages and extended config. Each front end still says
//! where these go in its own wire form.

use std::sync::Arc;

use crate::clock::SimTime;
use crate::engine::Paged;
use crate::engine::Secret;
use crate::engine::secrets::SecretVersion;

pub fn page_fields<T>(paged: &Paged<T>) -> (i32, i32, i32) {
    let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    (clamp(paged.total), clamp(paged.page.number), clamp(paged.page.size))
}

pub fn date(time: Option<SimTime>) -> String {
    time.map(SimTime::to_rfc3339).unwrap_or_default()
}

/// AutomaticRotation, RotationInterval (seconds, `21600s`) and NextRotationDate.
pub fn rotation_fields(secret: &Arc<Secret>) -> (String, String, String) {
    let rotation = &secret.rotation;
    let automatic = if rotation.automatic { "Enabled" } else { "Disabled" };
    let interval = rotation.interval_secs.filter(|_| rotation.automatic).map(|s| format!("{s}s")).unwrap_or_default();
    (automatic.to_owned(), interval, date(rotation.next))
}

pub fn extended_config(secret: &Secret) -> String {
    secret.extended_config.as_ref().map(|c| serde_json::Value::Object(c.clone()).to_string()).unwrap_or_default()
}

pub fn stages(version: &SecretVersion) -> Vec<String> {
    version.stages.iter().cloned().collect()
}
