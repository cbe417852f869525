//! The kmsim.v1 gRPC front end (tonic over HTTP/2): the services, the
//! signature layer, the mapping of errors to gRPC statuses, health and
//! reflection. Each handler only decodes its request into a kernel
//! [`Operation`] and encodes the answer; [`Grpc`] hands the call to the kernel.

pub mod access;
pub mod audit;
pub mod credentials;
pub mod edge;
pub mod events;
pub mod headers;
pub mod instances;
pub mod kms;
pub mod secrets;
pub mod signing;
pub mod simulation;
pub mod status;
pub mod tls;

use std::sync::Arc;

use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use tonic::transport::Server;
use tonic::transport::server::Router;

use crate::engine::KmsError;
use crate::engine::instances::is_region_id;
use crate::kernel::meta::{client_request_id, new_request_id};
use crate::kernel::{Answer, App, CallMeta, Operation};
use crate::proto::access_service_server::AccessServiceServer;
use crate::proto::audit_service_server::AuditServiceServer;
use crate::proto::event_service_server::EventServiceServer;
use crate::proto::instance_service_server::InstanceServiceServer;
use crate::proto::key_management_service_server::KeyManagementServiceServer;
use crate::proto::secrets_manager_service_server::SecretsManagerServiceServer;
use crate::proto::simulation_service_server::SimulationServiceServer;
use crate::server::{BoxError, Limits, ServerConfig};

/// The name this front end gives its calls in the kernel's logs.
pub const FRONTEND: &str = "grpc";

/// What every service handler holds: the way into the kernel.
#[derive(Clone)]
pub struct Grpc {
    app: Arc<App>,
}

