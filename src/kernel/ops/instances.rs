//! KMS instances (a region, a QPS spec, an expiry, quotas) and the
//! replication of a key to a replica ("shadow") instance in another region.

use std::sync::Arc;

use super::operation;
use crate::engine::instances::{Quota, Usage};
use crate::engine::key::{Key, ReplicaTarget};
use crate::engine::{CreateInstanceInput, DueItem, Instance, Outcome};
use crate::kernel::Names;

/// A key's replicas, and how each one's last sync ended.
pub struct KeyReplicas {
    pub key_id: String,
    pub region: String,
    pub replicas: Vec<ReplicaTarget>,
}

operation! {
    /// A new instance, which holds no keys yet.
    CreateKmsInstance = CREATE_KMS_INSTANCE -> Arc<Instance> {
        region: String = "RegionId",
        spec: i64 = "Spec",
        expire_time: String = "ExpireTime",
        instance_name: String = "InstanceName",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let CreateKmsInstance { region, spec, expire_time, instance_name } = op;
        app.engine.create_instance(&cx, CreateInstanceInput { region, spec, expire_time, instance_name })?
    }
}

operation! {
    /// An instance of the caller's region, and what it holds.
    GetKmsInstance = GET_KMS_INSTANCE -> (Arc<Instance>, Usage) {
        kms_instance_id: String = "KmsInstanceId",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let outcome = app.engine.get_instance(&cx, &op.kms_instance_id)?;
        let usage = app.engine.instance_usage(&op.kms_instance_id);
        outcome.map(|instance| (instance, usage))
    }
}

operation! {
    /// The instances of the caller's region, oldest first, each with what it holds.
    ListKmsInstances = LIST_KMS_INSTANCES -> Vec<(Arc<Instance>, Usage)> {}
    names(_) { Names::none() }
    run(_, app, cx) {
        let listed = app.engine.list_instances(&cx);
        let engine = app.engine.clone();
        listed.map(|all| {
            all.into_iter()
                .map(|instance| {
                    let usage = engine.instance_usage(&instance.instance_id);
                    (instance, usage)
                })
                .collect()
        })
    }
}

operation! {
    /// An instance's quotas (of one resource type, or all), and how much of each is used.
    GetKmsInstanceQuotaInfos = GET_KMS_INSTANCE_QUOTA_INFOS -> (Arc<Instance>, Vec<Quota>) {
        kms_instance_id: String = "KmsInstanceId",
        resource_type: String = "ResourceType",
    }
    names(_) { Names::none() }
    run(op, app, cx) {
        let qps_used = app.admission.calls_in_window(&op.kms_instance_id, cx.received_at);
        app.engine.instance_quotas(&cx, &op.kms_instance_id, &op.resource_type, qps_used)?
    }
}

operation! {
    /// The key, now replicated, with how its first sync (done within the call) went.
    ReplicateKey = REPLICATE_KEY -> Arc<Key> {
        key_id: String = "KeyId",
        shadow_instance_id: String = "ShadowInstanceId",
        sync_interval: String = "SyncInterval",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let fault = |item: &DueItem| app.task_fault(item);
        let names = (op.key_id.as_str(), op.shadow_instance_id.as_str(), op.sync_interval.as_str());
        app.engine.replicate_key(&cx, names, &fault).await?
    }
}

operation! {
    /// The key, with how the syncs of its replicas (done within the call) went.
    SyncKey = SYNC_KEY -> Arc<Key> {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let fault = |item: &DueItem| app.task_fault(item);
        app.engine.request_sync(&cx, &op.key_id, &fault).await?
    }
}

operation! {
    ListKeyReplicas = LIST_KEY_REPLICAS -> KeyReplicas {
        key_id: String = "KeyId",
    }
    names(op) { Names::key(&op.key_id) }
    run(op, app, cx) {
        let outcome = app.engine.key_address(&cx, &op.key_id)?;
        let (region, key_id) = outcome.value;
        let replicas = app.engine.replicas_of(&region, &key_id);
        Outcome::read(KeyReplicas { key_id, region, replicas })
    }
}
