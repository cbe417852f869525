//! The console's calls: `POST /console/api/<Operation>` with a JSON body in
//! kmsim's own vocabulary (Alibaba's spellings, as the gRPC API), answered
//! with JSON; one table from each operation to the kernel operation it is.
//! A refusal is `{"Code", "Message", "HttpStatus", "RequestId"}` with kmsim's
//! HTTP status, so the page can show `Rejected.Disabled (409)` exactly. With
//! `--auth required` each call is SigV4-signed (service `kms`) with the
//! AccessKey the user gives the page, and is judged like any other.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio_stream::StreamExt as _;

use super::FRONTEND;
use crate::clock::SimTime;
use crate::engine::KmsError;
use crate::engine::UnderKey;
use crate::engine::key::KeyMeta;
use crate::frontends::json::Json;
use crate::frontends::{Body, bounded, decode, execute_json, peer, refuse_unknown};
use crate::kernel::meta::new_request_id;
use crate::kernel::ops::params::Span;
use crate::kernel::ops::{Missed, audit, events, kms, simulation};
use crate::kernel::{Answer, App, CallMeta};

/// Runs one call the page made and answers it.
pub async fn call(
    app: &Arc<App>,
    parts: &http::request::Parts,
    operation: &str,
    body: Option<Bytes>,
) -> http::Response<Body> {
    let mut meta = CallMeta::new(FRONTEND, &app.region, new_request_id());
    meta.peer = peer(&parts.extensions);
    meta.user_agent = header(parts, "user-agent").map(bounded).unwrap_or_default();
    meta.endpoint = header(parts, "host").map(|h| h.split(':').next().unwrap_or(h).to_owned()).unwrap_or_default();
    let body = match body {
        Some(body) => body,
        None => {
            meta.refusal = Some(KmsError::invalid_because("Body", "The request body is too large."));
            Bytes::new()
        }
    };
    meta.request_bytes = body.len() as u64;
    meta.credential = crate::frontends::aws::sigv4::present(app, parts, &body, "kms");
    let fields = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => fields,
        _ if body.is_empty() => Map::new(),
        _ => {
            meta.refusal.get_or_insert_with(|| KmsError::invalid_because("Body", "Send a JSON object."));
            Map::new()
        }
    };
    match watch(app, meta, operation, Json(&fields)).await {
        Ok(view) => view,
        Err(meta) => crate::frontends::kmsim_json_response(dispatch(app, meta, operation, Json(&fields)).await),
    }
}

/// How often an open live view says it is still there: a page whose connection died unnoticed learns it within
/// this, and the server's write to a peer that went away closes the connection it held.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// The live views, `text/event-stream` bodies: `event: audit` with a record in its native rendering, `event:
/// system` with a system event's document, each as it commits; `event: missed` when the view fell behind (the page
/// reads what it missed from the store). The stream ends when the server begins to stop, and the page, which
/// reconnects, fills the gap from the store. The call's metadata back for any other operation, which answers once
/// ([`dispatch`]).
async fn watch(app: &Arc<App>, meta: CallMeta, operation: &str, f: Json<'_>) -> Result<http::Response<Body>, CallMeta> {
    let (request_id, view) = match operation {
        "TailAuditEvents" => {
            let tail = audit::TailAuditEvents { query: f.text("Query"), format: String::new() };
            let Answer { request_id, result } = app.execute(meta, tail, |records| (records, 0)).await;
            let view = result.map(|records| {
                Box::pin(records.map(|received| match received {
                    Ok(rendered) => Say("audit", rendered.text),
                    Err(Missed(missed)) => Say("missed", json!({ "Missed": missed }).to_string()),
                })) as LiveView
            });
            (request_id, view)
        }
        "WatchSystemEvents" => {
            let watch = events::WatchSystemEvents { name: f.text("Name"), level: String::new() };
            let Answer { request_id, result } = app.execute(meta, watch, |events| (events, 0)).await;
            let view = result.map(|events| {
                Box::pin(events.map(|received| match received {
                    Ok(event) => Say("system", event.document.to_string()),
                    Err(Missed(missed)) => Say("missed", json!({ "Missed": missed }).to_string()),
                })) as LiveView
            });
            (request_id, view)
        }
        _ => return Err(meta),
    };
    Ok(match view {
        Ok(view) => event_stream(app, view),
        Err(error) => crate::frontends::kmsim_json_response(Answer { request_id, result: Err(error) }),
    })
}

