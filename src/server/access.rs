//! `kmsim.v1.AccessService`: RAM users and AccessKeys, policies, application
//! access points and ClientKeys, and GetCallerIdentity.

use tonic::{Request, Response, Status};

use super::dispatch::Dispatcher;
use crate::audit::OpSpec;
use crate::clock::SimTime;
use crate::context::{CallContext, Principal};
use crate::engine::Outcome;
use crate::engine::access::{Aap, AccessKey, ClientKey, PolicyView, User};
use crate::proto as pb;
use crate::proto::access_service_server::AccessService;

pub struct AccessApi {
    dispatch: Dispatcher,
}

impl AccessApi {
    pub fn new(dispatch: Dispatcher) -> Self {
        AccessApi { dispatch }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AccessService for AccessApi {
    async fn create_access_key(
        &self,
        request: Request<pb::CreateAccessKeyRequest>,
    ) -> Reply<pb::CreateAccessKeyResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_ACCESS_KEY, request, |app, cx, req| async move {
                let outcome = app.engine.create_access_key(&cx, &req.user_name).await?;
                Ok(outcome.map(|key| pb::CreateAccessKeyResponse {
                    access_key_secret: key.secret.expose().to_owned(),
                    access_key: Some(access_key(&key)),
                }))
            })
            .await
    }

    async fn list_access_keys(&self, request: Request<pb::ListAccessKeysRequest>) -> Reply<pb::ListAccessKeysResponse> {
        self.dispatch
            .run(&OpSpec::LIST_ACCESS_KEYS, request, |app, _cx, req| async move {
                let keys = app.engine.list_access_keys(&req.user_name);
                Ok(Outcome::read(pb::ListAccessKeysResponse {
                    access_keys: keys.iter().map(|k| access_key(k)).collect(),
                }))
            })
            .await
    }

