//! GenerateMac and VerifyMac under an HMAC key.

use std::sync::Arc;

use super::asymmetric::{UnderKey, parse_required, pick_version};
use super::crypto::{HashAlg, mac};
use super::error::{ErrorCode, KmsError, KmsResult};
use super::key::{Key, KeyOp, KeyUsage, MacAlgorithm, SpecKind};
use super::{Engine, Outcome};
use crate::context::CallContext;

pub const MAX_MAC_MESSAGE_BYTES: usize = 4096;

impl Engine {
    pub fn generate_mac(
        &self,
        cx: &CallContext,
        key_id: &str,
        algorithm: &str,
        message: &[u8],
    ) -> KmsResult<Outcome<UnderKey<Vec<u8>>>> {
        let (key, hash) = self.mac_key(cx, key_id, algorithm, message)?;
        let version = pick_version(cx, &key, "")?;
        let mac = mac::hmac(hash, &version.material, message);
        cx.trail.mac_bytes(mac.len());
        Ok(Outcome::read(UnderKey { value: mac, key_id: key.meta.key_id.clone(), key_version_id: version.version_id }))
    }

    /// Checks the MAC against every version of the key, so MACs made before a
    /// rotation keep verifying; a wrong MAC is `false`, not an error.
    pub fn verify_mac(
        &self,
        cx: &CallContext,
        key_id: &str,
        algorithm: &str,
        message: &[u8],
        mac_value: &[u8],
    ) -> KmsResult<Outcome<UnderKey<bool>>> {
        if mac_value.is_empty() {
            return Err(KmsError::missing("Mac"));
        }
        let (key, hash) = self.mac_key(cx, key_id, algorithm, message)?;
        cx.trail.mac_bytes(mac_value.len());
        let primary = pick_version(cx, &key, "")?;
        let matching = key.versions.iter().find(|v| mac::verify(hash, &v.material, message, mac_value));
        if let Some(version) = matching {
            cx.trail.key_version(version.version_id);
        }
        let key_version_id = matching.map_or(primary.version_id, |v| v.version_id);
        Ok(Outcome::read(UnderKey { value: matching.is_some(), key_id: key.meta.key_id.clone(), key_version_id }))
    }

    fn mac_key(
        &self,
        cx: &CallContext,
        key_id: &str,
        algorithm: &str,
        message: &[u8],
    ) -> KmsResult<(Arc<Key>, HashAlg)> {
        let algorithm = parse_required(algorithm, MacAlgorithm::parse)?;
        match message.len() {
            0 => return Err(KmsError::missing("Message")),
            n if n > MAX_MAC_MESSAGE_BYTES => {
                return Err(KmsError::invalid_because("Message", "It can be at most 4096 bytes."));
            }
            n => cx.trail.message_bytes(n),
        }
        let key = self.key_for_use(cx, key_id, "KeyId")?;
        key.allow(KeyOp::Cryptographic)?;
        match key.meta.spec.kind() {
            SpecKind::Hmac(hash) if key.meta.usage == KeyUsage::GenerateVerifyMac => {
                if hash != algorithm.hash() {
                    return Err(key.refuse_use(KmsError::invalid_because(
                        "Algorithm",
                        &format!("{} keys cannot use it.", key.meta.spec),
                    )));
                }
                Ok((key, hash))
            }
            _ => Err(key.refuse_use(ErrorCode::RejectedUnsupportedOperation)),
        }
    }
}