/// What a live view sends: an event and its data (a comment when the event is empty), or the end of the view.
enum Piece {
    Say(&'static str, String),
    Stop,
}
use Piece::Say;

type LiveView = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Piece> + Send>>;

fn event_stream(app: &App, view: LiveView) -> http::Response<Body> {
    let frame = |piece: Piece| {
        let text = match piece {
            Say("", _) | Piece::Stop => ": still here\n\n".to_owned(),
            Say(event, data) => format!("event: {event}\ndata: {data}\n\n"),
        };
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(text)))
    };
    let heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    let beats = tokio_stream::wrappers::IntervalStream::new(heartbeat).map(|_| Say("", String::new()));
    let stops = tokio_stream::wrappers::WatchStream::new(app.scheduler.stopping())
        .filter(|stopping| *stopping)
        .map(|_| Piece::Stop);
    // A comment first, so the page knows the view is open: the kernel subscribed before it answered.
    let opened = tokio_stream::once(Say("", String::new()));
    let frames =
        opened.chain(view.merge(beats)).merge(stops).take_while(|piece| !matches!(piece, Piece::Stop)).map(frame);
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::new(http_body_util::StreamBody::new(frames)))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}

/// Declares the table: `"Operation" => module::Op { field: decoder, … } => encoder;`.
macro_rules! console_operations {
    ($f:ident; $($name:literal => $module:ident::$op:ident { $($field:ident: $decode:expr),* $(,)? } => $encode:expr;)+) => {
        /// Every operation the console calls.
        pub const OPERATIONS: &[&str] = &[$($name),+];

        async fn dispatch(app: &Arc<App>, meta: CallMeta, operation: &str, $f: Json<'_>) -> Answer<Vec<u8>> {
            match operation {
                $($name => {
                    let decoded = decode(|| Ok($module::$op { $($field: $decode),* }));
                    execute_json(app, meta, decoded, $encode).await
                })+
                _ => {
                    let error = KmsError::invalid_because("Operation", "The console has no such operation.");
                    refuse_unknown(app, meta, "Operation", operation, error).await
                }
            }
        }
    };
}

