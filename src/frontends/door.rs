//! The one port's front door: a tower layer outside every service that tells
//! the protocols apart by their own headers. gRPC (`content-type:
//! application/grpc…`) goes on to tonic's services; every other request is an
//! HTTP front end's: AWS's JSON APIs (`X-Amz-Target: TrentService.…` for KMS,
//! `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.…` for CloudTrail), or
//! kmsim's own `POST /kmsim/reset` and browser console (`GET /`, `/console/…`: by their paths), or
//! Alibaba's KMS instance API (`x-kms-apiname`), or
//! Alibaba's OpenAPI (`x-acs-action` or `Action`), which, being the protocol
//! kmsim is modelled on, also takes whatever names no other protocol, so that
//! an unrecognised request is still a call, audited and answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Body;
use super::alibaba::OpenApi;
use super::alibaba::instance::InstanceApi;
use super::aws::AwsKms;
use super::console::Console;
use super::reset::ResetPath;
use crate::server::BoxError;

/// The layer; see the module docs.
#[derive(Clone)]
pub struct FrontDoor {
    alibaba: Arc<OpenApi>,
    instance: Arc<InstanceApi>,
    aws: Arc<AwsKms>,
    reset: Arc<ResetPath>,
    /// `None` when the console is turned off (`serve --no-console`).
    console: Option<Arc<Console>>,
}

impl FrontDoor {
    pub fn new(
        alibaba: OpenApi,
        instance: InstanceApi,
        aws: AwsKms,
        reset: ResetPath,
        console: Option<Console>,
    ) -> FrontDoor {
        FrontDoor {
            alibaba: Arc::new(alibaba),
            instance: Arc::new(instance),
            aws: Arc::new(aws),
            reset: Arc::new(reset),
            console: console.map(Arc::new),
        }
    }
}

impl<S> tower::Layer<S> for FrontDoor {
    type Service = FrontDoorService<S>;

    fn layer(&self, grpc: S) -> FrontDoorService<S> {
        FrontDoorService { grpc, door: self.clone() }
    }
}

#[derive(Clone)]
pub struct FrontDoorService<S> {
    grpc: S,
    door: FrontDoor,
}

/// Whether a request is gRPC, by the content type every gRPC client sends.
fn is_grpc(request: &http::Request<Body>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl<S> tower::Service<http::Request<Body>> for FrontDoorService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        self.grpc.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            // The clone is the one that was not made ready; swap so the ready one serves this call.
            let clone = self.grpc.clone();
            let mut grpc = std::mem::replace(&mut self.grpc, clone);
            return Box::pin(async move { grpc.call(request).await.map_err(Into::into) });
        }
        if InstanceApi::claims(&request) {
            let instance = self.door.instance.clone();
            return Box::pin(async move { Ok(instance.serve(request).await) });
        }
        if AwsKms::claims(&request) {
            let aws = self.door.aws.clone();
            return Box::pin(async move { Ok(aws.serve(request).await) });
        }
        if let Some(console) = self.door.console.clone().filter(|_| Console::claims(&request)) {
            return Box::pin(async move { Ok(console.serve(request).await) });
        }
        if ResetPath::claims(&request) {
            let reset = self.door.reset.clone();
            return Box::pin(async move { Ok(reset.serve(request).await) });
        }
        let alibaba = self.door.alibaba.clone();
        Box::pin(async move { Ok(alibaba.serve(request).await) })
    }
}
