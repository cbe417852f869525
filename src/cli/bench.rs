//! `kmsim bench`: a load generator over real gRPC, and over the HTTP/1.1 front
//! ends for the phases that say so (`openapi-encrypt`: ACS3-signed requests to
//! Alibaba's OpenAPI; `aws-encrypt`: SigV4-signed requests to the AWS API;
//! `instance-encrypt`: RSA-signed protobuf requests to the KMS instance API with
//! a ClientKey, on a key of an instance; all over keep-alive, one connection per
//! worker, as the SDKs send them). What the instance API's RSA signatures cost
//! is measured apart, in the bench's own process: a verification (the server's
//! work per call) and a signature (the client's).
//!
//! Each operation is measured in its own phase at a fixed concurrency, over a
//! fixed set of HTTP/2 connections, after a warm-up. A floor, the gRPC health
//! check over the same connections and concurrency, is measured before the
//! first phase and after the last, and every phase is reported as a ratio of
//! it: on a shared machine the absolute figures drift, the ratios much less.
//! Without `--endpoint` the bench starts `kmsim serve` itself (a child
//! process on a fresh data dir, durable audit on), times its start to
//! serving, and reports its resident memory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::output::{OutputFormat, emit};
use crate::frontends::grpc::headers::ERROR_CODE as ERROR_CODE_HEADER;
use crate::proto as pb;
use crate::proto::key_management_service_client::KeyManagementServiceClient;
use crate::proto::secrets_manager_service_client::SecretsManagerServiceClient;

const ALL_OPERATIONS: &str = "encrypt,openapi-encrypt,aws-encrypt,instance-encrypt,decrypt,generate-data-key,sign,verify,generate-mac,get-secret-value,describe-key";

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  kmsim bench\n  \
                        kmsim bench --ops encrypt,decrypt,generate-data-key --duration 10s --output json\n  \
                        kmsim bench --ops encrypt --calls 1000000 --warm-up 0\n  \
                        kmsim bench --endpoint http://127.0.0.1:9595 --mix encrypt=4,decrypt=4,describe-key=1")]
pub struct BenchArgs {
    /// Load this running server (http://, or a bare IP:PORT). Without it, bench starts `kmsim serve` itself on a fresh
    /// temporary data dir, with durable audit as serve runs by default, and reports its memory.
    #[arg(long)]
    endpoint: Option<String>,
    /// For the server bench starts: this data dir (kept afterwards) instead of a fresh temporary one.
    #[arg(long, conflicts_with_all = ["endpoint", "in_memory"])]
    data_dir: Option<PathBuf>,
    /// For the server bench starts: keep everything in memory (the audit is then not durable).
    #[arg(long, conflicts_with = "endpoint")]
    in_memory: bool,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// Calls in flight at once, over all the connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    concurrency: u16,
    /// The operations to measure, each in a phase of its own.
    #[arg(long, value_enum, value_delimiter = ',', default_value = ALL_OPERATIONS)]
    ops: Vec<Operation>,
    /// Also measure one mixed phase, OPERATION=WEIGHT,…: e.g. encrypt=4,decrypt=4,describe-key=1.
    #[arg(long, value_parser = parse_mix)]
    mix: Option<Mix>,
    /// Size in bytes of plaintexts, signed and MACed messages and secret values (1 to 4096). Data keys are 32
    /// bytes whatever this says.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    payload: u16,
    /// How long each phase is measured, after its warm-up: e.g. 10s, 2m.
    #[arg(long, default_value = "5s", value_parser = crate::clock::parse_duration)]
    duration: Duration,
    /// Measure this many calls per phase instead of a duration.
    #[arg(long, conflicts_with = "duration")]
    calls: Option<u64>,
    /// How long calls run before each phase's measurement starts (connections, caches, the store): e.g. 1s, 0.
    #[arg(long, default_value = "1s", value_parser = crate::clock::parse_duration)]
    warm_up: Duration,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Print one field of the JSON report raw, by a dotted path: e.g. `phases.0.ratioToFloor`,
    /// `server.peakRssBytes`.
    #[arg(long = "query", value_name = "PATH")]
    result_query: Option<String>,
}

/// What a phase calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Operation {
    Encrypt,
    /// Encrypt through the Alibaba OpenAPI front end on the same port.
    OpenapiEncrypt,
    /// Encrypt through the AWS KMS front end on the same port.
    AwsEncrypt,
    /// Encrypt through the KMS instance API on the same port (RSA-signed protobuf), on a key of an instance.
    InstanceEncrypt,
    Decrypt,
    GenerateDataKey,
    Sign,
    Verify,
    GenerateMac,
    GetSecretValue,
    DescribeKey,
    /// The floor: `grpc.health.v1.Health/Check`, which does no work and writes no record.
    #[value(skip)]
    Health,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Encrypt => "encrypt",
            Operation::OpenapiEncrypt => "openapi-encrypt",
            Operation::AwsEncrypt => "aws-encrypt",
            Operation::InstanceEncrypt => "instance-encrypt",
            Operation::Decrypt => "decrypt",
            Operation::GenerateDataKey => "generate-data-key",
            Operation::Sign => "sign",
            Operation::Verify => "verify",
            Operation::GenerateMac => "generate-mac",
            Operation::GetSecretValue => "get-secret-value",
            Operation::DescribeKey => "describe-key",
            Operation::Health => "health",
        }
    }
}

/// Operations with their weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix(Vec<(Operation, u32)>);

fn parse_mix(text: &str) -> Result<Mix, String> {
    let mut mix = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (name, weight) = term.split_once('=').unwrap_or((term, "1"));
        let op = Operation::from_str(name.trim(), true)
            .map_err(|_| format!("{name:?} is not an operation; use one of {ALL_OPERATIONS}"))?;
        let weight: u32 = weight.trim().parse().map_err(|_| format!("{term:?}: the weight must be a whole number"))?;
        if !(1..=1000).contains(&weight) {
            return Err(format!("{term:?}: weights go from 1 to 1000"));
        }
        if mix.iter().any(|(seen, _)| *seen == op) {
            return Err(format!("{name:?} is named twice"));
        }
        mix.push((op, weight));
    }
    if mix.is_empty() {
        return Err("name at least one operation, e.g. encrypt=4,decrypt=1".into());
    }
    Ok(Mix(mix))
}