impl Grpc {
    pub fn new(app: Arc<App>) -> Grpc {
        Grpc { app }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Runs the unary call `request`: `decode` makes its message a kernel
    /// operation, `encode` makes the operation's output the response.
    pub async fn call<Req, Op, Resp>(
        &self,
        request: Request<Req>,
        decode: impl FnOnce(Req) -> Op,
        encode: impl FnOnce(Op::Output) -> Resp,
    ) -> Reply<Resp>
    where
        Req: Message,
        Op: Operation,
        Resp: Message,
    {
        let (meta, message) = self.meta(request);
        reply(self.app.execute(meta, decode(message), |output| sized(encode(output))).await)
    }

    /// Opens the server stream `request` asks for, as [`Grpc::call`] runs a
    /// unary call: its record says the stream was opened (or refused), not
    /// what it carried.
    pub async fn open<Req, Op, Resp>(
        &self,
        request: Request<Req>,
        decode: impl FnOnce(Req) -> Op,
        encode: impl FnOnce(Op::Output) -> Resp,
    ) -> Reply<Resp>
    where
        Req: Message,
        Op: Operation,
    {
        let (meta, message) = self.meta(request);
        reply(self.app.execute(meta, decode(message), |output| (encode(output), 0)).await)
    }

    /// The call's metadata in the kernel's terms, and its message.
    fn meta<Req: Message>(&self, request: Request<Req>) -> (CallMeta, Req) {
        let metadata = request.metadata();
        let mut meta = CallMeta::new(FRONTEND, &self.app.region, new_request_id());
        meta.client_request_id = client_request_id(header(metadata, headers::CLIENT_REQUEST_ID).as_deref());
        meta.peer = crate::frontends::peer(request.extensions());
        meta.user_agent = header(metadata, headers::USER_AGENT).unwrap_or_default();
        match header(metadata, headers::REGION) {
            None => {}
            Some(region) if is_region_id(&region) => meta.region = region,
            Some(_) => {
                meta.refusal =
                    Some(KmsError::invalid_because("RegionId", "Name a region such as cn-hangzhou in x-kms-region."))
            }
        }
        meta.credential = credentials::present(&self.app, &request);
        let message = request.into_inner();
        meta.request_bytes = message.encoded_len() as u64;
        (meta, message)
    }
}

pub type Reply<T> = Result<Response<T>, Status>;

/// A response as sent, with its size on the wire for its audit record.
pub fn sized<M: Message>(response: M) -> (M, u64) {
    let bytes = response.encoded_len() as u64;
    (response, bytes)
}

/// The kernel's answer as gRPC: the response with the request id in its
/// metadata, or the error's status.
fn reply<R>(answer: Answer<R>) -> Reply<R> {
    let Answer { request_id, result } = answer;
    match result {
        Ok(body) => {
            let mut response = Response::new(body);
            if let Ok(value) = request_id.parse() {
                response.metadata_mut().insert(headers::REQUEST_ID, value);
            }
            Ok(response)
        }
        Err(error) => Err(status::to_status(&error, &request_id)),
    }
}

/// Decodes kmsim.v1 requests into the kernel's operations (`ops::…` at the
/// call site), field by field. Each request is destructured whole, so a field
/// added to the proto does not compile until it is decoded; `field: f` passes
/// the field through `f`, for the values the kernel keeps in its own types;
/// `+ { field: value }` sets what kmsim.v1 does not carry (another front
/// end's choice, fixed here).
macro_rules! decode {
    ($($request:ident => $op:ident { $($field:ident $(: $convert:expr)?),* $(,)? }
        $(+ { $($extra:ident: $value:expr),* $(,)? })?)+) => {
        $(impl From<crate::proto::$request> for ops::$op {
            fn from(request: crate::proto::$request) -> ops::$op {
                let crate::proto::$request { $($field),* } = request;
                ops::$op { $($field $(: ($convert)($field))?,)* $($($extra: $value),*)? }
            }
        })+
    };
}
pub(crate) use decode;

/// A kmsim.v1 service as a table: each method, its request and response, the
/// kernel operation it decodes to (`ops::…` at the call site, through
/// [`decode!`]) and how that operation's output becomes the response. Each
/// method's encoder is also `encode::<method>`, for the generator, which
/// makes kmsim.v1 calls without the transport. What a table cannot say (a
/// stream's type, a call made differently) follows it after `@by_hand`.
macro_rules! service {
    (impl $service:ident for $api:ident {
        $($method:ident($request:ident) -> $response:ident = $op:ident, $encode:expr;)+
        $(@by_hand $($by_hand:tt)*)?
    }) => {
        #[tonic::async_trait]
        impl $service for $api {
            $(async fn $method(
                &self,
                request: tonic::Request<crate::proto::$request>,
            ) -> $crate::frontends::grpc::Reply<crate::proto::$response> {
                self.grpc.call(request, ops::$op::from, encode::$method).await
            })+
            $($($by_hand)*)?
        }

        /// How each method's operation output becomes its response.
        pub mod encode {
            #[allow(unused_imports)]
            use super::*;

            $(pub fn $method(
                output: <ops::$op as $crate::kernel::Operation>::Output,
            ) -> crate::proto::$response {
                let encode: fn(<ops::$op as $crate::kernel::Operation>::Output) -> crate::proto::$response = $encode;
                encode(output)
            })+
        }
    };
}
pub(crate) use service;

pub(crate) fn header(metadata: &MetadataMap, name: &str) -> Option<String> {
    let value = metadata.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The kmsim.v1 services with health, reflection and the signature layer,
/// bounded by `config.limits`, ready to serve.
pub async fn router(app: Arc<App>, config: &ServerConfig) -> Result<Router<Stack>, BoxError> {
    let grpc = Grpc::new(app);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<KeyManagementServiceServer<kms::KmsApi>>().await;
    health_reporter.set_serving::<AuditServiceServer<audit::AuditApi>>().await;
    health_reporter.set_serving::<SimulationServiceServer<simulation::SimulationApi>>().await;
    health_reporter.set_serving::<EventServiceServer<events::EventsApi>>().await;
    health_reporter.set_serving::<InstanceServiceServer<instances::InstancesApi>>().await;
    health_reporter.set_serving::<AccessServiceServer<access::AccessApi>>().await;
    health_reporter.set_serving::<SecretsManagerServiceServer<secrets::SecretsApi>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    // TLS, when asked for, is the listener's (see `server::listener`), so that HTTP/1.1 clients can negotiate it too.
    let mut builder = Server::builder();
    let limits = config.limits;
    // HTTP/2 itself refuses a header list past a multiple of the limit; below that the edge
    // refuses it as a call, audited, with a precise error.
    // Pings find peers that went away without closing, so their connections do not stay held.
    builder = builder
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .http2_max_header_list_size(Some(Limits::MAX_HEADER_LIST_BYTES * 4));
    // Requests are what a client controls; responses are bounded by the server's own page sizes.
    macro_rules! limited {
        ($server:expr) => {
            $server.max_decoding_message_size(limits.max_message_bytes)
        };
    }
    let edge = edge::Edge::new(
        grpc.app().clone(),
        edge::Limits {
            max_message_bytes: limits.max_message_bytes,
            max_header_bytes: Limits::MAX_HEADER_LIST_BYTES as usize,
        },
    );
    // Every HTTP/1.1 request, and any HTTP/2 request that is not gRPC, is another front end's.
    let door = crate::frontends::door::FrontDoor::new(
        crate::frontends::alibaba::OpenApi::new(grpc.app().clone(), limits.max_message_bytes),
        crate::frontends::alibaba::instance::InstanceApi::new(grpc.app().clone(), limits.max_message_bytes),
        crate::frontends::aws::AwsKms::new(grpc.app().clone(), config.aws_account_id.clone(), limits.max_message_bytes),
        crate::frontends::reset::ResetPath::new(grpc.app().clone(), limits.max_message_bytes),
        config.console.then(|| crate::frontends::console::Console::new(grpc.app().clone(), limits.max_message_bytes)),
    );
    Ok(builder
        .accept_http1(true)
        .layer(door)
        .layer(edge)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(KeyManagementServiceServer::new(kms::KmsApi::new(grpc.clone()))))
        .add_service(limited!(AuditServiceServer::new(audit::AuditApi::new(grpc.clone()))))
        .add_service(limited!(EventServiceServer::new(events::EventsApi::new(grpc.clone()))))
        .add_service(limited!(InstanceServiceServer::new(instances::InstancesApi::new(grpc.clone()))))
        .add_service(limited!(AccessServiceServer::new(access::AccessApi::new(grpc.clone()))))
        .add_service(limited!(SecretsManagerServiceServer::new(secrets::SecretsApi::new(grpc.clone()))))
        .add_service(limited!(SimulationServiceServer::new(simulation::SimulationApi::new(grpc)))))
}

/// The layers in front of the services: the front door outermost, then the gRPC edge.
pub type Stack = tower::layer::util::Stack<
    edge::Edge,
    tower::layer::util::Stack<crate::frontends::door::FrontDoor, tower::layer::util::Identity>,
>;
