//! The `kmsim` CLI for identities and permissions (`access-key`, `policy`,
//! `aap`, `client-key`, `key get-policy|set-policy`, `whoami`), signing its
//! calls, against an in-process server that requires authentication.

mod common;

use std::path::{Path, PathBuf};

use common::cli::*;
use common::*;
use kmsim::credentials::Credentials;
use kmsim::server::AuthMode;
use kmsim::server::ServerConfig;
use kmsim::store::Location;
use serde_json::Value;

const ADMIN_ID: &str = "LTAIcliAdminKey000000001";
const ADMIN_SECRET: &str = "cli-admin-secret-0123456789abcd";

struct Setup {
    server: TestServer,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        Setup::start_with(Location::InMemory).await
    }

    async fn start_with(store: Location) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let admin = format!(r#"{{"AccessKeyId":"{ADMIN_ID}","AccessKeySecret":"{ADMIN_SECRET}"}}"#);
        std::fs::write(dir.path().join("admin.json"), admin).unwrap();
        let config = ServerConfig {
            auth: AuthMode::Required,
            admin: Some(Credentials::new(ADMIN_ID, ADMIN_SECRET)),
            store,
            ..ServerConfig::default()
        };
        Setup { server: TestServer::start_config(config).await, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kmsim ARGS --credentials-file FILE`.
    async fn as_(&self, credentials: &str, args: &[&str]) -> Run {
        let file = self.path(credentials);
        let mut args = args.to_vec();
        args.extend(["--credentials-file", file.to_str().unwrap()]);
        kmsim(&self.server, &args).await
    }

    async fn json_as(&self, credentials: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        self.as_(credentials, &args).await.json()
    }

    /// Saves a command's JSON output as a file, as a user would with `> file`.
    fn save(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn a_user_is_created_given_a_policy_signs_with_the_printed_secret_and_is_disabled() {
    let s = Setup::start().await;

    // Unsigned calls are refused, with the reference's code and HTTP status.
    let unsigned = kmsim(&s.server, &["key", "list"]).await;
    assert!(unsigned.failed().starts_with("MissingParameter (400)"), "{}", unsigned.stderr);

    let created = s.json_as("admin.json", &["access-key", "create", "--user", "alice"]).await;
    let alice_id = str_field(&created, "accessKeyId").to_owned();
    let alice_secret = str_field(&created, "accessKeySecret").to_owned();
    assert!(alice_id.starts_with("LTAI") && alice_id.len() == 24, "{created:#}");
    s.save("alice.json", &created);

    // No policy yet: everything is denied.
    let denied = s.as_("alice.json", &["key", "create"]).await;
    assert!(denied.failed().starts_with("Forbidden.NoPermission (403)"), "{}", denied.stderr);

    let document = s.path("policy.json");
    std::fs::write(
        &document,
        r#"{"Version":"1","Statement":[
            {"Effect":"Allow","Action":"kms:*","Resource":"*"},
            {"Effect":"Deny","Action":"kms:ScheduleKeyDeletion","Resource":"acs:kms:*:*:key/*"}]}"#,
    )
    .unwrap();
    let policy = s.json_as("admin.json", &["policy", "create", "app", "--document", path_str(&document)]).await;
    assert_eq!(str_field(&policy, "policyName"), "app");
    s.as_("admin.json", &["policy", "attach", "app", "--user", "alice"]).await.ok();
    let listed = s.json_as("admin.json", &["policy", "get", "app"]).await;
    assert_eq!(array(&listed, "attachments"), &[Value::from("User/alice")]);

    let key = s.json_as("alice.json", &["key", "create"]).await;
    let key_id = str_field(&key, "keyId").to_owned();
    let sealed = s.json_as("alice.json", &["encrypt", "--key-id", &key_id, "--plaintext", "hello"]).await;
    assert!(!str_field(&sealed, "ciphertextBlob").is_empty());
    let refused = s.as_("alice.json", &["key", "schedule-deletion", &key_id, "--pending-window-in-days", "7"]).await;
    assert!(refused.failed().starts_with("Forbidden.NoPermission (403)"), "{}", refused.stderr);

    // The same user through --access-key-id / --access-key-secret.
    let me = kmsim(
        &s.server,
        &["whoami", "--access-key-id", &alice_id, "--access-key-secret", &alice_secret, "--output", "json"],
    )
    .await
    .json();
    assert_eq!(str_field(&me, "identityType"), "ram-user");
    assert_eq!(str_field(&me, "userName"), "alice");
    assert_eq!(str_field(&me, "authenticatedBy"), "signature");
    let wrong = kmsim(&s.server, &["key", "list", "--access-key-id", &alice_id, "--access-key-secret", "nope"]).await;
    assert!(wrong.failed().starts_with("SignatureNotMatch (401)"), "{}", wrong.stderr);

    // Only the admin manages access.
    let not_admin = s.as_("alice.json", &["access-key", "list"]).await;
    assert!(not_admin.failed().starts_with("Forbidden.NoPermission (403)"), "{}", not_admin.stderr);

    // Disabled: refused from the next call on; listed as Inactive, never with its secret.
    s.as_("admin.json", &["access-key", "disable", &alice_id]).await.ok();
    let disabled = s.as_("alice.json", &["key", "list"]).await;
    assert!(disabled.failed().starts_with("Forbidden.AccessKey (403)"), "{}", disabled.stderr);
    let keys = s.as_("admin.json", &["access-key", "list", "--output", "json"]).await;
    assert!(keys.ok().contains("Inactive") && !keys.stdout.contains(&alice_secret), "{}", keys.stdout);

    // The report names the user and counts the refusals.
    let report = s.json_as("admin.json", &["audit", "access-key", &alice_id]).await;
    assert_eq!(report["userIdentity"]["userName"], "alice", "{report:#}");
    assert_eq!(report["userIdentity"]["type"], "ram-user", "{report:#}");
    assert_eq!(report["refusedCalls"], 5, "no policy, deletion, wrong signature, not admin, disabled: {report:#}");

    s.as_("admin.json", &["access-key", "enable", &alice_id]).await.ok();
    s.as_("alice.json", &["key", "list"]).await.ok();
    s.server.stop().await;
}

#[tokio::test]
async fn aaps_client_keys_and_key_policies_from_the_cli() {
    let s = Setup::start().await;
    let key = s.json_as("admin.json", &["key", "create"]).await;
    let key_id = str_field(&key, "keyId").to_owned();

    s.json_as("admin.json", &["aap", "create", "orders"]).await;
    let client_key = s
        .json_as("admin.json", &["client-key", "create", "--aap", "orders", "--not-after", "2099-01-01T00:00:00Z"])
        .await;
    assert!(str_field(&client_key, "clientKeyId").starts_with("KAAP."), "{client_key:#}");
    assert_eq!(str_field(&client_key, "status"), "Valid");
    s.save("orders.json", &client_key);
    let me = s.json_as("orders.json", &["whoami"]).await;
    assert_eq!(str_field(&me, "identityType"), "assumed-role");
    assert_eq!(str_field(&me, "userName"), "orders");

    // The AAP has no identity policy; the key policy alone lets it encrypt with this key.
    let before = s.as_("orders.json", &["encrypt", "--key-id", &key_id, "--plaintext", "x"]).await;
    assert!(before.failed().starts_with("Forbidden.NoPermission (403)"), "{}", before.stderr);
    let default = s.json_as("admin.json", &["key", "get-policy", &key_id]).await;
    assert_eq!(default["policy"]["Statement"][0]["Effect"], "Allow", "{default:#}");
    let aap_arn = str_field(&s.json_as("admin.json", &["aap", "get", "orders"]).await, "arn").to_owned();
    let key_policy = s.path("key-policy.json");
    std::fs::write(
        &key_policy,
        format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Principal":{{"RAM":["{aap_arn}"]}},"Action":["kms:Encrypt"],"Resource":["*"]}}]}}"#
        ),
    )
    .unwrap();
    s.as_("admin.json", &["key", "set-policy", &key_id, "--policy-file", path_str(&key_policy)]).await.ok();
    let after = s.json_as("orders.json", &["encrypt", "--key-id", &key_id, "--plaintext", "x"]).await;
    assert!(!str_field(&after, "ciphertextBlob").is_empty());
    let shown = s.json_as("admin.json", &["key", "get-policy", &key_id]).await;
    assert_eq!(shown["policy"]["Statement"][0]["Principal"]["RAM"][0], aap_arn.as_str());

    let keys = s.json_as("admin.json", &["client-key", "list", "--aap", "orders"]).await;
    assert_eq!(array(&keys, "clientKeys").len(), 1);
    let in_use = s.as_("admin.json", &["aap", "delete", "orders"]).await;
    assert!(in_use.failed().starts_with("Rejected.ResourceInUse (409)"), "{}", in_use.stderr);
    s.as_("admin.json", &["client-key", "delete", str_field(&client_key, "clientKeyId")]).await.ok();
    s.as_("admin.json", &["aap", "delete", "orders"]).await.ok();
    s.server.stop().await;
}

/// `openssl pkcs12` on a PKCS#12 file with `password`: the PEM it prints, or why it failed.
fn openssl_pkcs12(file: &Path, password: &str) -> Result<String, String> {
    let out = std::process::Command::new("openssl")
        .args(["pkcs12", "-in", path_str(file), "-nodes", "-passin", &format!("pass:{password}")])
        .output()
        .expect("openssl runs (the PKCS#12 checks need OpenSSL 3's command line: apt-get install openssl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() { Ok(text) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[tokio::test]
async fn a_client_key_of_alibabas_kind_is_written_as_the_two_files_alibaba_downloads_and_openssl_opens_them() {
    use base64::Engine as _;
    let data = tempfile::tempdir().unwrap();
    let s = Setup::start_with(Location::Dir(data.path().to_path_buf())).await;
    s.json_as("admin.json", &["aap", "create", "orders"]).await;
    let out = s.path("keys");
    std::fs::create_dir(&out).unwrap();
    let made = s.json_as("admin.json", &["client-key", "create", "--aap", "orders", "--out-dir", path_str(&out)]).await;
    let id = str_field(&made, "clientKeyId").to_owned();
    assert_eq!(str_field(&made, "kind"), "RSA", "{made:#}");
    assert!(made.get("privateKeyData").is_none() && made.get("clientKeySecret").is_none(), "{made:#}");
    let key_file = out.join(format!("clientKey_{id}.json"));
    let password_file = out.join(format!("clientKey_{id}_Password.txt"));
    assert_eq!(str_field(&made, "clientKeyFile"), path_str(&key_file));
    #[cfg(unix)]
    for file in [&key_file, &password_file] {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
    }
    let document: Value = serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert_eq!(document["KeyId"], id.as_str());
    let private_key_data = str_field(&document, "PrivateKeyData").to_owned();
    let pfx = base64::engine::general_purpose::STANDARD.decode(&private_key_data).unwrap();
    let p12 = s.path("key.p12");
    std::fs::write(&p12, &pfx).unwrap();
    let password = std::fs::read_to_string(&password_file).unwrap();

    let pem = openssl_pkcs12(&p12, &password).expect("OpenSSL opens the file with its password");
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----") && pem.contains("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(pem.contains(&format!("subject=CN = {id}")), "the certificate names the ClientKey: {pem}");
    let refused = openssl_pkcs12(&p12, "Wrong-Passw0rd").expect_err("a wrong password does not open it");
    assert!(refused.to_lowercase().contains("mac"), "the MAC refuses a wrong password: {refused}");

    // A password of the caller's, printed once when no --out-dir is given; a weak one is refused.
    let printed =
        s.json_as("admin.json", &["client-key", "create", "--aap", "orders", "--password", "Orders-Passw0rd"]).await;
    let printed_pfx = base64::engine::general_purpose::STANDARD.decode(str_field(&printed, "privateKeyData")).unwrap();
    std::fs::write(&p12, &printed_pfx).unwrap();
    openssl_pkcs12(&p12, "Orders-Passw0rd").expect("opens with the caller's password");
    let weak = s.as_("admin.json", &["client-key", "create", "--aap", "orders", "--password", "password"]).await;
    assert!(weak.failed().starts_with("InvalidParameter (400)"), "{}", weak.stderr);
    assert!(weak.stderr.contains("Password"), "{}", weak.stderr);

    // The server kept the public key only: no trace of the private key or the password in its store or records.
    let listed = s.json_as("admin.json", &["client-key", "list", "--aap", "orders"]).await;
    assert_eq!(array(&listed, "clientKeys").len(), 2);
    let audit = s.as_("admin.json", &["audit", "list", "--page-size", "100", "--output", "json"]).await;
    s.server.stop().await;
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(data.path()).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let stored = String::from_utf8_lossy(&stored);
    let private_pem_body: String = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .expect("a PEM body line")
        .to_owned();
    for (what, secret) in [
        ("the PKCS#12 file", &private_key_data[..64]),
        ("the private key", private_pem_body.as_str()),
        ("the password", password.as_str()),
        ("the caller's password", "Orders-Passw0rd"),
    ] {
        assert!(!stored.contains(secret), "{what} is in the store");
        assert!(!audit.stdout.contains(secret), "{what} is in the audit trail");
    }
    assert_eq!(audit.stdout.matches("CreateClientKey").count(), 3, "the calls were audited: {}", audit.stdout);
}
