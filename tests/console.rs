//! The browser console's server side (issue 31, first slice): the page and its
//! assets come from the binary on the one port, and every call the page makes
//! is a kernel call, audited with the browser's User-Agent, answering kmsim's
//! exact codes. (The browser tests of the page itself come with the rest of
//! the issue.)

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
