//! `kmsim.v1.InstanceService`: which kernel operation each method is, how its
//! request decodes into it, and how its output encodes as the response. The
//! kernel does the rest.

use super::{Grpc, decode, service};
use crate::engine::Instance;
use crate::engine::key::ReplicaTarget;
use crate::kernel::ops::instances as ops;
use crate::proto as pb;
use crate::proto::instance_service_server::InstanceService;

pub struct InstancesApi {
    grpc: Grpc,
}

impl InstancesApi {
    pub fn new(grpc: Grpc) -> Self {
        InstancesApi { grpc }
    }
}

service! {
    impl InstanceService for InstancesApi {
        create_kms_instance(CreateKmsInstanceRequest) -> CreateKmsInstanceResponse = CreateKmsInstance,
            |created| pb::CreateKmsInstanceResponse { kms_instance: Some(instance(&created, 0)) };
        get_kms_instance(GetKmsInstanceRequest) -> GetKmsInstanceResponse = GetKmsInstance,
            |(found, usage)| pb::GetKmsInstanceResponse { kms_instance: Some(instance(&found, usage.keys)) };
        list_kms_instances(ListKmsInstancesRequest) -> ListKmsInstancesResponse = ListKmsInstances,
            |all| pb::ListKmsInstancesResponse {
                kms_instances: all.iter().map(|(listed, usage)| instance(listed, usage.keys)).collect(),
            };
        replicate_key(ReplicateKeyRequest) -> ReplicateKeyResponse = ReplicateKey, |key| pb::ReplicateKeyResponse {
            key_id: key.meta.key_id.clone(),
            region: key.meta.region.clone(),
            replicas: key.meta.replicas.iter().map(replica).collect(),
        };
        sync_key(SyncKeyRequest) -> SyncKeyResponse = SyncKey, |key| pb::SyncKeyResponse {
            key_id: key.meta.key_id.clone(),
            region: key.meta.region.clone(),
            replicas: key.meta.replicas.iter().map(replica).collect(),
        };
        list_key_replicas(ListKeyReplicasRequest) -> ListKeyReplicasResponse = ListKeyReplicas,
            |found| pb::ListKeyReplicasResponse {
                key_id: found.key_id,
                replicas: found.replicas.iter().map(replica).collect(),
                region: found.region,
            };
    }
}

decode! {
    CreateKmsInstanceRequest => CreateKmsInstance { region, spec, expire_time, instance_name }
    GetKmsInstanceRequest => GetKmsInstance { kms_instance_id }
    ListKmsInstancesRequest => ListKmsInstances {}
    ReplicateKeyRequest => ReplicateKey { key_id, shadow_instance_id, sync_interval }
    SyncKeyRequest => SyncKey { key_id }
    ListKeyReplicasRequest => ListKeyReplicas { key_id }
}

fn instance(i: &Instance, key_count: usize) -> pb::KmsInstance {
    pb::KmsInstance {
        kms_instance_id: i.instance_id.clone(),
        arn: i.arn(),
        instance_name: i.instance_name.clone(),
        region: i.region.clone(),
        spec: i64::from(i.spec),
        create_time: i.created.to_rfc3339(),
        expire_time: i.expires.to_rfc3339(),
        status: i.status().to_owned(),
        key_count: i64::try_from(key_count).unwrap_or(i64::MAX),
    }
}

fn replica(target: &ReplicaTarget) -> pb::KeyReplica {
    let last = target.last_sync.as_ref();
    pb::KeyReplica {
        shadow_instance_id: target.shadow_instance_id.clone(),
        shadow_region: target.shadow_region.clone(),
        sync_interval: format!("{}s", target.interval_secs),
        last_sync_task_id: last.map(|r| r.sync_task_id.clone()).unwrap_or_default(),
        last_sync_time: last.map(|r| r.at.to_rfc3339()).unwrap_or_default(),
        last_sync_status: match last {
            None => String::new(),
            Some(r) if r.error_code.is_empty() => "SyncSuccess".into(),
            Some(_) => "SyncFailure".into(),
        },
        last_error_code: last.map(|r| r.error_code.clone()).unwrap_or_default(),
    }
}
