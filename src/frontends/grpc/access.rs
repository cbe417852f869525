//! `kmsim.v1.AccessService`: RAM users and AccessKeys, policies, application
//! access points and ClientKeys, and GetCallerIdentity.

use tonic::{Request, Response, Status};

use super::{Grpc, Rpc};
use crate::clock::SimTime;
use crate::context::{CallContext, Principal};
use crate::engine::Outcome;
use crate::engine::access::{Aap, AccessKey, ClientKey, PolicyView, User};
use crate::kernel::OpSpec;
use crate::kernel::Operation;
use crate::proto as pb;
use crate::proto::access_service_server::AccessService;

pub struct AccessApi {
    grpc: Grpc,
}

impl AccessApi {
    pub fn new(grpc: Grpc) -> Self {
        AccessApi { grpc }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AccessService for AccessApi {
    async fn create_access_key(
        &self,
        request: Request<pb::CreateAccessKeyRequest>,
    ) -> Reply<pb::CreateAccessKeyResponse> {
        self.grpc.unary(request, create_access_key).await
    }

    async fn list_access_keys(&self, request: Request<pb::ListAccessKeysRequest>) -> Reply<pb::ListAccessKeysResponse> {
        self.grpc.unary(request, list_access_keys).await
    }

    async fn update_access_key(
        &self,
        request: Request<pb::UpdateAccessKeyRequest>,
    ) -> Reply<pb::UpdateAccessKeyResponse> {
        self.grpc.unary(request, update_access_key).await
    }

    async fn delete_access_key(
        &self,
        request: Request<pb::DeleteAccessKeyRequest>,
    ) -> Reply<pb::DeleteAccessKeyResponse> {
        self.grpc.unary(request, delete_access_key).await
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Reply<pb::ListUsersResponse> {
        self.grpc.unary(request, list_users).await
    }

    async fn create_policy(&self, request: Request<pb::CreatePolicyRequest>) -> Reply<pb::CreatePolicyResponse> {
        self.grpc.unary(request, create_policy).await
    }

    async fn get_policy(&self, request: Request<pb::GetPolicyRequest>) -> Reply<pb::GetPolicyResponse> {
        self.grpc.unary(request, get_policy).await
    }

    async fn list_policies(&self, request: Request<pb::ListPoliciesRequest>) -> Reply<pb::ListPoliciesResponse> {
        self.grpc.unary(request, list_policies).await
    }

    async fn update_policy(&self, request: Request<pb::UpdatePolicyRequest>) -> Reply<pb::UpdatePolicyResponse> {
        self.grpc.unary(request, update_policy).await
    }

    async fn delete_policy(&self, request: Request<pb::DeletePolicyRequest>) -> Reply<pb::DeletePolicyResponse> {
        self.grpc.unary(request, delete_policy).await
    }

    async fn attach_policy(&self, request: Request<pb::AttachPolicyRequest>) -> Reply<pb::AttachPolicyResponse> {
        self.grpc.unary(request, attach_policy).await
    }

    async fn detach_policy(&self, request: Request<pb::DetachPolicyRequest>) -> Reply<pb::DetachPolicyResponse> {
        self.grpc.unary(request, detach_policy).await
    }

    async fn create_application_access_point(
        &self,
        request: Request<pb::CreateApplicationAccessPointRequest>,
    ) -> Reply<pb::CreateApplicationAccessPointResponse> {
        self.grpc.unary(request, create_application_access_point).await
    }

    async fn get_application_access_point(
        &self,
        request: Request<pb::GetApplicationAccessPointRequest>,
    ) -> Reply<pb::GetApplicationAccessPointResponse> {
        self.grpc.unary(request, get_application_access_point).await
    }

    async fn list_application_access_points(
        &self,
        request: Request<pb::ListApplicationAccessPointsRequest>,
    ) -> Reply<pb::ListApplicationAccessPointsResponse> {
        self.grpc.unary(request, list_application_access_points).await
    }

    async fn delete_application_access_point(
        &self,
        request: Request<pb::DeleteApplicationAccessPointRequest>,
    ) -> Reply<pb::DeleteApplicationAccessPointResponse> {
        self.grpc.unary(request, delete_application_access_point).await
    }

    async fn create_client_key(
        &self,
        request: Request<pb::CreateClientKeyRequest>,
    ) -> Reply<pb::CreateClientKeyResponse> {
        self.grpc.unary(request, create_client_key).await
    }

    async fn get_client_key(&self, request: Request<pb::GetClientKeyRequest>) -> Reply<pb::GetClientKeyResponse> {
        self.grpc.unary(request, get_client_key).await
    }

    async fn list_client_keys(&self, request: Request<pb::ListClientKeysRequest>) -> Reply<pb::ListClientKeysResponse> {
        self.grpc.unary(request, list_client_keys).await
    }

    async fn delete_client_key(
        &self,
        request: Request<pb::DeleteClientKeyRequest>,
    ) -> Reply<pb::DeleteClientKeyResponse> {
        self.grpc.unary(request, delete_client_key).await
    }

    async fn get_caller_identity(
        &self,
        request: Request<pb::GetCallerIdentityRequest>,
    ) -> Reply<pb::GetCallerIdentityResponse> {
        self.grpc.unary(request, get_caller_identity).await
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

/// create_access_key as a kernel operation.
pub fn create_access_key(req: pb::CreateAccessKeyRequest) -> impl Operation<Output = pb::CreateAccessKeyResponse> {
    Rpc::new(&OpSpec::CREATE_ACCESS_KEY, req, |app, cx, req| async move {
        let outcome = app.engine.create_access_key(&cx, &req.user_name).await?;
        Ok(outcome.map(|key| pb::CreateAccessKeyResponse {
            access_key_secret: key.secret.expose().to_owned(),
            access_key: Some(access_key(&key)),
        }))
    })
}

/// list_access_keys as a kernel operation.
pub fn list_access_keys(req: pb::ListAccessKeysRequest) -> impl Operation<Output = pb::ListAccessKeysResponse> {
    Rpc::new(&OpSpec::LIST_ACCESS_KEYS, req, |app, _cx, req| async move {
        let keys = app.engine.list_access_keys(&req.user_name);
        Ok(Outcome::read(pb::ListAccessKeysResponse { access_keys: keys.iter().map(|k| access_key(k)).collect() }))
    })
}

/// update_access_key as a kernel operation.
pub fn update_access_key(req: pb::UpdateAccessKeyRequest) -> impl Operation<Output = pb::UpdateAccessKeyResponse> {
    Rpc::new(&OpSpec::UPDATE_ACCESS_KEY, req, |app, _cx, req| async move {
        let outcome = app.engine.update_access_key(&req.access_key_id, &req.status).await?;
        Ok(outcome.map(|key| pb::UpdateAccessKeyResponse { access_key: Some(access_key(&key)) }))
    })
}

/// delete_access_key as a kernel operation.
pub fn delete_access_key(req: pb::DeleteAccessKeyRequest) -> impl Operation<Output = pb::DeleteAccessKeyResponse> {
    Rpc::new(&OpSpec::DELETE_ACCESS_KEY, req, |app, _cx, req| async move {
        Ok(app.engine.delete_access_key(&req.access_key_id).await?.map(|()| pb::DeleteAccessKeyResponse {}))
    })
}

/// list_users as a kernel operation.
pub fn list_users(req: pb::ListUsersRequest) -> impl Operation<Output = pb::ListUsersResponse> {
    Rpc::new(&OpSpec::LIST_USERS, req, |app, _cx, _req| async move {
        let account = app.engine.account_id().to_owned();
        let users = app.engine.list_users().iter().map(|u| user(u, &account)).collect();
        Ok(Outcome::read(pb::ListUsersResponse { users }))
    })
}

/// create_policy as a kernel operation.
pub fn create_policy(req: pb::CreatePolicyRequest) -> impl Operation<Output = pb::CreatePolicyResponse> {
    Rpc::new(&OpSpec::CREATE_POLICY, req, |app, cx, req| async move {
        let outcome = app.engine.create_policy(&cx, &req.policy_name, &req.policy_document, &req.description).await?;
        Ok(outcome.map(|view| pb::CreatePolicyResponse { policy: Some(policy(&view)) }))
    })
}

/// get_policy as a kernel operation.
pub fn get_policy(req: pb::GetPolicyRequest) -> impl Operation<Output = pb::GetPolicyResponse> {
    Rpc::new(&OpSpec::GET_POLICY, req, |app, _cx, req| async move {
        let view = app.engine.get_policy(&req.policy_name)?;
        Ok(Outcome::read(pb::GetPolicyResponse { policy: Some(policy(&view)) }))
    })
}

/// list_policies as a kernel operation.
pub fn list_policies(req: pb::ListPoliciesRequest) -> impl Operation<Output = pb::ListPoliciesResponse> {
    Rpc::new(&OpSpec::LIST_POLICIES, req, |app, _cx, _req| async move {
        let policies = app.engine.list_policies().iter().map(policy).collect();
        Ok(Outcome::read(pb::ListPoliciesResponse { policies }))
    })
}

/// update_policy as a kernel operation.
pub fn update_policy(req: pb::UpdatePolicyRequest) -> impl Operation<Output = pb::UpdatePolicyResponse> {
    Rpc::new(&OpSpec::UPDATE_POLICY, req, |app, cx, req| async move {
        let outcome = app.engine.update_policy(&cx, &req.policy_name, &req.policy_document).await?;
        Ok(outcome.map(|view| pb::UpdatePolicyResponse { policy: Some(policy(&view)) }))
    })
}

/// delete_policy as a kernel operation.
pub fn delete_policy(req: pb::DeletePolicyRequest) -> impl Operation<Output = pb::DeletePolicyResponse> {
    Rpc::new(&OpSpec::DELETE_POLICY, req, |app, _cx, req| async move {
        Ok(app.engine.delete_policy(&req.policy_name).await?.map(|()| pb::DeletePolicyResponse {}))
    })
}

/// attach_policy as a kernel operation.
pub fn attach_policy(req: pb::AttachPolicyRequest) -> impl Operation<Output = pb::AttachPolicyResponse> {
    Rpc::new(&OpSpec::ATTACH_POLICY, req, |app, cx, req| async move {
        let principal = (req.principal_type.as_str(), req.principal_name.as_str());
        let outcome = app.engine.attach_policy(&cx, &req.policy_name, principal, true).await?;
        Ok(outcome.map(|()| pb::AttachPolicyResponse {}))
    })
}

/// detach_policy as a kernel operation.
pub fn detach_policy(req: pb::DetachPolicyRequest) -> impl Operation<Output = pb::DetachPolicyResponse> {
    Rpc::new(&OpSpec::DETACH_POLICY, req, |app, cx, req| async move {
        let principal = (req.principal_type.as_str(), req.principal_name.as_str());
        let outcome = app.engine.attach_policy(&cx, &req.policy_name, principal, false).await?;
        Ok(outcome.map(|()| pb::DetachPolicyResponse {}))
    })
}

/// create_application_access_point as a kernel operation.
pub fn create_application_access_point(
    req: pb::CreateApplicationAccessPointRequest,
) -> impl Operation<Output = pb::CreateApplicationAccessPointResponse> {
    Rpc::new(&OpSpec::CREATE_AAP, req, |app, cx, req| async move {
        let outcome =
            app.engine.create_aap(&cx, &req.name, &req.description, &req.kms_instance_id, &req.policy_names).await?;
        Ok(outcome.map(|a| pb::CreateApplicationAccessPointResponse { application_access_point: Some(aap(&a)) }))
    })
}

/// get_application_access_point as a kernel operation.
pub fn get_application_access_point(
    req: pb::GetApplicationAccessPointRequest,
) -> impl Operation<Output = pb::GetApplicationAccessPointResponse> {
    Rpc::new(&OpSpec::GET_AAP, req, |app, _cx, req| async move {
        let found = app.engine.get_aap(&req.name)?;
        Ok(Outcome::read(pb::GetApplicationAccessPointResponse { application_access_point: Some(aap(&found)) }))
    })
}

/// list_application_access_points as a kernel operation.
pub fn list_application_access_points(
    req: pb::ListApplicationAccessPointsRequest,
) -> impl Operation<Output = pb::ListApplicationAccessPointsResponse> {
    Rpc::new(&OpSpec::LIST_AAPS, req, |app, _cx, _req| async move {
        let listed = app.engine.list_aaps().iter().map(|a| aap(a)).collect();
        Ok(Outcome::read(pb::ListApplicationAccessPointsResponse { application_access_points: listed }))
    })
}

/// delete_application_access_point as a kernel operation.
pub fn delete_application_access_point(
    req: pb::DeleteApplicationAccessPointRequest,
) -> impl Operation<Output = pb::DeleteApplicationAccessPointResponse> {
    Rpc::new(&OpSpec::DELETE_AAP, req, |app, _cx, req| async move {
        Ok(app.engine.delete_aap(&req.name).await?.map(|()| pb::DeleteApplicationAccessPointResponse {}))
    })
}

/// create_client_key as a kernel operation.
pub fn create_client_key(req: pb::CreateClientKeyRequest) -> impl Operation<Output = pb::CreateClientKeyResponse> {
    Rpc::new(&OpSpec::CREATE_CLIENT_KEY, req, |app, cx, req| async move {
        let outcome = app.engine.create_client_key(&cx, &req.aap_name, &req.not_before, &req.not_after).await?;
        let now = cx.received_at;
        Ok(outcome.map(|key| pb::CreateClientKeyResponse {
            client_key_secret: key.secret.expose().to_owned(),
            client_key: Some(client_key(&key, now)),
        }))
    })
}

/// get_client_key as a kernel operation.
pub fn get_client_key(req: pb::GetClientKeyRequest) -> impl Operation<Output = pb::GetClientKeyResponse> {
    Rpc::new(&OpSpec::GET_CLIENT_KEY, req, |app, cx, req| async move {
        let key = app.engine.get_client_key(&req.client_key_id)?;
        Ok(Outcome::read(pb::GetClientKeyResponse { client_key: Some(client_key(&key, cx.received_at)) }))
    })
}

/// list_client_keys as a kernel operation.
pub fn list_client_keys(req: pb::ListClientKeysRequest) -> impl Operation<Output = pb::ListClientKeysResponse> {
    Rpc::new(&OpSpec::LIST_CLIENT_KEYS, req, |app, cx, req| async move {
        let keys = app.engine.list_client_keys(&req.aap_name);
        let client_keys = keys.iter().map(|k| client_key(k, cx.received_at)).collect();
        Ok(Outcome::read(pb::ListClientKeysResponse { client_keys }))
    })
}

/// delete_client_key as a kernel operation.
pub fn delete_client_key(req: pb::DeleteClientKeyRequest) -> impl Operation<Output = pb::DeleteClientKeyResponse> {
    Rpc::new(&OpSpec::DELETE_CLIENT_KEY, req, |app, _cx, req| async move {
        Ok(app.engine.delete_client_key(&req.client_key_id).await?.map(|()| pb::DeleteClientKeyResponse {}))
    })
}

/// get_caller_identity as a kernel operation.
pub fn get_caller_identity(
    req: pb::GetCallerIdentityRequest,
) -> impl Operation<Output = pb::GetCallerIdentityResponse> {
    Rpc::new(&OpSpec::GET_CALLER_IDENTITY, req, |_app, cx, _req| async move { Ok(Outcome::read(caller_identity(&cx))) })
}
