//! `kmsim.v1.InstanceService`: KMS instances and cross-region key sync.

use tonic::{Request, Response, Status};

use super::dispatch::Dispatcher;
use crate::audit::OpSpec;
use crate::engine::key::ReplicaTarget;
use crate::engine::{CreateInstanceInput, Instance, Outcome};
use crate::proto as pb;
use crate::proto::instance_service_server::InstanceService;

pub struct InstancesApi {
    dispatch: Dispatcher,
}

impl InstancesApi {
    pub fn new(dispatch: Dispatcher) -> Self {
        InstancesApi { dispatch }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl InstanceService for InstancesApi {
    async fn create_kms_instance(
        &self,
        request: Request<pb::CreateKmsInstanceRequest>,
    ) -> Reply<pb::CreateKmsInstanceResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_KMS_INSTANCE, request, |app, cx, req| async move {
                let input = CreateInstanceInput {
                    region: req.region,
                    spec: req.spec,
                    expire_time: req.expire_time,
                    instance_name: req.instance_name,
                };
                let outcome = app.engine.create_instance(&cx, input)?;
                Ok(outcome.map(|i| pb::CreateKmsInstanceResponse { kms_instance: Some(instance(&i, 0)) }))
            })
            .await
    }

    async fn get_kms_instance(&self, request: Request<pb::GetKmsInstanceRequest>) -> Reply<pb::GetKmsInstanceResponse> {
        self.dispatch
            .run(&OpSpec::GET_KMS_INSTANCE, request, |app, cx, req| async move {
                let outcome = app.engine.get_instance(&cx, &req.kms_instance_id)?;
                let keys = app.engine.instance_key_count(&req.kms_instance_id);
                Ok(outcome.map(|i| pb::GetKmsInstanceResponse { kms_instance: Some(instance(&i, keys)) }))
            })
            .await
    }

    async fn list_kms_instances(
        &self,
        request: Request<pb::ListKmsInstancesRequest>,
    ) -> Reply<pb::ListKmsInstancesResponse> {
        self.dispatch
            .run(&OpSpec::LIST_KMS_INSTANCES, request, |app, cx, _req| async move {
                let listed = app.engine.list_instances(&cx);
                let engine = app.engine.clone();
                Ok(listed.map(|all| pb::ListKmsInstancesResponse {
                    kms_instances: all.iter().map(|i| instance(i, engine.instance_key_count(&i.instance_id))).collect(),
                }))
            })
            .await
    }

    async fn replicate_key(&self, request: Request<pb::ReplicateKeyRequest>) -> Reply<pb::ReplicateKeyResponse> {
        let mut response = self
            .dispatch
            .run(&OpSpec::REPLICATE_KEY, request, |app, cx, req| async move {
                let outcome =
                    app.engine.replicate_key(&cx, &req.key_id, &req.shadow_instance_id, &req.sync_interval).await?;
                Ok(outcome.map(|key| pb::ReplicateKeyResponse {
                    key_id: key.meta.key_id.clone(),
                    region: key.meta.region.clone(),
                    replicas: Vec::new(),
                }))
            })
            .await?;
        // The first sync is due at once; the answer reports how it ended.
        self.catch_up().await;
        let body = response.get_mut();
        body.replicas = self.replicas(&body.region, &body.key_id);
        Ok(response)
    }

    async fn sync_key(&self, request: Request<pb::SyncKeyRequest>) -> Reply<pb::SyncKeyResponse> {
        let mut response = self
            .dispatch
            .run(&OpSpec::SYNC_KEY, request, |app, cx, req| async move {
                let outcome = app.engine.request_sync(&cx, &req.key_id).await?;
                Ok(outcome.map(|key| pb::SyncKeyResponse {
                    key_id: key.meta.key_id.clone(),
                    region: key.meta.region.clone(),
                    replicas: Vec::new(),
                }))
            })
            .await?;
        // The sync tasks run as the scheduler's service events; the answer reports how they ended.
        self.catch_up().await;
        let body = response.get_mut();
        body.replicas = self.replicas(&body.region, &body.key_id);
        Ok(response)
    }

    async fn list_key_replicas(
        &self,
        request: Request<pb::ListKeyReplicasRequest>,
    ) -> Reply<pb::ListKeyReplicasResponse> {
        self.dispatch
            .run(&OpSpec::LIST_KEY_REPLICAS, request, |app, cx, req| async move {
                let outcome = app.engine.key_address(&cx, &req.key_id)?;
                let (region, key_id) = outcome.value;
                let replicas = app.engine.replicas_of(&region, &key_id).iter().map(replica).collect();
                Ok(Outcome::read(pb::ListKeyReplicasResponse { key_id, replicas, region }))
            })
            .await
    }
}

impl InstancesApi {
    /// Runs the syncs a call made due before it answers.
    async fn catch_up(&self) {
        let app = self.dispatch.app();
        app.scheduler.run_due(app).await;
    }

    fn replicas(&self, region: &str, key_id: &str) -> Vec<pb::KeyReplica> {
        self.dispatch.app().engine.replicas_of(region, key_id).iter().map(replica).collect()
    }
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
