//! Secrets stay out of the logs: the real `kmsim` binary, with `--auth
//! required` and every log level on, serves a workload that handles secrets,
//! plaintext, data keys and secret values, and nothing it prints contains any of them.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use base64::Engine as _;
use common::*;
use kmsim::credentials::Credentials;
use kmsim::proto as pb;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use tonic::Code;
use tonic::transport::Channel;

/// `kmsim serve` with its stdout and stderr captured whole.
struct Captured {
    child: Child,
    addr: std::net::SocketAddr,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

fn spawn(args: &[&str]) -> Captured {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "trace")
        .env_remove("KMSIM_AUTH")
        .env_remove("KMSIM_ADMIN_KEY_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmsim starts");
    let mut stderr = child.stderr.take().unwrap();
    // Drained from the start, so a chatty trace log never blocks the server on a full pipe.
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).expect("stderr is text");
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).expect("reads the listening line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .expect("an IP:PORT");
    let stdout = std::thread::spawn(move || {
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("stdout is text");
        first + &rest
    });
    Captured { child, addr, stdout, stderr }
}

impl Captured {
    /// Stops the server (SIGTERM, as an operator would) and returns everything it printed.
    fn stop(mut self) -> String {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        assert!(sent.expect("kill runs").success());
        let status = self.child.wait().expect("the server exits");
        let stdout = self.stdout.join().expect("stdout reader");
        let stderr = self.stderr.join().expect("stderr reader");
        assert!(status.success(), "kmsim exited with {status:?}\n{stderr}");
        format!("{stdout}\n{stderr}")
    }
}

/// Every spelling of `bytes` a log line might carry.
fn spellings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        base64::engine::general_purpose::STANDARD.encode(bytes),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        hex.clone(),
        hex.to_uppercase(),
        format!("{bytes:?}"),
    ]
}

