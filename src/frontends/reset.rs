//! `POST /kmsim/reset` on the one port: the Reset call (SimulationService/Reset)
//! for a test suite that speaks HTTP and nothing else, e.g. one written with
//! boto3. The body, if any, is a seed (YAML) to apply after emptying;
//! `?to=server-seed` applies the server's own `--seed` instead. With
//! `--auth required` the request is signed with SigV4 (service `kms`) by an
//! AccessKey the admin's policies allow `kmsim:Reset`, as any AWS call is.
//! Answers JSON: what was deleted and what the seed made, or
//! `{"Code", "Message", "HttpStatus", "RequestId"}` with kmsim's HTTP status.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::json;

use super::{Body, bounded, decode, execute_decoded, peer};
use crate::engine::KmsError;
use crate::kernel::meta::new_request_id;
use crate::kernel::ops::simulation::{Reset, ResetTo};
use crate::kernel::{App, CallMeta, Described};
use crate::seed::SeedSource;

/// The path, which no other front end uses (Alibaba's and AWS's APIs post to `/`).
pub const PATH: &str = "/kmsim/reset";

/// The name this front end gives its calls.
pub const FRONTEND: &str = "http";

pub struct ResetPath {
    app: Arc<App>,
    max_body_bytes: usize,
}

impl ResetPath {
    pub fn new(app: Arc<App>, max_body_bytes: usize) -> ResetPath {
        ResetPath { app, max_body_bytes }
    }

    pub fn claims(request: &http::Request<Body>) -> bool {
        request.uri().path() == PATH
    }

    pub async fn serve(&self, request: http::Request<Body>) -> http::Response<Body> {
        let (parts, body) = request.into_parts();
        let mut meta = CallMeta::new(FRONTEND, &self.app.region, new_request_id());
        meta.peer = peer(&parts.extensions);
        meta.user_agent =
            parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(bounded).unwrap_or_default();
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        meta.request_bytes = body.len() as u64;
        meta.credential = super::aws::sigv4::present(&self.app, &parts, &body, "kms");
        let to_server_seed = parts.uri.query().is_some_and(|q| q.split('&').any(|pair| pair == "to=server-seed"));
        let decoded = decode(|| {
            if parts.method != http::Method::POST {
                return Err(KmsError::invalid_because("Method", "POST to reset."));
            }
            let to = match (to_server_seed, body.is_empty()) {
                (true, _) => ResetTo::ServerSeed,
                (false, true) => ResetTo::Empty,
                (false, false) => {
                    let text = String::from_utf8(body.to_vec())
                        .map_err(|_| KmsError::invalid_because("Seed", "Send the seed as UTF-8 YAML."))?;
                    ResetTo::Seed(SeedSource { name: "request body".to_owned(), text })
                }
            };
            Ok(Reset { to })
        });
        let answer = execute_decoded(&self.app, meta, Reset::SPEC, decoded, |report| {
            let seeded: Vec<_> = report
                .seeded
                .iter()
                .flat_map(|seeded| seeded.items.iter())
                .map(|item| json!({ "kind": item.kind, "id": item.id, "region": item.region, "created": item.created }))
                .collect();
            let body = json!({
                "keysDeleted": report.emptied.keys,
                "aliasesDeleted": report.emptied.aliases,
                "secretsDeleted": report.emptied.secrets,
                "seeded": seeded,
            });
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let size = body.len() as u64;
            (body, size)
        })
        .await;
        crate::frontends::kmsim_json_response(answer)
    }
}
