//! `kmsim.v1.InstanceService`: KMS instances and cross-region key sync.

use tonic::{Request, Response, Status};

use super::{Grpc, Rpc};
use crate::engine::key::ReplicaTarget;
use crate::engine::{CreateInstanceInput, Instance, Outcome};
use crate::kernel::OpSpec;
use crate::kernel::Operation;
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

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl InstanceService for InstancesApi {
    async fn create_kms_instance(
        &self,
        request: Request<pb::CreateKmsInstanceRequest>,
    ) -> Reply<pb::CreateKmsInstanceResponse> {
        self.grpc.unary(request, create_kms_instance).await
    }

    async fn get_kms_instance(&self, request: Request<pb::GetKmsInstanceRequest>) -> Reply<pb::GetKmsInstanceResponse> {
        self.grpc.unary(request, get_kms_instance).await
    }

    async fn list_kms_instances(
        &self,
        request: Request<pb::ListKmsInstancesRequest>,
    ) -> Reply<pb::ListKmsInstancesResponse> {
        self.grpc.unary(request, list_kms_instances).await
    }

    async fn replicate_key(&self, request: Request<pb::ReplicateKeyRequest>) -> Reply<pb::ReplicateKeyResponse> {
        self.grpc.unary(request, replicate_key).await
    }

    async fn sync_key(&self, request: Request<pb::SyncKeyRequest>) -> Reply<pb::SyncKeyResponse> {
        self.grpc.unary(request, sync_key).await
    }

    async fn list_key_replicas(
        &self,
        request: Request<pb::ListKeyReplicasRequest>,
    ) -> Reply<pb::ListKeyReplicasResponse> {
        self.grpc.unary(request, list_key_replicas).await
    }
}

/// replicate_key as a kernel operation. The first sync is due at once, and
/// runs before the answer.
pub fn replicate_key(req: pb::ReplicateKeyRequest) -> impl Operation<Output = pb::ReplicateKeyResponse> {
    Rpc::new(&OpSpec::REPLICATE_KEY, req, |app, cx, req| async move {
        let fault = |item: &crate::engine::DueItem| app.task_fault(item);
        let names = (req.key_id.as_str(), req.shadow_instance_id.as_str(), req.sync_interval.as_str());
        let outcome = app.engine.replicate_key(&cx, names, &fault).await?;
        Ok(outcome.map(|key| pb::ReplicateKeyResponse {
            key_id: key.meta.key_id.clone(),
            region: key.meta.region.clone(),
            replicas: key.meta.replicas.iter().map(replica).collect(),
        }))
    })
}

/// sync_key as a kernel operation: the sync tasks run as the scheduler's
/// service events, before the answer.
pub fn sync_key(req: pb::SyncKeyRequest) -> impl Operation<Output = pb::SyncKeyResponse> {
    Rpc::new(&OpSpec::SYNC_KEY, req, |app, cx, req| async move {
        let fault = |item: &crate::engine::DueItem| app.task_fault(item);
        let outcome = app.engine.request_sync(&cx, &req.key_id, &fault).await?;
        Ok(outcome.map(|key| pb::SyncKeyResponse {
            key_id: key.meta.key_id.clone(),
            region: key.meta.region.clone(),
            replicas: key.meta.replicas.iter().map(replica).collect(),
        }))
    })
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

/// create_kms_instance as a kernel operation.
pub fn create_kms_instance(
    req: pb::CreateKmsInstanceRequest,
) -> impl Operation<Output = pb::CreateKmsInstanceResponse> {
    Rpc::new(&OpSpec::CREATE_KMS_INSTANCE, req, |app, cx, req| async move {
        let input = CreateInstanceInput {
            region: req.region,
            spec: req.spec,
            expire_time: req.expire_time,
            instance_name: req.instance_name,
        };
        let outcome = app.engine.create_instance(&cx, input)?;
        Ok(outcome.map(|i| pb::CreateKmsInstanceResponse { kms_instance: Some(instance(&i, 0)) }))
    })
}

/// get_kms_instance as a kernel operation.
pub fn get_kms_instance(req: pb::GetKmsInstanceRequest) -> impl Operation<Output = pb::GetKmsInstanceResponse> {
    Rpc::new(&OpSpec::GET_KMS_INSTANCE, req, |app, cx, req| async move {
        let outcome = app.engine.get_instance(&cx, &req.kms_instance_id)?;
        let keys = app.engine.instance_key_count(&req.kms_instance_id);
        Ok(outcome.map(|i| pb::GetKmsInstanceResponse { kms_instance: Some(instance(&i, keys)) }))
    })
}

/// list_kms_instances as a kernel operation.
pub fn list_kms_instances(req: pb::ListKmsInstancesRequest) -> impl Operation<Output = pb::ListKmsInstancesResponse> {
    Rpc::new(&OpSpec::LIST_KMS_INSTANCES, req, |app, cx, _req| async move {
        let listed = app.engine.list_instances(&cx);
        let engine = app.engine.clone();
        Ok(listed.map(|all| pb::ListKmsInstancesResponse {
            kms_instances: all.iter().map(|i| instance(i, engine.instance_key_count(&i.instance_id))).collect(),
        }))
    })
}

/// list_key_replicas as a kernel operation.
pub fn list_key_replicas(req: pb::ListKeyReplicasRequest) -> impl Operation<Output = pb::ListKeyReplicasResponse> {
    Rpc::new(&OpSpec::LIST_KEY_REPLICAS, req, |app, cx, req| async move {
        let outcome = app.engine.key_address(&cx, &req.key_id)?;
        let (region, key_id) = outcome.value;
        let replicas = app.engine.replicas_of(&region, &key_id).iter().map(replica).collect();
        Ok(Outcome::read(pb::ListKeyReplicasResponse { key_id, replicas, region }))
    })
}