    async fn update_access_key(
        &self,
        request: Request<pb::UpdateAccessKeyRequest>,
    ) -> Reply<pb::UpdateAccessKeyResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_ACCESS_KEY, request, |app, _cx, req| async move {
                let outcome = app.engine.update_access_key(&req.access_key_id, &req.status).await?;
                Ok(outcome.map(|key| pb::UpdateAccessKeyResponse { access_key: Some(access_key(&key)) }))
            })
            .await
    }

    async fn delete_access_key(
        &self,
        request: Request<pb::DeleteAccessKeyRequest>,
    ) -> Reply<pb::DeleteAccessKeyResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_ACCESS_KEY, request, |app, _cx, req| async move {
                Ok(app.engine.delete_access_key(&req.access_key_id).await?.map(|()| pb::DeleteAccessKeyResponse {}))
            })
            .await
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Reply<pb::ListUsersResponse> {
        self.dispatch
            .run(&OpSpec::LIST_USERS, request, |app, _cx, _req| async move {
                let account = app.engine.account_id().to_owned();
                let users = app.engine.list_users().iter().map(|u| user(u, &account)).collect();
                Ok(Outcome::read(pb::ListUsersResponse { users }))
            })
            .await
    }

    async fn create_policy(&self, request: Request<pb::CreatePolicyRequest>) -> Reply<pb::CreatePolicyResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_POLICY, request, |app, cx, req| async move {
                let outcome =
                    app.engine.create_policy(&cx, &req.policy_name, &req.policy_document, &req.description).await?;
                Ok(outcome.map(|view| pb::CreatePolicyResponse { policy: Some(policy(&view)) }))
            })
            .await
    }

    async fn get_policy(&self, request: Request<pb::GetPolicyRequest>) -> Reply<pb::GetPolicyResponse> {
        self.dispatch
            .run(&OpSpec::GET_POLICY, request, |app, _cx, req| async move {
                let view = app.engine.get_policy(&req.policy_name)?;
                Ok(Outcome::read(pb::GetPolicyResponse { policy: Some(policy(&view)) }))
            })
            .await
    }

    async fn list_policies(&self, request: Request<pb::ListPoliciesRequest>) -> Reply<pb::ListPoliciesResponse> {
        self.dispatch
            .run(&OpSpec::LIST_POLICIES, request, |app, _cx, _req| async move {
                let policies = app.engine.list_policies().iter().map(policy).collect();
                Ok(Outcome::read(pb::ListPoliciesResponse { policies }))
            })
            .await
    }

    async fn update_policy(&self, request: Request<pb::UpdatePolicyRequest>) -> Reply<pb::UpdatePolicyResponse> {
        self.dispatch
            .run(&OpSpec::UPDATE_POLICY, request, |app, cx, req| async move {
                let outcome = app.engine.update_policy(&cx, &req.policy_name, &req.policy_document).await?;
                Ok(outcome.map(|view| pb::UpdatePolicyResponse { policy: Some(policy(&view)) }))
            })
            .await
    }

    async fn delete_policy(&self, request: Request<pb::DeletePolicyRequest>) -> Reply<pb::DeletePolicyResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_POLICY, request, |app, _cx, req| async move {
                Ok(app.engine.delete_policy(&req.policy_name).await?.map(|()| pb::DeletePolicyResponse {}))
            })
            .await
    }

    async fn attach_policy(&self, request: Request<pb::AttachPolicyRequest>) -> Reply<pb::AttachPolicyResponse> {
        self.dispatch
            .run(&OpSpec::ATTACH_POLICY, request, |app, cx, req| async move {
                let principal = (req.principal_type.as_str(), req.principal_name.as_str());
                let outcome = app.engine.attach_policy(&cx, &req.policy_name, principal, true).await?;
                Ok(outcome.map(|()| pb::AttachPolicyResponse {}))
            })
            .await
    }

    async fn detach_policy(&self, request: Request<pb::DetachPolicyRequest>) -> Reply<pb::DetachPolicyResponse> {
        self.dispatch
            .run(&OpSpec::DETACH_POLICY, request, |app, cx, req| async move {
                let principal = (req.principal_type.as_str(), req.principal_name.as_str());
                let outcome = app.engine.attach_policy(&cx, &req.policy_name, principal, false).await?;
                Ok(outcome.map(|()| pb::DetachPolicyResponse {}))
            })
            .await
    }

    async fn create_application_access_point(
        &self,
        request: Request<pb::CreateApplicationAccessPointRequest>,
    ) -> Reply<pb::CreateApplicationAccessPointResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_AAP, request, |app, cx, req| async move {
                let outcome = app
                    .engine
                    .create_aap(&cx, &req.name, &req.description, &req.kms_instance_id, &req.policy_names)
                    .await?;
                Ok(outcome
                    .map(|a| pb::CreateApplicationAccessPointResponse { application_access_point: Some(aap(&a)) }))
            })
            .await
    }

    async fn get_application_access_point(
        &self,
        request: Request<pb::GetApplicationAccessPointRequest>,
    ) -> Reply<pb::GetApplicationAccessPointResponse> {
        self.dispatch
            .run(&OpSpec::GET_AAP, request, |app, _cx, req| async move {
                let found = app.engine.get_aap(&req.name)?;
                Ok(Outcome::read(pb::GetApplicationAccessPointResponse { application_access_point: Some(aap(&found)) }))
            })
            .await
    }

    async fn list_application_access_points(
        &self,
        request: Request<pb::ListApplicationAccessPointsRequest>,
    ) -> Reply<pb::ListApplicationAccessPointsResponse> {
        self.dispatch
            .run(&OpSpec::LIST_AAPS, request, |app, _cx, _req| async move {
                let listed = app.engine.list_aaps().iter().map(|a| aap(a)).collect();
                Ok(Outcome::read(pb::ListApplicationAccessPointsResponse { application_access_points: listed }))
            })
            .await
    }

    async fn delete_application_access_point(
        &self,
        request: Request<pb::DeleteApplicationAccessPointRequest>,
    ) -> Reply<pb::DeleteApplicationAccessPointResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_AAP, request, |app, _cx, req| async move {
                Ok(app.engine.delete_aap(&req.name).await?.map(|()| pb::DeleteApplicationAccessPointResponse {}))
            })
            .await
    }

    async fn create_client_key(
        &self,
        request: Request<pb::CreateClientKeyRequest>,
    ) -> Reply<pb::CreateClientKeyResponse> {
        self.dispatch
            .run(&OpSpec::CREATE_CLIENT_KEY, request, |app, cx, req| async move {
                let outcome = app.engine.create_client_key(&cx, &req.aap_name, &req.not_before, &req.not_after).await?;
                let now = cx.received_at;
                Ok(outcome.map(|key| pb::CreateClientKeyResponse {
                    client_key_secret: key.secret.expose().to_owned(),
                    client_key: Some(client_key(&key, now)),
                }))
            })
            .await
    }

    async fn get_client_key(&self, request: Request<pb::GetClientKeyRequest>) -> Reply<pb::GetClientKeyResponse> {
        self.dispatch
            .run(&OpSpec::GET_CLIENT_KEY, request, |app, cx, req| async move {
                let key = app.engine.get_client_key(&req.client_key_id)?;
                Ok(Outcome::read(pb::GetClientKeyResponse { client_key: Some(client_key(&key, cx.received_at)) }))
            })
            .await
    }

    async fn list_client_keys(&self, request: Request<pb::ListClientKeysRequest>) -> Reply<pb::ListClientKeysResponse> {
        self.dispatch
            .run(&OpSpec::LIST_CLIENT_KEYS, request, |app, cx, req| async move {
                let keys = app.engine.list_client_keys(&req.aap_name);
                let client_keys = keys.iter().map(|k| client_key(k, cx.received_at)).collect();
                Ok(Outcome::read(pb::ListClientKeysResponse { client_keys }))
            })
            .await
    }

    async fn delete_client_key(
        &self,
        request: Request<pb::DeleteClientKeyRequest>,
    ) -> Reply<pb::DeleteClientKeyResponse> {
        self.dispatch
            .run(&OpSpec::DELETE_CLIENT_KEY, request, |app, _cx, req| async move {
                Ok(app.engine.delete_client_key(&req.client_key_id).await?.map(|()| pb::DeleteClientKeyResponse {}))
            })
            .await
    }

    async fn get_caller_identity(
        &self,
        request: Request<pb::GetCallerIdentityRequest>,
    ) -> Reply<pb::GetCallerIdentityResponse> {
        self.dispatch
            .run(&OpSpec::GET_CALLER_IDENTITY, request, |_app, cx, _req| async move {
                Ok(Outcome::read(caller_identity(&cx)))
            })
            .await
    }
}