#[tokio::test]
async fn no_secret_plaintext_or_data_key_reaches_the_logs_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let admin_file = dir.path().join("admin.json");
    let server = spawn(&[
        "--in-memory",
        "--listen",
        "127.0.0.1:0",
        "--auth",
        "required",
        "--admin-key-file",
        admin_file.to_str().unwrap(),
    ]);
    // The server made the admin credential, readable by its owner only.
    let admin = Credentials::read_file(&admin_file).expect("the admin credential file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&admin_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let channel = Channel::from_shared(format!("http://{}", server.addr)).unwrap().connect().await.expect("connects");
    let mut root = SignedClients::on(channel.clone(), &admin);

    // An AccessKey and a ClientKey, both with every KMS permission.
    let user = create_access_key_as(&mut root, "log-tester").await;
    create_policy_as(&mut root, "kms-all", &identity_policy("Allow", &["kms:*"], &["*"])).await;
    attach_user_policy_as(&mut root, "kms-all", "log-tester").await;
    let aap = pb::CreateApplicationAccessPointRequest {
        name: "log-app".into(),
        policy_names: vec!["kms-all".into()],
        ..Default::default()
    };
    root.access.create_application_access_point(aap).await.expect("create AAP");
    let created =
        root.access.create_client_key(pb::CreateClientKeyRequest { aap_name: "log-app".into(), ..Default::default() });
    let created = created.await.expect("create client key").into_inner();
    let client_key = Credentials::new(created.client_key.unwrap().client_key_id, created.client_key_secret);

    // The user's workload: encrypt a marker, decrypt it, make and export data keys, export a key.
    let mut alice = SignedClients::on(channel.clone(), &user);
    let marker = format!("kmsim-log-marker-{}", uuid::Uuid::new_v4().simple());
    let key = alice.kms.create_key(pb::CreateKeyRequest { exportable: true, ..Default::default() }).await;
    let key_id = key.expect("CreateKey").into_inner().key_metadata.unwrap().key_id;
    let encrypt =
        pb::EncryptRequest { key_id: key_id.clone(), plaintext: marker.as_bytes().to_vec(), ..Default::default() };
    let blob = alice.kms.encrypt(encrypt).await.expect("Encrypt").into_inner().ciphertext_blob;
    let plain = alice.kms.decrypt(decrypt_request(&blob)).await.expect("Decrypt").into_inner().plaintext;
    assert_eq!(plain, marker.as_bytes());
    let data_key = pb::GenerateDataKeyRequest { key_id: key_id.clone(), ..Default::default() };
    let data_key = alice.kms.generate_data_key(data_key).await.expect("GenerateDataKey").into_inner();
    assert_eq!(data_key.plaintext.len(), 32);

    let private = RsaPrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let export = pb::ExportDataKeyRequest {
        ciphertext_blob: data_key.ciphertext_blob.clone(),
        public_key_blob: pem.as_bytes().to_vec(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
        wrapping_key_spec: "RSA_2048".into(),
        ..Default::default()
    };
    let exported = alice.kms.export_data_key(export).await.expect("ExportDataKey").into_inner();
    let unwrapped = private.decrypt(Oaep::<sha2::Sha256>::new(), &exported.export_blob).unwrap();
    assert_eq!(unwrapped, data_key.plaintext);
    let export_key = pb::ExportKeyRequest {
        key_id: key_id.clone(),
        public_key_blob: pem.as_bytes().to_vec(),
        wrapping_algorithm: "RSAES_OAEP_SHA_256".into(),
        wrapping_key_spec: "RSA_2048".into(),
        ..Default::default()
    };
    let exported_key = alice.kms.export_key(export_key).await.expect("ExportKey").into_inner();
    let material = private.decrypt(Oaep::<sha2::Sha256>::new(), &exported_key.export_blob).unwrap();
    assert_eq!(material.len(), 32);

    // Secrets: a value put and read, and a managed RAM credential made by rotation and read.
    let secret_marker = format!("kmsim-secret-marker-{}", uuid::Uuid::new_v4().simple());
    let create = pb::CreateSecretRequest {
        secret_name: "log-secret".into(),
        secret_data: secret_marker.clone(),
        ..Default::default()
    };
    alice.secrets.create_secret(create).await.expect("CreateSecret");
    let read = pb::GetSecretValueRequest { secret_name: "log-secret".into(), ..Default::default() };
    let read = alice.secrets.get_secret_value(read).await.expect("GetSecretValue").into_inner();
    assert_eq!(read.secret_data, secret_marker);
    let ram = pb::CreateSecretRequest {
        secret_name: "log-ram".into(),
        secret_data: "{}".into(),
        secret_type: "RAMCredentials".into(),
        ..Default::default()
    };
    alice.secrets.create_secret(ram).await.expect("CreateSecret RAM");
    let rotate = pb::RotateSecretRequest { secret_name: "log-ram".into(), ..Default::default() };
    alice.secrets.rotate_secret(rotate).await.expect("RotateSecret");
    let read = pb::GetSecretValueRequest { secret_name: "log-ram".into(), ..Default::default() };
    let rotated = alice.secrets.get_secret_value(read).await.expect("GetSecretValue RAM").into_inner().secret_data;
    let rotated: serde_json::Value = serde_json::from_str(&rotated).unwrap();
    let rotated_secret = rotated["AccessKeySecret"].as_str().expect("a rotated AccessKeySecret").to_owned();

    // The application's ClientKey, and a forged signature with the user's id.
    let mut app = SignedClients::on(channel.clone(), &client_key);
    let app_encrypt =
        pb::EncryptRequest { key_id: key_id.clone(), plaintext: marker.as_bytes().to_vec(), ..Default::default() };
    app.kms.encrypt(app_encrypt).await.expect("Encrypt with the ClientKey");
    let mut forged = SignedClients::on(channel, &Credentials::new(user.access_key_id.clone(), "a-wrong-secret"));
    let refused = forged.kms.decrypt(decrypt_request(&blob)).await.unwrap_err();
    assert_error(&refused, Code::Unauthenticated, "SignatureNotMatch", "401", None, "a forged call");
    drop((root, alice, app, forged));

    // Stopped off the runtime's thread, so the dropped clients' connections can close meanwhile.
    let output = tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
    // The capture is real: trace logging was on, and the server said who the admin is.
    assert!(output.contains("TRACE"), "RUST_LOG=trace produced no trace lines; the check below would prove nothing");
    assert!(output.contains(&admin.access_key_id), "the admin's AccessKey id is logged when it is created");
    let mut secrets: Vec<(&str, String)> = vec![
        ("the admin's secret", admin.secret.expose().to_owned()),
        ("the AccessKey secret", user.secret.expose().to_owned()),
        ("the ClientKey secret", client_key.secret.expose().to_owned()),
        ("the plaintext marker", marker.clone()),
        ("the secret value", secret_marker.clone()),
        ("the rotated AccessKeySecret", rotated_secret),
    ];
    for spelling in spellings(secret_marker.as_bytes()) {
        secrets.push(("the secret value, encoded", spelling));
    }
    for spelling in spellings(marker.as_bytes()) {
        secrets.push(("the plaintext marker, encoded", spelling));
    }
    for spelling in spellings(&data_key.plaintext) {
        secrets.push(("the data key", spelling));
    }
    for spelling in spellings(&material) {
        secrets.push(("the exported key material", spelling));
    }
    for (what, secret) in &secrets {
        if let Some(at) = output.find(secret.as_str()) {
            let line_start = output[..at].rfind('\n').map_or(0, |n| n + 1);
            let line_end = output[at..].find('\n').map_or(output.len(), |n| at + n);
            panic!("{what} is in the server's output:\n{}", &output[line_start..line_end]);
        }
    }
}