impl Mix {
    fn one(op: Operation) -> Mix {
        Mix(vec![(op, 1)])
    }

    fn label(&self) -> String {
        match self.0.as_slice() {
            [(op, _)] => op.name().to_owned(),
            terms => format!(
                "mix {}",
                terms.iter().map(|(op, w)| format!("{}={w}", op.name())).collect::<Vec<_>>().join(",")
            ),
        }
    }

    /// The order a worker calls in: each operation as often as its weight, shuffled so that
    /// heavy operations do not come in runs, and started at a different place by each worker.
    fn schedule(&self, worker: usize) -> Vec<Operation> {
        let mut ops: Vec<Operation> =
            self.0.iter().flat_map(|&(op, weight)| std::iter::repeat_n(op, weight as usize)).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for i in (1..ops.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ops.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let start = worker % ops.len();
        ops.rotate_left(start);
        ops
    }
}

/// Runs the bench and prints its report.
pub async fn run(args: BenchArgs) -> ExitCode {
    match bench(&args).await {
        Ok(report) => emit(&report, args.output, args.result_query.as_deref(), render_table),
        Err(e) => {
            super::output::print_error(&format!("bench: {e}"));
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: &BenchArgs) -> Result<Value, String> {
    if args.ops.is_empty() && args.mix.is_none() {
        return Err("nothing to measure: give --ops or --mix".into());
    }
    let server = match &args.endpoint {
        Some(endpoint) if endpoint.starts_with("http://") => Server::External(endpoint.clone()),
        // A bare IP:PORT, as `kmsim serve` prints it.
        Some(endpoint) if !endpoint.contains("://") => Server::External(format!("http://{endpoint}")),
        Some(endpoint) => return Err(format!("--endpoint {endpoint}: bench speaks plaintext http:// only")),
        None => Server::Started(StartedServer::start(args.data_dir.clone(), args.in_memory).await?),
    };
    let endpoint = server.endpoint().to_owned();
    let channels = connect(&endpoint, args.connections).await?;
    let fixture = Arc::new(Fixture::create(&channels[0], &args.ops, args.mix.as_ref(), args.payload.into()).await?);

    let mut phases: Vec<Mix> = args.ops.iter().map(|&op| Mix::one(op)).collect();
    phases.extend(args.mix.clone());
    let plan = Plan {
        authority: endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned(),
        concurrency: args.concurrency.into(),
        warm_up: args.warm_up,
        measure: match args.calls {
            Some(calls) => Measure::Calls(calls.max(1)),
            None => Measure::For(args.duration),
        },
    };
    let issued = Arc::new(AtomicU64::new(0));
    let floor_before = run_phase(&channels, &fixture, &Mix::one(Operation::Health), &plan, &issued).await;
    let mut measured = Vec::new();
    for mix in &phases {
        measured.push(run_phase(&channels, &fixture, mix, &plan, &issued).await);
    }
    let floor_after = run_phase(&channels, &fixture, &Mix::one(Operation::Health), &plan, &issued).await;
    let floor = (floor_before.calls_per_second() + floor_after.calls_per_second()) / 2.0;

    // Every KMS call leaves at least one audit record; the health checks leave none.
    let floor_calls = floor_before.issued + floor_after.issued;
    let audited_calls = fixture.setup_calls + issued.load(Ordering::Relaxed) - floor_calls;
    let settings = json!({
        "endpoint": endpoint,
        "connections": args.connections,
        "concurrency": args.concurrency,
        "payloadBytes": args.payload,
        "warmUpSeconds": args.warm_up.as_secs_f64(),
        "measure": match plan.measure {
            Measure::Calls(calls) => json!({ "calls": calls }),
            Measure::For(duration) => json!({ "seconds": duration.as_secs_f64() }),
        },
    });
    let server_report = server.report(audited_calls);
    server.stop();
    Ok(json!({
        "settings": settings,
        "server": server_report,
        "floor": {
            "operation": "grpc.health.v1.Health/Check",
            "callsPerSecond": round(floor, 1),
            "before": floor_before.to_json(None),
            "after": floor_after.to_json(None),
        },
        "phases": measured.iter().map(|phase| phase.to_json(Some(floor))).collect::<Vec<_>>(),
        "frontEnds": front_end_ratios(&measured),
        "instanceApi": fixture.instance.as_ref().map(InstanceFixture::rsa_costs),
    }))
}

/// Each OpenAPI phase's calls per second as a share of the same operation's
/// over gRPC in the same run, where both were measured.
fn front_end_ratios(measured: &[PhaseResult]) -> Value {
    let rate = |label: &str| measured.iter().find(|p| p.label == label).map(PhaseResult::calls_per_second);
    let mut ratios = serde_json::Map::new();
    for (phase, name) in [
        ("openapi-encrypt", "openapiEncryptToGrpcEncrypt"),
        ("aws-encrypt", "awsEncryptToGrpcEncrypt"),
        ("instance-encrypt", "instanceEncryptToGrpcEncrypt"),
    ] {
        if let (Some(http), Some(grpc)) = (rate(phase), rate("encrypt"))
            && grpc > 0.0
        {
            ratios.insert(name.to_owned(), json!(round(http / grpc, 2)));
        }
    }
    Value::Object(ratios)
}

async fn connect(endpoint: &str, connections: u16) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::with_capacity(connections.into());
    for _ in 0..connections {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| format!("--endpoint {endpoint}: {e}"))?
            .user_agent(concat!("kmsim-bench/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// The keys, blobs and signatures the measured calls use, made before any phase.
struct Fixture {
    payload: Vec<u8>,
    symmetric_key: String,
    /// A symmetric key in [`AWS_BENCH_REGION`], where the AWS calls are signed for.
    aws_key: String,
    blob: Vec<u8>,
    ec_key: String,
    digest: Vec<u8>,
    signature: Vec<u8>,
    hmac_key: String,
    secret_name: String,
    /// What the instance API's calls use.
    instance: Option<InstanceFixture>,
    /// KMS calls the setup made (each left an audit record).
    setup_calls: u64,
}

/// An instance with a key, and a ClientKey of an AAP bound to it, whose private key the bench took from the
/// PKCS#12 file as an application would.
struct InstanceFixture {
    key_id: String,
    client_key_id: String,
    signing: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
}

impl InstanceFixture {
    /// The AAP, policy and ClientKey are made by the bench; the instance is large enough
    /// (`MAX_SPEC` QPS) that its meter never throttles the phase, though every call is metered.
    async fn create(channel: &Channel) -> Result<InstanceFixture, String> {
        use crate::proto::access_service_client::AccessServiceClient;
        use crate::proto::instance_service_client::InstanceServiceClient;
        use base64::Engine as _;
        let setup = |what: &str, status: tonic::Status| format!("setting up ({what}): {}", error_code(&status));
        let name = format!("kmsim-bench-{}", uuid::Uuid::new_v4().simple());
        let instance = pb::CreateKmsInstanceRequest {
            spec: i64::from(crate::engine::instances::MAX_SPEC),
            instance_name: name.clone(),
            ..Default::default()
        };
        let instance = InstanceServiceClient::new(channel.clone()).create_kms_instance(instance).await;
        let instance_id = instance
            .map_err(|s| setup("CreateKmsInstance", s))?
            .into_inner()
            .kms_instance
            .unwrap_or_default()
            .kms_instance_id;
        let key = pb::CreateKeyRequest {
            dkms_instance_id: instance_id.clone(),
            description: "kmsim bench".to_owned(),
            ..Default::default()
        };
        let key = KeyManagementServiceClient::new(channel.clone())
            .create_key(key)
            .await
            .map_err(|s| setup("CreateKey", s))?;
        let key_id = key.into_inner().key_metadata.map(|m| m.key_id).unwrap_or_default();
        let mut access = AccessServiceClient::new(channel.clone());
        let document = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:Encrypt"],"Resource":["*"]}]}"#;
        let policy = pb::CreatePolicyRequest {
            policy_name: name.clone(),
            policy_document: document.to_owned(),
            ..Default::default()
        };
        access.create_policy(policy).await.map_err(|s| setup("CreatePolicy", s))?;
        let aap = pb::CreateApplicationAccessPointRequest {
            name: name.clone(),
            kms_instance_id: instance_id,
            policy_names: vec![name.clone()],
            ..Default::default()
        };
        access.create_application_access_point(aap).await.map_err(|s| setup("CreateApplicationAccessPoint", s))?;
        let password = format!("Kb1{}", uuid::Uuid::new_v4().simple());
        let request = pb::CreateClientKeyRequest { aap_name: name, password: password.clone(), ..Default::default() };
        let made = access.create_client_key(request).await.map_err(|s| setup("CreateClientKey", s))?.into_inner();
        let pfx =
            base64::engine::general_purpose::STANDARD.decode(&made.private_key_data).map_err(|e| e.to_string())?;
        let private = crate::engine::crypto::pkcs12::open_client_key(&pfx, &password)
            .map_err(|_| "the ClientKey's PKCS#12 file did not open".to_owned())?;
        let client_key_id = made.client_key.map(|k| k.client_key_id).unwrap_or_default();
        Ok(InstanceFixture { key_id, client_key_id, signing: rsa::pkcs1v15::SigningKey::new(private) })
    }

    /// What an RSA-2048 PKCS#1 v1.5 SHA-256 signature of a request costs: the client's signing and the server's
    /// verification, each the median of 200 in this process.
    fn rsa_costs(&self) -> Value {
        use rsa::signature::{Keypair, Signer, Verifier};
        const RUNS: usize = 200;
        let message = b"POST\nAB12\napplication/x-protobuf\nTue, 08 Dec 2026 01:36:09 GMT\nx-kms-apiname:Encrypt\n/";
        let median = |mut micros: Vec<f64>| {
            micros.sort_by(f64::total_cmp);
            micros[micros.len() / 2]
        };
        let mut signed = None;
        let sign: Vec<f64> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                signed = Some(self.signing.sign(message));
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let verifying = self.signing.verifying_key();
        let verify: Vec<f64> = match &signed {
            Some(signature) => (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    let _ = verifying.verify(message, signature);
                    started.elapsed().as_secs_f64() * 1e6
                })
                .collect(),
            None => vec![0.0],
        };
        json!({
            "signature": "RSA-2048 PKCS#1 v1.5 SHA-256",
            "verifyMicrosPerCall": round(median(verify), 1),
            "signMicrosPerCall": round(median(sign), 1),
        })
    }
}

impl Fixture {
    async fn create(
        channel: &Channel,
        ops: &[Operation],
        mix: Option<&Mix>,
        payload: usize,
    ) -> Result<Fixture, String> {
        let wanted: Vec<Operation> =
            ops.iter().copied().chain(mix.into_iter().flat_map(|m| m.0.iter().map(|t| t.0))).collect();
        let needs = |any: &[Operation]| wanted.iter().any(|op| any.contains(op));
        let mut kms = KeyManagementServiceClient::new(channel.clone());
        let mut secrets = SecretsManagerServiceClient::new(channel.clone());
        let setup = |what: &str, status: tonic::Status| format!("setting up ({what}): {}", error_code(&status));
        // Printable bytes, so the same payload can be a secret's text value.
        let payload: Vec<u8> = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
        let mut fixture = Fixture {
            digest: sha2::Sha256::digest(&payload).to_vec(),
            payload,
            symmetric_key: String::new(),
            aws_key: String::new(),
            blob: Vec::new(),
            ec_key: String::new(),
            signature: Vec::new(),
            hmac_key: String::new(),
            secret_name: String::new(),
            instance: None,
            setup_calls: 0,
        };
        let mut create_key = async |spec: &str| -> Result<String, String> {
            let request = pb::CreateKeyRequest {
                key_spec: spec.to_owned(),
                description: "kmsim bench".to_owned(),
                ..Default::default()
            };
            let created = kms.create_key(request).await.map_err(|s| setup("CreateKey", s))?.into_inner();
            created.key_metadata.map(|m| m.key_id).ok_or_else(|| "CreateKey answered without metadata".to_owned())
        };
        if needs(&[
            Operation::Encrypt,
            Operation::OpenapiEncrypt,
            Operation::Decrypt,
            Operation::GenerateDataKey,
            Operation::DescribeKey,
        ]) {
            fixture.symmetric_key = create_key("Aliyun_AES_256").await?;
            fixture.setup_calls += 1;
        }
        if needs(&[Operation::Sign, Operation::Verify]) {
            fixture.ec_key = create_key("EC_P256").await?;
            fixture.setup_calls += 1;
        }
        if needs(&[Operation::GenerateMac]) {
            fixture.hmac_key = create_key("HMAC_256").await?;
            fixture.setup_calls += 1;
        }
        if needs(&[Operation::AwsEncrypt]) {
            // An AWS client names its region in its signature, and keys are regional.
            let mut request = tonic::Request::new(pb::CreateKeyRequest {
                key_spec: "Aliyun_AES_256".to_owned(),
                description: "kmsim bench".to_owned(),
                ..Default::default()
            });
            if let Ok(region) = AWS_BENCH_REGION.parse() {
                request.metadata_mut().insert(crate::frontends::grpc::headers::REGION, region);
            }
            let created = kms.create_key(request).await.map_err(|s| setup("CreateKey", s))?.into_inner();
            fixture.aws_key = created.key_metadata.map(|m| m.key_id).unwrap_or_default();
            fixture.setup_calls += 1;
        }
        if needs(&[Operation::InstanceEncrypt]) {
            fixture.instance = Some(InstanceFixture::create(channel).await?);
            // CreateKmsInstance, CreateKey, CreatePolicy, CreateApplicationAccessPoint, CreateClientKey.
            fixture.setup_calls += 5;
        }
        if needs(&[Operation::Decrypt]) {
            let request = fixture.encrypt_request();
            fixture.blob = kms.encrypt(request).await.map_err(|s| setup("Encrypt", s))?.into_inner().ciphertext_blob;
            fixture.setup_calls += 1;
        }
        if needs(&[Operation::Verify]) {
            let request = fixture.sign_request();
            fixture.signature =
                kms.asymmetric_sign(request).await.map_err(|s| setup("AsymmetricSign", s))?.into_inner().signature;
            fixture.setup_calls += 1;
        }
        if needs(&[Operation::GetSecretValue]) {
            fixture.secret_name = format!("kmsim-bench-{}", uuid::Uuid::new_v4().simple());
            let request = pb::CreateSecretRequest {
                secret_name: fixture.secret_name.clone(),
                secret_data: String::from_utf8_lossy(&fixture.payload).into_owned(),
                version_id: "v1".to_owned(),
                ..Default::default()
            };
            secrets.create_secret(request).await.map_err(|s| setup("CreateSecret", s))?;
            // CreateSecret may create the default secrets key and seals the value with it: count it as one.
            fixture.setup_calls += 1;
        }
        Ok(fixture)
    }

    fn encrypt_request(&self) -> pb::EncryptRequest {
        pb::EncryptRequest { key_id: self.symmetric_key.clone(), plaintext: self.payload.clone(), ..Default::default() }
    }

    fn sign_request(&self) -> pb::AsymmetricSignRequest {
        pb::AsymmetricSignRequest {
            key_id: self.ec_key.clone(),
            algorithm: "ECDSA_SHA_256".to_owned(),
            digest: self.digest.clone(),
            ..Default::default()
        }
    }
}

/// One worker's clients: cheap clones over a shared HTTP/2 connection, and
/// its own HTTP/1.1 connection for the OpenAPI.
struct Clients {
    kms: KeyManagementServiceClient<Channel>,
    secrets: SecretsManagerServiceClient<Channel>,
    health: HealthClient<Channel>,
    openapi: OpenApiClient,
}

impl Clients {
    fn new(channel: &Channel, authority: &str) -> Clients {
        Clients {
            kms: KeyManagementServiceClient::new(channel.clone()),
            secrets: SecretsManagerServiceClient::new(channel.clone()),
            health: HealthClient::new(channel.clone()),
            openapi: OpenApiClient { authority: authority.to_owned(), connection: None, instance_signed: None },
        }
    }

    /// Makes one call; a failure is its error code.
    async fn call(&mut self, op: Operation, f: &Fixture) -> Result<(), String> {
        match op {
            Operation::OpenapiEncrypt => return self.openapi.alibaba_encrypt(f).await,
            Operation::AwsEncrypt => return self.openapi.aws_encrypt(f).await,
            Operation::InstanceEncrypt => return self.openapi.instance_encrypt(f).await,
            _ => {}
        }
        self.grpc_call(op, f).await.map_err(|status| error_code(&status))
    }

    async fn grpc_call(&mut self, op: Operation, f: &Fixture) -> Result<(), tonic::Status> {
        match op {
            Operation::OpenapiEncrypt | Operation::AwsEncrypt | Operation::InstanceEncrypt => {
                unreachable!("an HTTP/1.1 front end's call is not made over gRPC")
            }
            Operation::Health => self.health.check(HealthCheckRequest { service: String::new() }).await.map(drop),
            Operation::Encrypt => self.kms.encrypt(f.encrypt_request()).await.map(drop),
            Operation::Decrypt => {
                let request = pb::DecryptRequest { ciphertext_blob: f.blob.clone(), ..Default::default() };
                self.kms.decrypt(request).await.map(drop)
            }
            Operation::GenerateDataKey => {
                let request = pb::GenerateDataKeyRequest { key_id: f.symmetric_key.clone(), ..Default::default() };
                self.kms.generate_data_key(request).await.map(drop)
            }
            Operation::Sign => self.kms.asymmetric_sign(f.sign_request()).await.map(drop),
            Operation::Verify => {
                let request = pb::AsymmetricVerifyRequest {
                    key_id: f.ec_key.clone(),
                    algorithm: "ECDSA_SHA_256".to_owned(),
                    digest: f.digest.clone(),
                    signature: f.signature.clone(),
                    ..Default::default()
                };
                self.kms.asymmetric_verify(request).await.map(drop)
            }
            Operation::GenerateMac => {
                let request = pb::GenerateMacRequest {
                    key_id: f.hmac_key.clone(),
                    algorithm: "HMAC_SHA_256".to_owned(),
                    message: f.payload.clone(),
                };
                self.kms.generate_mac(request).await.map(drop)
            }
            Operation::GetSecretValue => {
                let request = pb::GetSecretValueRequest { secret_name: f.secret_name.clone(), ..Default::default() };
                self.secrets.get_secret_value(request).await.map(drop)
            }
            Operation::DescribeKey => {
                let request = pb::DescribeKeyRequest { key_id: f.symmetric_key.clone() };
                self.kms.describe_key(request).await.map(drop)
            }
        }
    }
}

/// The region the AWS calls are signed for.
const AWS_BENCH_REGION: &str = "us-east-1";

/// The AccessKey the OpenAPI calls are signed with: a server with auth off records it as given.
const BENCH_ACCESS_KEY_ID: &str = "LTAIkmsimBench0000000001";
const BENCH_ACCESS_KEY_SECRET: &str = "kmsim-bench-secret";

/// A keep-alive HTTP/1.1 connection to the HTTP front ends, opened on first
/// use and again after a failure.
struct OpenApiClient {
    /// `host:port`.
    authority: String,
    connection: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
    /// The instance API's signed headers and the `date` they were signed for. The bench sends the same body
    /// each time and `date` has one-second resolution, so it signs once a second per worker, as a client
    /// could: an RSA signature costs the client twenty times what its verification costs the server, and
    /// signing every call would measure the bench, not the server. The server still verifies every call.
    instance_signed: Option<(String, http::HeaderMap)>,
}

impl OpenApiClient {
    /// A SigV4-signed Encrypt, as boto3 sends it.
    async fn aws_encrypt(&mut self, f: &Fixture) -> Result<(), String> {
        use base64::Engine as _;
        let body = serde_json::to_vec(&json!({
            "KeyId": f.aws_key,
            "Plaintext": base64::engine::general_purpose::STANDARD.encode(&f.payload),
        }))
        .unwrap_or_default();
        let request = http::Request::post("/")
            .header("host", &self.authority)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "TrentService.Encrypt")
            .header("user-agent", concat!("kmsim-bench/", env!("CARGO_PKG_VERSION")))
            .body(())
            .map_err(|e| format!("http:{e}"))?;
        let (mut parts, ()) = request.into_parts();
        crate::frontends::aws::sigv4::sign(
            &mut parts,
            &body,
            BENCH_ACCESS_KEY_ID,
            BENCH_ACCESS_KEY_SECRET,
            AWS_BENCH_REGION,
        );
        let request = http::Request::from_parts(parts, http_body_util::Full::new(bytes::Bytes::from(body)));
        self.send(request, "__type").await
    }

    /// An ACS3-HMAC-SHA256-signed Encrypt, as `alibabacloud-kms20160120` sends it.
    async fn alibaba_encrypt(&mut self, f: &Fixture) -> Result<(), String> {
        use crate::frontends::alibaba::signature::{acs3_authorization, content_sha256};
        use crate::frontends::query::rfc3986;
        use base64::Engine as _;

        let query = vec![
            ("KeyId".to_owned(), f.symmetric_key.clone()),
            ("Plaintext".to_owned(), base64::engine::general_purpose::STANDARD.encode(&f.payload)),
        ];
        // The SDK signs with the wall clock, to the second, as Alibaba's format writes it.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let date = crate::clock::SimTime(i64::try_from(now.as_millis()).unwrap_or(i64::MAX)).to_rfc3339();
        let headers: BTreeMap<String, String> = [
            ("host", self.authority.clone()),
            ("x-acs-action", "Encrypt".to_owned()),
            ("x-acs-version", "2016-01-20".to_owned()),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", uuid::Uuid::new_v4().simple().to_string()),
            ("x-acs-content-sha256", content_sha256(b"")),
            ("user-agent", concat!("kmsim-bench/", env!("CARGO_PKG_VERSION")).to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let authorization =
            acs3_authorization("POST", &query, &headers, b"", BENCH_ACCESS_KEY_ID, BENCH_ACCESS_KEY_SECRET);
        let query = query.iter().map(|(k, v)| format!("{}={}", rfc3986(k), rfc3986(v))).collect::<Vec<_>>().join("&");
        let mut request = http::Request::post(format!("/?{query}"));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request
            .header("authorization", authorization)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| format!("http:{e}"))?;
        self.send(request, "Code").await
    }

    /// An Encrypt to the KMS instance API, signed as `alibabacloud-dkms-gcs` signs it.
    async fn instance_encrypt(&mut self, f: &Fixture) -> Result<(), String> {
        use prost::Message as _;
        let instance = f.instance.as_ref().ok_or("no instance fixture")?;
        let body = crate::dkms_proto::EncryptRequest {
            key_id: instance.key_id.clone(),
            plaintext: f.payload.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        let date = crate::frontends::alibaba::instance::signature::http_date(std::time::SystemTime::now());
        let headers = match &self.instance_signed {
            Some((signed_for, headers)) if *signed_for == date => headers.clone(),
            _ => {
                let headers = crate::frontends::alibaba::instance::signature::signed_headers(
                    &instance.signing,
                    &instance.client_key_id,
                    "Encrypt",
                    &body,
                    Some(&date),
                )
                .map_err(|e| e.code.as_str().to_owned())?;
                self.instance_signed.insert((date, headers)).1.clone()
            }
        };
        let mut request = http::Request::post("/")
            .header("host", &self.authority)
            .header("user-agent", concat!("kmsim-bench/", env!("CARGO_PKG_VERSION")))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| format!("http:{e}"))?;
        request.headers_mut().extend(headers);
        let code = |body: &[u8]| crate::dkms_proto::Error::decode(body).ok().map(|e| e.error_code);
        self.send_reading(request, code).await
    }

    /// Sends `request` and answers its error code, read from the body's `code_field`, if it failed.
    async fn send(
        &mut self,
        request: http::Request<http_body_util::Full<bytes::Bytes>>,
        code_field: &str,
    ) -> Result<(), String> {
        let code = |body: &[u8]| {
            let body: Value = serde_json::from_slice(body).unwrap_or_default();
            body[code_field].as_str().map(str::to_owned)
        };
        self.send_reading(request, code).await
    }

    /// Sends `request` and answers its error code, as `code` reads it from a failure's body.
    async fn send_reading(
        &mut self,
        request: http::Request<http_body_util::Full<bytes::Bytes>>,
        code: impl FnOnce(&[u8]) -> Option<String>,
    ) -> Result<(), String> {
        let sender = match &mut self.connection {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connection.insert(self.connect().await?),
        };
        let answered = sender.send_request(request).await;
        let response = match answered {
            Ok(response) => response,
            Err(error) => {
                self.connection = None;
                return Err(format!("http:{error}"));
            }
        };
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body()).await.map_err(|e| format!("http:{e}"))?;
        if status.is_success() {
            return Ok(());
        }
        Err(code(&body.to_bytes()).unwrap_or_else(|| format!("http:{}", status.as_u16())))
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| format!("connect:{e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("http:{e}"))?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// The error a failed call is counted under: its KMS code, or the gRPC code when the server gave none.
fn error_code(status: &tonic::Status) -> String {
    match status.metadata().get(ERROR_CODE_HEADER).and_then(|v| v.to_str().ok()) {
        Some(code) => code.to_owned(),
        None => format!("grpc:{:?}", status.code()),
    }
}

struct Plan {
    /// Where the OpenAPI phases connect: the endpoint's `host:port`.
    authority: String,
    concurrency: usize,
    warm_up: Duration,
    measure: Measure,
}

#[derive(Clone, Copy)]
enum Measure {
    For(Duration),
    Calls(u64),
}

/// What the workers of one phase share with the phase's controller.
#[derive(Default)]
struct Flags {
    measuring: AtomicBool,
    stop: AtomicBool,
    counted: AtomicU64,
    enough: Notify,
}

/// One operation's measured calls within a phase.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }
}

struct PhaseResult {
    label: String,
    measured: Duration,
    /// Calls made in the phase, warm-up and unmeasured tails included.
    issued: u64,
    by_operation: BTreeMap<Operation, Tally>,
}

async fn run_phase(
    channels: &[Channel],
    fixture: &Arc<Fixture>,
    mix: &Mix,
    plan: &Plan,
    issued: &Arc<AtomicU64>,
) -> PhaseResult {
    let flags = Arc::new(Flags::default());
    let authority = plan.authority.as_str();
    let limit = match plan.measure {
        Measure::Calls(calls) => Some(calls),
        Measure::For(_) => None,
    };
    let phase_issued = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|worker| {
            let mut clients = Clients::new(&channels[worker % channels.len()], authority);
            let schedule = mix.schedule(worker);
            let (fixture, flags, phase_issued) = (fixture.clone(), flags.clone(), phase_issued.clone());
            tokio::spawn(async move {
                let mut tallies: BTreeMap<Operation, Tally> = BTreeMap::new();
                for op in schedule.iter().copied().cycle() {
                    if flags.stop.load(Ordering::Acquire) {
                        break;
                    }
                    let counts = flags.measuring.load(Ordering::Acquire);
                    let started = Instant::now();
                    let result = clients.call(op, &fixture).await;
                    let latency = started.elapsed();
                    phase_issued.fetch_add(1, Ordering::Relaxed);
                    // Only calls begun and finished inside the measured window count.
                    if !counts || flags.stop.load(Ordering::Acquire) {
                        continue;
                    }
                    let tally = tallies.entry(op).or_default();
                    tally.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                    if let Err(code) = result {
                        *tally.errors.entry(code).or_default() += 1;
                    }
                    let counted = flags.counted.fetch_add(1, Ordering::AcqRel) + 1;
                    if limit == Some(counted) {
                        flags.enough.notify_one();
                    }
                }
                tallies
            })
        })
        .collect();

    tokio::time::sleep(plan.warm_up).await;
    flags.measuring.store(true, Ordering::Release);
    let began = Instant::now();
    match plan.measure {
        Measure::For(duration) => tokio::time::sleep(duration).await,
        Measure::Calls(_) => flags.enough.notified().await,
    }
    flags.stop.store(true, Ordering::Release);
    let measured = began.elapsed();

    let mut by_operation: BTreeMap<Operation, Tally> = BTreeMap::new();
    for worker in workers {
        // A worker that panicked lost only its own tally; the phase reports what the others saw.
        if let Ok(tallies) = worker.await {
            for (op, tally) in tallies {
                by_operation.entry(op).or_default().merge(tally);
            }
        }
    }
    let phase_issued = phase_issued.load(Ordering::Relaxed);
    issued.fetch_add(phase_issued, Ordering::Relaxed);
    PhaseResult { label: mix.label(), measured, issued: phase_issued, by_operation }
}

impl PhaseResult {
    fn calls(&self) -> u64 {
        self.by_operation.values().map(|t| t.latencies_us.len() as u64).sum()
    }

    fn calls_per_second(&self) -> f64 {
        self.calls() as f64 / self.measured.as_secs_f64().max(1e-9)
    }

    fn to_json(&self, floor: Option<f64>) -> Value {
        let mut all = Tally::default();
        let mut operations = serde_json::Map::new();
        for (op, tally) in &self.by_operation {
            if self.by_operation.len() > 1 {
                operations.insert(op.name().to_owned(), tally_json(tally, self.measured, floor));
            }
            all.merge(Tally { latencies_us: tally.latencies_us.clone(), errors: tally.errors.clone() });
        }
        let mut phase = serde_json::Map::new();
        phase.insert("operation".into(), json!(self.label));
        phase.insert("seconds".into(), json!(round(self.measured.as_secs_f64(), 6)));
        if let Value::Object(fields) = tally_json(&all, self.measured, floor) {
            phase.extend(fields);
        }
        if !operations.is_empty() {
            phase.insert("byOperation".into(), Value::Object(operations));
        }
        Value::Object(phase)
    }
}

fn tally_json(tally: &Tally, measured: Duration, floor: Option<f64>) -> Value {
    let rate = tally.latencies_us.len() as f64 / measured.as_secs_f64().max(1e-9);
    let latency = Percentiles::of(tally.latencies_us.clone());
    let mut fields = serde_json::Map::new();
    fields.insert("calls".into(), json!(tally.latencies_us.len()));
    fields.insert("callsPerSecond".into(), json!(round(rate, 1)));
    if let Some(floor) = floor.filter(|f| *f > 0.0) {
        fields.insert("ratioToFloor".into(), json!(round(rate / floor, 3)));
    }
    fields.insert("latencyMs".into(), latency.to_json());
    fields.insert("errors".into(), json!(tally.errors));
    Value::Object(fields)
}

/// Latency percentiles, nearest rank.
#[derive(Debug, PartialEq)]
struct Percentiles {
    p50: u32,
    p90: u32,
    p99: u32,
    p999: u32,
    max: u32,
}

impl Percentiles {
    fn of(mut micros: Vec<u32>) -> Percentiles {
        micros.sort_unstable();
        let rank = |q: f64| -> u32 {
            if micros.is_empty() {
                return 0;
            }
            let index = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[index]
        };
        Percentiles {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            p999: rank(0.999),
            max: micros.last().copied().unwrap_or(0),
        }
    }

    fn to_json(&self) -> Value {
        let ms = |us: u32| round(f64::from(us) / 1000.0, 3);
        json!({ "p50": ms(self.p50), "p90": ms(self.p90), "p99": ms(self.p99), "p999": ms(self.p999), "max": ms(self.max) })
    }
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

enum Server {
    External(String),
    Started(StartedServer),
}

impl Server {
    fn endpoint(&self) -> &str {
        match self {
            Server::External(endpoint) => endpoint,
            Server::Started(started) => &started.endpoint,
        }
    }

    fn report(&self, audited_calls: u64) -> Value {
        match self {
            Server::External(_) => json!({ "startedByBench": false, "auditedCalls": audited_calls }),
            Server::Started(started) => {
                let memory = started.memory();
                json!({
                    "startedByBench": true,
                    "pid": started.child.id(),
                    "store": started.store_label(),
                    "startToServingMs": round(started.ready.as_secs_f64() * 1000.0, 1),
                    "auditedCalls": audited_calls,
                    "rssBytes": memory.map(|m| m.rss),
                    "peakRssBytes": memory.map(|m| m.peak),
                })
            }
        }
    }

    fn stop(self) {
        if let Server::Started(started) = self {
            started.stop();
        }
    }
}

/// `kmsim serve` in a child process.
struct StartedServer {
    child: Child,
    endpoint: String,
    data_dir: Option<PathBuf>,
    /// A data dir bench made, removed when it stops.
    temporary: bool,
    /// From spawning the process to its first successful health check.
    ready: Duration,
}

#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    peak: u64,
}

impl StartedServer {
    async fn start(data_dir: Option<PathBuf>, in_memory: bool) -> Result<StartedServer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the kmsim executable: {e}"))?;
        let (data_dir, temporary) = match (data_dir, in_memory) {
            (_, true) => (None, false),
            (Some(dir), false) => (Some(dir), false),
            (None, false) => {
                let dir = std::env::temp_dir().join(format!("kmsim-bench-{}", uuid::Uuid::new_v4().simple()));
                (Some(dir), true)
            }
        };
        let mut command = Command::new(exe);
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        match &data_dir {
            Some(dir) => command.arg("--data-dir").arg(dir),
            None => command.arg("--in-memory"),
        };
        // The bench's own environment must not redirect the server it measures.
        for var in ["KMSIM_LISTEN", "KMSIM_DATA_DIR", "KMSIM_SEED", "KMSIM_AUTH", "KMSIM_METRICS_LISTEN"] {
            command.env_remove(var);
        }
        command.env("RUST_LOG", "error").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let spawned = Instant::now();
        let mut child = command.spawn().map_err(|e| format!("cannot start kmsim serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("kmsim serve has no stdout")?;
        let first_line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading kmsim serve's first line: {e}"))?;
        let Some(addr) = first_line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("kmsim serve did not start (its first line was {first_line:?})"));
        };
        let endpoint = format!("http://{addr}");
        let mut server = StartedServer { child, endpoint, data_dir, temporary, ready: Duration::ZERO };
        let channel = connect(&server.endpoint, 1).await?.remove(0);
        HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map_err(|s| format!("the started server is not serving: {}", s.message()))?;
        server.ready = spawned.elapsed();
        Ok(server)
    }

    fn store_label(&self) -> String {
        match &self.data_dir {
            Some(dir) if self.temporary => format!("durable, temporary data dir {}", dir.display()),
            Some(dir) => format!("durable, data dir {}", dir.display()),
            None => "in memory".to_owned(),
        }
    }

    /// The server's resident set now and at its peak, from `/proc` (Linux only).
    fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib = |field: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(field))?;
            line[field.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * 1024)
        };
        Some(Memory { rss: kib("VmRSS:")?, peak: kib("VmHWM:")? })
    }