fn caller_identity(cx: &CallContext) -> pb::GetCallerIdentityResponse {
    let account = &cx.account_id;
    let (identity_type, principal_id, user_name, arn) = match &cx.principal {
        Principal::Account => ("anonymous", account.clone(), "root".to_owned(), format!("acs:ram::{account}:root")),
        Principal::Anonymous => ("anonymous", String::new(), String::new(), String::new()),
        Principal::Admin => ("root-account", account.clone(), "root".to_owned(), format!("acs:ram::{account}:root")),
        Principal::Unverified => {
            ("ram-user", cx.access_key_id.clone(), String::new(), format!("acs:ram::{account}:user/*"))
        }
        Principal::User { name, user_id } => {
            ("ram-user", user_id.clone(), name.clone(), format!("acs:ram::{account}:user/{name}"))
        }
        Principal::Aap { name, arn } => ("assumed-role", format!("aap/{name}"), name.clone(), arn.clone()),
    };
    pb::GetCallerIdentityResponse {
        identity_type: identity_type.to_owned(),
        principal_id,
        account_id: account.clone(),
        access_key_id: cx.access_key_id.clone(),
        user_name,
        arn,
        authenticated_by: cx.authenticated_by.as_str().to_owned(),
    }
}

fn access_key(key: &AccessKey) -> pb::AccessKey {
    pb::AccessKey {
        access_key_id: key.access_key_id.clone(),
        user_name: key.user_name.clone(),
        status: key.status().to_owned(),
        create_time: key.created.to_rfc3339(),
    }
}

fn user(user: &User, account: &str) -> pb::User {
    pb::User {
        user_name: user.user_name.clone(),
        user_id: user.user_id.clone(),
        arn: format!("acs:ram::{account}:user/{}", user.user_name),
        policy_names: user.policies.clone(),
        create_time: user.created.to_rfc3339(),
    }
}

fn policy(view: &PolicyView) -> pb::Policy {
    let p = &view.policy;
    pb::Policy {
        policy_name: p.policy_name.clone(),
        description: p.description.clone(),
        policy_document: p.document.clone(),
        create_time: p.created.to_rfc3339(),
        update_time: p.updated.to_rfc3339(),
        attachments: view.attachments.clone(),
    }
}

fn aap(a: &Aap) -> pb::ApplicationAccessPoint {
    pb::ApplicationAccessPoint {
        name: a.name.clone(),
        arn: a.arn(),
        description: a.description.clone(),
        kms_instance_id: a.kms_instance_id.clone(),
        policy_names: a.policies.clone(),
        create_time: a.created.to_rfc3339(),
    }
}

fn client_key(key: &ClientKey, now: SimTime) -> pb::ClientKey {
    pb::ClientKey {
        client_key_id: key.client_key_id.clone(),
        aap_name: key.aap_name.clone(),
        not_before: key.not_before.to_rfc3339(),
        not_after: key.not_after.to_rfc3339(),
        create_time: key.created.to_rfc3339(),
        status: key.status(now).to_owned(),
    }
}
