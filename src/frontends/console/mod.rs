//! The browser console, served by kmsim itself on the one port: its page and
//! assets, embedded in the binary (no build step, no CDN, works offline), at
//! `GET /` and `/console/…`, and the JSON calls the page makes at
//! `POST /console/api/<Operation>`. Every such call goes through the kernel
//! like any other (audited, with the browser's User-Agent, front end
//! `console`); the operations and their JSON are this front end's own table
//! ([`api`]). `serve --no-console` turns it off.

pub mod api;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use super::Body;
use crate::kernel::App;

/// The name this front end gives its calls.
pub const FRONTEND: &str = "console";

/// Where the page's calls go.
pub const API_PREFIX: &str = "/console/api/";

/// The embedded assets: path, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/console/console.js", "text/javascript; charset=utf-8", include_str!("assets/console.js")),
    ("/console/console.css", "text/css; charset=utf-8", include_str!("assets/console.css")),
];

const INDEX: &str = include_str!("assets/index.html");

pub struct Console {
    app: Arc<App>,
    max_body_bytes: usize,
}

impl Console {
    pub fn new(app: Arc<App>, max_body_bytes: usize) -> Console {
        Console { app, max_body_bytes }
    }

    /// The console's requests: the page at `/` (a GET with no query, which no API sends) and `/console/…`.
    pub fn claims(request: &http::Request<Body>) -> bool {
        let uri = request.uri();
        match uri.path() {
            "/" => request.method() == http::Method::GET && uri.query().is_none(),
            path => path.starts_with("/console/") || path == "/console",
        }
    }

    pub async fn serve(&self, request: http::Request<Body>) -> http::Response<Body> {
        let path = request.uri().path().to_owned();
        if let Some(operation) = path.strip_prefix(API_PREFIX) {
            let operation = operation.to_owned();
            let (parts, body) = request.into_parts();
            let body = Limited::new(body, self.max_body_bytes).collect().await.map(|b| b.to_bytes());
            return api::call(&self.app, &parts, &operation, body.ok()).await;
        }
        if request.method() != http::Method::GET {
            return asset(405, "text/plain; charset=utf-8", "GET the console's pages; POST to /console/api/.");
        }
        match path.as_str() {
            "/" | "/console" | "/console/" => asset(200, "text/html; charset=utf-8", INDEX),
            _ => match ASSETS.iter().find(|(asset_path, _, _)| *asset_path == path) {
                Some((_, content_type, body)) => asset(200, content_type, body),
                None => asset(404, "text/plain; charset=utf-8", "No such page in the console."),
            },
        }
    }
}

fn asset(status: u16, content_type: &str, body: &'static str) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        // The page is kmsim's own and talks only to the server it came from.
        .header("content-security-policy", "default-src 'self'; style-src 'self'; script-src 'self'")
        .header("x-content-type-options", "nosniff")
        .body(Body::new(Full::new(Bytes::from_static(body.as_bytes()))))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}
