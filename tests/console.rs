//! The browser console's server side (issue 31): the page and its
//! assets come from the binary on the one port, and every call the page makes
//! is a kernel call, audited with the browser's User-Agent, answering kmsim's
//! exact codes; the live views stream records and events as they commit and end when the server stops. (The page
//! itself is tested in real browsers: `console_browser.rs`.)

mod common;

use common::openapi::{Reply, raw};
use common::{TestServer, all_audit_events};
use kmsim::server::ServerConfig;
use serde_json::{Value, json};

async fn get(server: &TestServer, path: &str) -> (u16, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

async fn api(server: &TestServer, operation: &str, body: Value) -> Reply {
    let body = body.to_string();
    let request = format!(
        "POST /console/api/{operation} HTTP/1.1\r\nhost: {}\r\nuser-agent: Mozilla/5.0 (console test)\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    raw(server.addr, request.as_bytes()).await
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let server = TestServer::start().await;
    let (status, content_type, page) = get(&server, "/").await;
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains("<title>kmsim console</title>") && page.contains("/console/console.js"), "{page}");
    let (status, content_type, script) = get(&server, "/console/console.js").await;
    assert_eq!((status, content_type.as_str()), (200, "text/javascript; charset=utf-8"));
    assert!(script.contains("/console/api/"));
    let (status, content_type, _) = get(&server, "/console/console.css").await;
    assert_eq!((status, content_type.as_str()), (200, "text/css; charset=utf-8"));
    assert_eq!(get(&server, "/console/nothing.js").await.0, 404);
    // Alibaba's GET calls, which name their action in the query, still reach Alibaba's API.
    assert_ne!(get(&server, "/?Action=DescribeRegions&Version=2016-01-20").await.1, "text/html; charset=utf-8");
    server.stop().await;
}

#[tokio::test]
async fn the_pages_calls_are_audited_kernel_calls_with_kmsims_exact_codes() {
    let server = TestServer::start().await;
    let created = api(&server, "CreateKey", json!({ "Description": "from the console" })).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let key_id = created.body["Key"]["KeyId"].as_str().unwrap().to_owned();
    let listed = api(&server, "ListKeys", json!({})).await;
    assert_eq!(listed.body["Keys"][0]["KeyId"], key_id.as_str());
    assert_eq!(listed.body["Keys"][0]["KeyState"], "Enabled");

    let sealed = api(&server, "Encrypt", json!({ "KeyId": key_id, "Plaintext": "hello" })).await;
    let blob = sealed.body["CiphertextBlob"].as_str().unwrap().to_owned();
    assert_eq!(api(&server, "Decrypt", json!({ "CiphertextBlob": blob })).await.body["Plaintext"], "hello");

    assert_eq!(api(&server, "DisableKey", json!({ "KeyId": key_id })).await.status, 200);
    let refused = api(&server, "Encrypt", json!({ "KeyId": key_id, "Plaintext": "hello" })).await;
    assert_eq!(refused.status, 409);
    assert_eq!(
        (refused.body["Code"].as_str(), refused.body["HttpStatus"].as_u64()),
        (Some("Rejected.Disabled"), Some(409))
    );

    let before = api(&server, "GetClock", json!({})).await.body["Now"].as_str().unwrap().to_owned();
    let after = api(&server, "AdvanceClock", json!({ "Seconds": 86_400 })).await;
    assert!(after.body["Now"].as_str().unwrap() > before.as_str(), "{before} → {:?}", after.body);

    let audit = api(&server, "QueryAuditEvents", json!({ "Query": "eventName:Encrypt", "PageSize": 10 })).await;
    let events = audit.body["Events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "both Encrypts, the refused one too: {events:?}");
    assert_eq!(events[0]["errorCode"], "Rejected.Disabled");

    let records = all_audit_events(&server).await;
    let from_console: Vec<_> = records.iter().filter(|r| r.user_agent == "Mozilla/5.0 (console test)").collect();
    assert!(from_console.len() >= 8, "every call the page made is a record with its User-Agent: {from_console:#?}");
    let unknown = api(&server, "MakeCoffee", json!({})).await;
    assert_eq!((unknown.status, unknown.body["Code"].as_str()), (400, Some("InvalidParameter")));
    server.stop().await;
}

#[tokio::test]
async fn no_console_turns_the_page_and_its_calls_off() {
    let server = TestServer::start_config(ServerConfig { console: false, ..ServerConfig::default() }).await;
    let (_, content_type, _) = get(&server, "/").await;
    assert_ne!(content_type, "text/html; charset=utf-8");
    let call = api(&server, "ListKeys", json!({})).await;
    assert!(call.body.get("Keys").is_none(), "{:?}", call.body);
    server.stop().await;
}

/// Reads the stream until `wanted` appears in what it has sent; what it sent so far.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut String, wanted: &str) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 8192];
    while !seen.contains(wanted) {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the stream ended before {wanted:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
}

#[tokio::test]
async fn the_live_audit_streams_each_record_as_it_commits_named_by_its_front_end_and_ends_when_the_server_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let body = json!({ "Query": "eventName:CreateKey" }).to_string();
    let request = format!(
        "POST /console/api/TailAuditEvents HTTP/1.1\r\nhost: {}\r\nuser-agent: Mozilla/5.0 (console test)\r\n\
         content-length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = String::new();
    // The opening comment: the view is subscribed, so every record committed from here on is sent.
    read_until(&mut stream, &mut seen, ": still here\n\n").await;
    assert!(seen.starts_with("HTTP/1.1 200") && seen.contains("content-type: text/event-stream"), "{seen}");

    let created = api(&server, "CreateKey", json!({})).await;
    assert_eq!(created.status, 200);
    read_until(&mut stream, &mut seen, "event: audit\ndata: ").await;
    read_until(&mut stream, &mut seen, "\n\n").await;
    let data = seen.split("event: audit\ndata: ").nth(1).unwrap().split("\n\n").next().unwrap();
    let record: Value = serde_json::from_str(data).unwrap();
    assert_eq!(record["eventName"], "CreateKey");
    assert_eq!(record["frontend"], "console", "{record:#}");
    assert_eq!(record["keyId"], created.body["Key"]["KeyId"], "{record:#}");

    // Only what the query selects: the CreateKey's own TailAuditEvents record is not sent.
    assert_eq!(seen.matches("event: audit").count(), 1, "{seen}");

    // Stopping the server ends the stream, a chunked body's proper end, rather than holding the shutdown open
    // until its grace period runs out and the connection is cut.
    server.stop().await;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.ends_with("0\r\n\r\n"), "the chunked body ends: {rest:?}");
}

#[tokio::test]
async fn a_live_view_with_a_malformed_query_is_refused_before_it_opens_and_audited() {
    let server = TestServer::start().await;
    let refused = api(&server, "TailAuditEvents", json!({ "Query": "eventName:(" })).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["Code"], "InvalidParameter", "{:#}", refused.body);
    let records = all_audit_events(&server).await;
    assert!(
        records.iter().any(|r| r.event_name == "TailAuditEvents" && r.error_code == "InvalidParameter"),
        "{records:#?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_page_offers_every_key_spec_the_engine_makes() {
    let server = TestServer::start().await;
    let (_, _, page) = get(&server, "/").await;
    let select = page.split("<select id=\"spec\">").nth(1).unwrap().split("</select>").next().unwrap();
    let offered: Vec<&str> =
        select.split("<option>").skip(1).map(|option| option.split("</option>").next().unwrap()).collect();
    let made: Vec<&str> = kmsim::engine::key::KeySpec::ALL.iter().map(|spec| spec.as_str()).collect();
    assert_eq!(offered, made);
    for spec in made {
        let created = api(&server, "CreateKey", json!({ "KeySpec": spec })).await;
        assert_eq!(created.status, 200, "{spec}: {:#}", created.body);
    }
    server.stop().await;
}
