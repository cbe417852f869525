//! `kmsim.v1.AccessService`: which kernel operation each method is, how its
//! request decodes into it, and how its output encodes as the response. The
//! kernel does the rest.

use super::{Grpc, decode, service};
use crate::engine::access::{Aap, AccessKey, ClientKey, PolicyView};
use crate::kernel::ops::access as ops;
use crate::proto as pb;
use crate::proto::access_service_server::AccessService;
use zeroize::Zeroizing;

pub struct AccessApi {
    grpc: Grpc,
}

impl AccessApi {
    pub fn new(grpc: Grpc) -> Self {
        AccessApi { grpc }
    }
}

service! {
    impl AccessService for AccessApi {
        create_access_key(CreateAccessKeyRequest) -> CreateAccessKeyResponse = CreateAccessKey,
            |key| pb::CreateAccessKeyResponse {
                access_key_secret: key.secret.expose().to_owned(),
                access_key: Some(access_key(&key)),
            };
        list_access_keys(ListAccessKeysRequest) -> ListAccessKeysResponse = ListAccessKeys,
            |keys| pb::ListAccessKeysResponse { access_keys: keys.iter().map(|k| access_key(k)).collect() };
        update_access_key(UpdateAccessKeyRequest) -> UpdateAccessKeyResponse = UpdateAccessKey,
            |key| pb::UpdateAccessKeyResponse { access_key: Some(access_key(&key)) };
        delete_access_key(DeleteAccessKeyRequest) -> DeleteAccessKeyResponse = DeleteAccessKey,
            |()| pb::DeleteAccessKeyResponse {};
        list_users(ListUsersRequest) -> ListUsersResponse = ListUsers, |users| pb::ListUsersResponse {
            users: users
                .into_iter()
                .map(|(user, arn)| pb::User {
                    user_name: user.user_name.clone(),
                    user_id: user.user_id.clone(),
                    arn,
                    policy_names: user.policies.clone(),
                    create_time: user.created.to_rfc3339(),
                })
                .collect(),
        };
        create_policy(CreatePolicyRequest) -> CreatePolicyResponse = CreatePolicy,
            |view| pb::CreatePolicyResponse { policy: Some(policy(&view)) };
        get_policy(GetPolicyRequest) -> GetPolicyResponse = GetPolicy,
            |view| pb::GetPolicyResponse { policy: Some(policy(&view)) };
        list_policies(ListPoliciesRequest) -> ListPoliciesResponse = ListPolicies,
            |views| pb::ListPoliciesResponse { policies: views.iter().map(policy).collect() };
        update_policy(UpdatePolicyRequest) -> UpdatePolicyResponse = UpdatePolicy,
            |view| pb::UpdatePolicyResponse { policy: Some(policy(&view)) };
        delete_policy(DeletePolicyRequest) -> DeletePolicyResponse = DeletePolicy, |()| pb::DeletePolicyResponse {};
        attach_policy(AttachPolicyRequest) -> AttachPolicyResponse = AttachPolicy, |()| pb::AttachPolicyResponse {};
        detach_policy(DetachPolicyRequest) -> DetachPolicyResponse = DetachPolicy, |()| pb::DetachPolicyResponse {};
        create_application_access_point(CreateApplicationAccessPointRequest) -> CreateApplicationAccessPointResponse =
            CreateApplicationAccessPoint,
            |a| pb::CreateApplicationAccessPointResponse { application_access_point: Some(aap(&a)) };
        get_application_access_point(GetApplicationAccessPointRequest) -> GetApplicationAccessPointResponse =
            GetApplicationAccessPoint,
            |a| pb::GetApplicationAccessPointResponse { application_access_point: Some(aap(&a)) };
        list_application_access_points(ListApplicationAccessPointsRequest) -> ListApplicationAccessPointsResponse =
            ListApplicationAccessPoints, |aaps| pb::ListApplicationAccessPointsResponse {
                application_access_points: aaps.iter().map(|a| aap(a)).collect(),
            };
        delete_application_access_point(DeleteApplicationAccessPointRequest) -> DeleteApplicationAccessPointResponse =
            DeleteApplicationAccessPoint, |()| pb::DeleteApplicationAccessPointResponse {};
        create_client_key(CreateClientKeyRequest) -> CreateClientKeyResponse = CreateClientKey,
            |made| pb::CreateClientKeyResponse {
                client_key_secret: made.key.secret.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default(),
                private_key_data: made.private_key_data.map(|p| p.expose().to_owned()).unwrap_or_default(),
                client_key: Some(client_key(&made.key, made.status)),
            };
        get_client_key(GetClientKeyRequest) -> GetClientKeyResponse = GetClientKey,
            |(key, status)| pb::GetClientKeyResponse { client_key: Some(client_key(&key, status)) };
        list_client_keys(ListClientKeysRequest) -> ListClientKeysResponse = ListClientKeys,
            |keys| pb::ListClientKeysResponse {
                client_keys: keys.iter().map(|(key, status)| client_key(key, status)).collect(),
            };
        delete_client_key(DeleteClientKeyRequest) -> DeleteClientKeyResponse = DeleteClientKey,
            |()| pb::DeleteClientKeyResponse {};
        get_caller_identity(GetCallerIdentityRequest) -> GetCallerIdentityResponse = GetCallerIdentity,
            |id| pb::GetCallerIdentityResponse {
                identity_type: id.identity_type.to_owned(),
                principal_id: id.principal_id,
                account_id: id.account_id,
                access_key_id: id.access_key_id,
                user_name: id.user_name,
                arn: id.arn,
                authenticated_by: id.authenticated_by.as_str().to_owned(),
            };
    }
}