    /// Stops the server as a user would (SIGTERM, so it flushes and closes its store) and removes a temporary
    /// data dir.
    fn stop(mut self) {
        #[cfg(unix)]
        {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            let pid = self.child.id() as libc::pid_t;
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        #[cfg(not(unix))]
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let (true, Some(dir)) = (self.temporary, &self.data_dir) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn render_table(report: &Value) -> String {
    let settings = &report["settings"];
    let mut out = String::new();
    let measure = match (settings["measure"]["calls"].as_u64(), settings["measure"]["seconds"].as_f64()) {
        (Some(calls), _) => format!("{calls} calls"),
        (None, Some(seconds)) => format!("{seconds} s"),
        _ => String::new(),
    };
    out.push_str(&format!(
        "kmsim bench: {} connections × {} calls in flight, {}-byte payloads; each phase {} after {} s of warm-up\n",
        settings["connections"], settings["concurrency"], settings["payloadBytes"], measure, settings["warmUpSeconds"]
    ));
    let server = &report["server"];
    if server["startedByBench"] == json!(true) {
        out.push_str(&format!(
            "server: started by bench (pid {}), {}; serving {} ms after spawn\n",
            server["pid"],
            server["store"].as_str().unwrap_or_default(),
            server["startToServingMs"]
        ));
    } else {
        out.push_str(&format!("server: {}\n", settings["endpoint"].as_str().unwrap_or_default()));
    }
    out.push('\n');
    let header = ["phase", "calls", "calls/s", "÷ floor", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    let row = |label: String, phase: &Value| -> Vec<String> {
        let latency = &phase["latencyMs"];
        let errors = phase["errors"].as_object().map_or_else(String::new, |errors| {
            errors.iter().map(|(code, n)| format!("{code}×{n}")).collect::<Vec<_>>().join(" ")
        });
        vec![
            label,
            phase["calls"].to_string(),
            format!("{:.0}", phase["callsPerSecond"].as_f64().unwrap_or(0.0)),
            phase["ratioToFloor"].as_f64().map_or_else(|| "1".to_owned(), |r| format!("{r:.2}")),
            latency["p50"].to_string(),
            latency["p90"].to_string(),
            latency["p99"].to_string(),
            latency["p999"].to_string(),
            if errors.is_empty() { "-".to_owned() } else { errors },
        ]
    };
    rows.push(row("floor: health check, before".into(), &report["floor"]["before"]));
    for phase in report["phases"].as_array().into_iter().flatten() {
        rows.push(row(phase["operation"].as_str().unwrap_or_default().to_owned(), phase));
        for (op, part) in phase["byOperation"].as_object().into_iter().flatten() {
            rows.push(row(format!("  {op}"), part));
        }
    }
    rows.push(row("floor: health check, after".into(), &report["floor"]["after"]));
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let pad = widths[c] - cell.chars().count();
                // Text left, numbers right.
                if c == 0 || c == header.len() - 1 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\nfloor: {:.0} calls/s (the mean of before and after)\n",
        report["floor"]["callsPerSecond"].as_f64().unwrap_or(0.0)
    ));
    for (phase, name, api) in [
        ("openapi-encrypt", "openapiEncryptToGrpcEncrypt", "Alibaba's OpenAPI"),
        ("aws-encrypt", "awsEncryptToGrpcEncrypt", "the AWS API"),
        ("instance-encrypt", "instanceEncryptToGrpcEncrypt", "the KMS instance API, RSA-signed"),
    ] {
        if let Some(ratio) = report["frontEnds"][name].as_f64() {
            out.push_str(&format!("{phase} ÷ encrypt: {ratio} (Encrypt through {api}, as a share of gRPC)\n"));
        }
    }
    let rsa = &report["instanceApi"];
    if let (Some(verify), Some(sign)) = (rsa["verifyMicrosPerCall"].as_f64(), rsa["signMicrosPerCall"].as_f64()) {
        out.push_str(&format!(
            "instance API signature ({}): {verify} µs to verify per call (the server), {sign} µs to sign (the client)\n",
            rsa["signature"].as_str().unwrap_or_default()
        ));
    }
    if server["startedByBench"] == json!(true) {
        let mb = |v: &Value| v.as_u64().map_or_else(|| "unknown".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
        out.push_str(&format!(
            "server memory: {} resident at the end, {} at its peak, after {} audited calls\n",
            mb(&server["rssBytes"]),
            mb(&server["peakRssBytes"]),
            server["auditedCalls"]
        ));
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=1000).rev().collect());
        assert_eq!(p, Percentiles { p50: 500, p90: 900, p99: 990, p999: 999, max: 1000 });
        assert_eq!(Percentiles::of(vec![7]), Percentiles { p50: 7, p90: 7, p99: 7, p999: 7, max: 7 });
        assert_eq!(Percentiles::of(Vec::new()).max, 0);
    }

    #[test]
    fn mixes_parse_and_schedule_by_weight() {
        let mix = parse_mix("encrypt=3, describe-key").unwrap();
        assert_eq!(mix, Mix(vec![(Operation::Encrypt, 3), (Operation::DescribeKey, 1)]));
        let schedule = mix.schedule(0);
        assert_eq!(schedule.iter().filter(|&&op| op == Operation::Encrypt).count(), 3);
        assert_eq!(schedule.len(), 4);
        assert_ne!(mix.schedule(1), schedule, "workers start at different places");
        assert!(parse_mix("encrypt=0").unwrap_err().contains("weights go from 1"));
        assert!(parse_mix("health").unwrap_err().contains("not an operation"));
        assert!(parse_mix("encrypt,encrypt=2").unwrap_err().contains("twice"));
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn errors_count_under_the_kms_code() {
        let mut status = tonic::Status::failed_precondition("disabled");
        assert_eq!(error_code(&status), "grpc:FailedPrecondition");
        status.metadata_mut().insert(ERROR_CODE_HEADER, "Rejected.Disabled".parse().unwrap());
        assert_eq!(error_code(&status), "Rejected.Disabled");
    }
}