console_operations! { f;
    "ListKeys" => kms::ListKeys { page_number: f.int("PageNumber")?, page_size: f.int("PageSize")? } => |paged| {
        let keys: Vec<Value> = paged.items.iter().map(|k| {
            let mut key = key_json(&k.key.meta);
            key["Aliases"] = json!(k.aliases);
            key
        }).collect();
        json!({ "Keys": keys, "TotalCount": paged.total, "PageNumber": paged.page.number, "PageSize": paged.page.size })
    };
    "DescribeKey" => kms::DescribeKey { key_id: f.text("KeyId") } => |described| json!({ "Key": key_json(&described.meta) });
    "CreateKey" => kms::CreateKey {
        key_spec: f.text("KeySpec"),
        key_usage: f.text("KeyUsage"),
        origin: String::new(),
        description: f.text("Description"),
        protection_level: String::new(),
        enable_automatic_rotation: !f.text("RotationInterval").is_empty(),
        rotation_interval: f.text("RotationInterval"),
        exportable: false,
        dkms_instance_id: String::new(),
        policy: String::new(),
        multi_region: None,
        tags: Vec::new(),
    } => |key| json!({ "Key": key_json(&key.meta) });
    "EnableKey" => kms::EnableKey { key_id: f.text("KeyId") } => |key| json!({ "Key": key_json(&key.meta) });
    "DisableKey" => kms::DisableKey { key_id: f.text("KeyId") } => |key| json!({ "Key": key_json(&key.meta) });
    "ScheduleKeyDeletion" => kms::ScheduleKeyDeletion {
        key_id: f.text("KeyId"),
        pending_window_in_days: f.int("PendingWindowInDays")?,
    } => |(key_id, date)| json!({ "KeyId": key_id, "DeleteDate": date.to_rfc3339() });
    // The console teaches Alibaba's lifecycle: a cancelled deletion leaves the key usable.
    "CancelKeyDeletion" => kms::CancelKeyDeletion { key_id: f.text("KeyId"), restore: kms::CancelRestores::Enabled }
        => |key| json!({ "Key": key_json(&key.meta) });
    "CreateKeyVersion" => kms::CreateKeyVersion { key_id: f.text("KeyId") } => |version| json!({
        "KeyId": version.key_id,
        "KeyVersionId": version.key_version_id.to_string(),
        "CreationDate": version.creation_date.to_rfc3339(),
    });
    "ListKeyVersions" => kms::ListKeyVersions { key_id: f.text("KeyId"), page_number: 0, page_size: 100 } => |paged| {
        let versions: Vec<Value> = paged.items.iter().map(|v| json!({
            "KeyVersionId": v.key_version_id.to_string(),
            "CreationDate": v.creation_date.to_rfc3339(),
            "OnDemand": v.on_demand,
        })).collect();
        json!({ "KeyVersions": versions, "TotalCount": paged.total })
    };
    "Encrypt" => kms::Encrypt {
        key_id: f.text("KeyId"),
        plaintext: zeroize::Zeroizing::new(f.text("Plaintext").into_bytes()),
        encryption_context: kms::Context::new(),
    } => |sealed| json!({
        "CiphertextBlob": b64(&sealed.ciphertext_blob),
        "KeyId": sealed.key_id,
        "KeyVersionId": sealed.key_version_id.to_string(),
    });
    "Decrypt" => kms::Decrypt {
        ciphertext_blob: f.blob("CiphertextBlob")?,
        encryption_context: kms::Context::new(),
        expected_key_id: String::new(),
    } => |opened| json!({
        // The console shows what it encrypted, text.
        "Plaintext": String::from_utf8_lossy(&opened.plaintext),
        "KeyId": opened.key_id,
        "KeyVersionId": opened.key_version_id.to_string(),
    });
    "AsymmetricEncrypt" => kms::AsymmetricEncrypt {
        key_id: f.text("KeyId"),
        key_version_id: f.text("KeyVersionId"),
        algorithm: f.text("Algorithm"),
        plaintext: zeroize::Zeroizing::new(f.text("Plaintext").into_bytes()),
    } => |sealed| under_key(&sealed, json!({ "CiphertextBlob": b64(&sealed.value) }));
    "AsymmetricDecrypt" => kms::AsymmetricDecrypt {
        key_id: f.text("KeyId"),
        key_version_id: f.text("KeyVersionId"),
        algorithm: f.text("Algorithm"),
        ciphertext_blob: f.blob("CiphertextBlob")?,
    } => |opened| under_key(&opened, json!({ "Plaintext": String::from_utf8_lossy(&opened.value) }));
    // The page signs and MACs text it shows, so messages are UTF-8 and signatures and MACs base64.
    "Sign" => kms::AsymmetricSign {
        key_id: f.text("KeyId"),
        key_version_id: f.text("KeyVersionId"),
        algorithm: f.text("Algorithm"),
        message_type: "RAW".to_owned(),
        digest: Vec::new(),
        message: f.text("Message").into_bytes(),
    } => |signed| under_key(&signed, json!({ "Signature": b64(&signed.value) }));
    "Verify" => kms::AsymmetricVerify {
        key_id: f.text("KeyId"),
        key_version_id: f.text("KeyVersionId"),
        algorithm: f.text("Algorithm"),
        message_type: "RAW".to_owned(),
        digest: Vec::new(),
        message: f.text("Message").into_bytes(),
        signature: f.blob("Signature")?,
        invalid_is_error: false,
    } => |checked| under_key(&checked, json!({ "Value": checked.value }));
    "GenerateMac" => kms::GenerateMac {
        key_id: f.text("KeyId"),
        algorithm: f.text("Algorithm"),
        message: f.text("Message").into_bytes(),
    } => |mac| under_key(&mac, json!({ "Mac": b64(&mac.value) }));
    "VerifyMac" => kms::VerifyMac {
        key_id: f.text("KeyId"),
        algorithm: f.text("Algorithm"),
        message: f.text("Message").into_bytes(),
        mac: f.blob("Mac")?,
        invalid_is_error: false,
    } => |checked| under_key(&checked, json!({ "Value": checked.value }));
    "GetClock" => simulation::GetClock {} => |reading| json!({ "Now": reading.now.to_rfc3339(), "OffsetMs": reading.offset_ms });
    "AdvanceClock" => simulation::AdvanceClock {
        advance: Some(Span { seconds: f.long("Seconds")?, nanos: 0 }),
    } => |reading| json!({ "Now": reading.now.to_rfc3339(), "OffsetMs": reading.offset_ms });
    "SetClock" => simulation::SetClock {
        time: match f.text("Time").as_str() {
            "" => None,
            text => Some(SimTime::parse_rfc3339(text).ok_or_else(|| {
                KmsError::invalid_because("Time", "Give an RFC 3339 instant such as 2027-01-01T00:00:00Z.")
            })?),
        },
        time_malformed: false,
    } => |reading| json!({ "Now": reading.now.to_rfc3339(), "OffsetMs": reading.offset_ms });
    "ListSystemEvents" => events::ListSystemEvents {
        name: f.text("Name"),
        level: String::new(),
        start_time: String::new(),
        end_time: String::new(),
        page_size: f.int("PageSize")?,
        page_token: String::new(),
    } => |page| json!({ "Events": page.items, "NextPageToken": page.next_page_token });
    "QueryAuditEvents" => audit::QueryAuditEvents {
        query: f.text("Query"),
        start_time: String::new(),
        end_time: String::new(),
        page_size: f.int("PageSize")?,
        page_token: f.text("PageToken"),
        format: f.text("Format"),
    } => |page| {
        let events: Vec<Value> = page.items.iter().map(|r| serde_json::from_str(&r.text).unwrap_or(Value::Null)).collect();
        json!({ "Events": events, "NextPageToken": page.next_page_token })
    };
}

/// A key as the console shows it.
fn key_json(meta: &KeyMeta) -> Value {
    json!({
        "KeyId": meta.key_id,
        "Region": meta.region,
        "KeyState": meta.state.as_str(),
        "KeySpec": meta.spec.as_str(),
        "KeyUsage": meta.usage.as_str(),
        "Origin": meta.origin.as_str(),
        "Description": meta.description,
        "CreationDate": meta.creation_date.to_rfc3339(),
        "DeleteDate": meta.delete_date.map(|d| d.to_rfc3339()),
        "AutomaticRotation": meta.rotation.automatic.as_str(),
        "RotationIntervalDays": meta.rotation.interval_secs.map(|s| s / 86_400),
        "LastRotationDate": meta.rotation.last_rotation_date.map(|d| d.to_rfc3339()),
        "NextRotationDate": meta.rotation.next_rotation_date.map(|d| d.to_rfc3339()),
    })
}

/// A result made under a key version, with the version that made it.
fn under_key<T>(result: &UnderKey<T>, mut fields: Value) -> Value {
    fields["KeyId"] = json!(result.key_id);
    fields["KeyVersionId"] = json!(result.key_version_id.to_string());
    fields
}

fn header<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