decode! {
    CreateAccessKeyRequest => CreateAccessKey { user_name }
    ListAccessKeysRequest => ListAccessKeys { user_name }
    UpdateAccessKeyRequest => UpdateAccessKey { access_key_id, status }
    DeleteAccessKeyRequest => DeleteAccessKey { access_key_id }
    ListUsersRequest => ListUsers {}
    CreatePolicyRequest => CreatePolicy { policy_name, policy_document, description }
    GetPolicyRequest => GetPolicy { policy_name }
    ListPoliciesRequest => ListPolicies {}
    UpdatePolicyRequest => UpdatePolicy { policy_name, policy_document }
    DeletePolicyRequest => DeletePolicy { policy_name }
    AttachPolicyRequest => AttachPolicy { policy_name, principal_type, principal_name }
    DetachPolicyRequest => DetachPolicy { policy_name, principal_type, principal_name }
    CreateApplicationAccessPointRequest => CreateApplicationAccessPoint {
        name, description, kms_instance_id, policy_names, authentication_method,
    }
    GetApplicationAccessPointRequest => GetApplicationAccessPoint { name }
    ListApplicationAccessPointsRequest => ListApplicationAccessPoints {}
    DeleteApplicationAccessPointRequest => DeleteApplicationAccessPoint { name }
    CreateClientKeyRequest => CreateClientKey { aap_name, not_before, not_after, password: Zeroizing::new }
    GetClientKeyRequest => GetClientKey { client_key_id }
    ListClientKeysRequest => ListClientKeys { aap_name }
    DeleteClientKeyRequest => DeleteClientKey { client_key_id }
    GetCallerIdentityRequest => GetCallerIdentity {}
}

fn access_key(key: &AccessKey) -> pb::AccessKey {
    pb::AccessKey {
        access_key_id: key.access_key_id.clone(),
        user_name: key.user_name.clone(),
        status: key.status().to_owned(),
        create_time: key.created.to_rfc3339(),
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

/// A ClientKey with its status when the call arrived.
fn client_key(key: &ClientKey, status: &str) -> pb::ClientKey {
    pb::ClientKey {
        client_key_id: key.client_key_id.clone(),
        aap_name: key.aap_name.clone(),
        not_before: key.not_before.to_rfc3339(),
        not_after: key.not_after.to_rfc3339(),
        create_time: key.created.to_rfc3339(),
        status: status.to_owned(),
        kind: key.kind().to_owned(),
    }
}
