//! Client subcommands: each builds a request, calls the server, and renders
//! the answer. Errors print as `Code (HTTP): message` and exit non-zero.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tower::Layer;
use tower::util::{Either, MapErr};

use super::access::{
    AapCommand, AccessKeyCommand, ClientKeyCommand, PolicyCommand, aap, access_key, client_key, policy, read_text,
    whoami,
};
use super::aliases::{AliasCommand, TagCommand, alias, tag};
use super::audit::{AuditCommand, audit};
use super::events::{EventsCommand, events, key_history};
use super::instances::{FaultCommand, InstanceCommand, MetricsArgs, SyncCommand, fault, instance, metrics, sync};
use super::output::{OutputFormat, finish_with, print_error, print_line, render, select};
use super::secrets::{SecretCommand, secret};
use super::seed::{SeedCommand, seed};
use crate::credentials::Credentials;
use crate::frontends::grpc::headers::{ERROR_CODE as ERROR_CODE_HEADER, HTTP_STATUS as HTTP_STATUS_HEADER};
use crate::frontends::grpc::signing::{BoxError, SigningLayer, SigningService};
use crate::proto as pb;
use crate::proto::key_management_service_client::KeyManagementServiceClient;
use crate::proto::simulation_service_client::SimulationServiceClient;

#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server to talk to.
    #[arg(long, global = true, env = "KMSIM_ENDPOINT", default_value = "http://127.0.0.1:9595")]
    endpoint: String,
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub(super) output: OutputFormat,
    /// Print just one field of the result, found by a dotted path into its `--output json` form (`keyId`,
    /// `keys.0.keyId`): a string raw, anything else as compact JSON, on one line. A path that is not there is an
    /// error (exit 1). For scripts: `KEY=$(kmsim key create --query keyId)`.
    #[arg(long = "query", id = "result_query", value_name = "PATH", global = true)]
    pub(super) result_query: Option<String>,
    /// The AccessKey (or ClientKey) id to call as, sent as `x-kms-access-key-id`. With a secret, every call is
    /// signed; without one it is only named (enough when the server runs with --auth off).
    #[arg(long = "access-key-id", global = true, env = "KMSIM_ACCESS_KEY_ID")]
    caller_access_key_id: Option<String>,
    /// The secret of --access-key-id, to sign calls with. Prefer the environment or --credentials-file to
    /// keep it out of shell history.
    #[arg(
        long,
        global = true,
        env = "KMSIM_ACCESS_KEY_SECRET",
        hide_env_values = true,
        requires = "caller_access_key_id"
    )]
    access_key_secret: Option<String>,
    /// A credentials file, `{"AccessKeyId": "...", "AccessKeySecret": "..."}` (e.g. the server's
    /// --admin-key-file), to sign calls with.
    #[arg(long, global = true, env = "KMSIM_CREDENTIALS_FILE", conflicts_with = "caller_access_key_id")]
    credentials_file: Option<PathBuf>,
    /// For an https:// endpoint: the PEM CA that issued the server's certificate (default: none trusted).
    #[arg(long, global = true, env = "KMSIM_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// For mutual TLS: this client's PEM certificate; needs --tls-key.
    #[arg(long, global = true, env = "KMSIM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, global = true, env = "KMSIM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Region to work in, sent as `x-kms-region` (default: the server's --region).
    #[arg(long, global = true, env = "KMSIM_REGION")]
    region: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Manage keys.
    Key {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Encrypt up to 6 KiB with a key; prints the ciphertext blob in base64.
    #[command(after_help = "Examples:\n  kmsim encrypt --key-id alias/app --plaintext 'hello'\n  \
                            kmsim encrypt --key-id alias/app --plaintext-file secret.bin --context app=billing")]
    Encrypt {
        #[command(flatten)]
        conn: Connection,
        /// Key id, ARN or alias/NAME.
        #[arg(long)]
        key_id: String,
        #[command(flatten)]
        input: PlaintextInput,
        /// Encryption context entry KEY=VALUE; repeat for more.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
    },
    /// Decrypt a ciphertext blob, given in base64 or as a file of raw bytes.
    #[command(after_help = "Examples:\n  kmsim decrypt --ciphertext-blob \"$BLOB\" --context app=billing\n  \
                            kmsim decrypt --ciphertext-blob-file secret.enc")]
    Decrypt {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        blob: CiphertextInput,
        /// Encryption context entry KEY=VALUE, as given to encrypt.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
    },
    /// Decrypt a blob and encrypt its plaintext under another key (or the same key's new primary version) inside
    /// KMS, without the plaintext ever leaving it; prints the new blob in base64.
    #[command(
        after_help = "Example:\n  kmsim re-encrypt --ciphertext-blob \"$BLOB\" --source-context app=billing \\\n    \
                            --destination-key-id alias/payments-2026 --destination-context app=billing"
    )]
    ReEncrypt {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        blob: CiphertextInput,
        /// Encryption context entry KEY=VALUE the blob was made with; repeat for more.
        #[arg(long = "source-context", value_parser = parse_pair)]
        source_context: Vec<(String, String)>,
        /// The key to encrypt under: id, ARN or alias/NAME.
        #[arg(long)]
        destination_key_id: String,
        /// Encryption context entry KEY=VALUE for the new blob; repeat for more.
        #[arg(long = "destination-context", value_parser = parse_pair)]
        destination_context: Vec<(String, String)>,
    },
    /// Random bytes from the KMS (GenerateRandom); prints them in base64.
    #[command(
        after_help = "Examples:\n  kmsim random --length 32\n  kmsim random --length 16 --query random | base64 -d > iv.bin"
    )]
    Random {
        #[command(flatten)]
        conn: Connection,
        /// How many bytes: 1 to 1024.
        #[arg(long)]
        length: i32,
    },
    /// Sign a digest (or a message, hashed by the server) with an asymmetric key; prints the signature in base64.
    #[command(
        after_help = "Examples:\n  kmsim sign --key-id alias/signer --algorithm ECDSA_SHA_256 --message-file contract.pdf\n  \
                            kmsim sign --key-id alias/signer --algorithm RSA_PSS_SHA_256 \\\n    \
                            --digest-base64 \"$(openssl dgst -sha256 -binary contract.pdf | base64)\""
    )]
    Sign {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        key: KeyVersionArgs,
        /// RSA_PSS_SHA_256, RSA_PKCS1_SHA_256 (and _384, _512), ECDSA_SHA_256, ECDSA_SHA_384 or SM2DSA.
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        input: SignInput,
    },
    /// Verify a signature; prints `valid true|false`.
    #[command(after_help = "Example:\n  kmsim verify --key-id alias/signer --algorithm ECDSA_SHA_256 \\\n    \
                            --message-file contract.pdf --signature \"$SIG\"")]
    Verify {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        key: KeyVersionArgs,
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        input: SignInput,
        /// The signature in base64, or `-` to read base64 text from stdin.
        #[arg(long, required_unless_present = "signature_file")]
        signature: Option<String>,
        /// Read the signature's raw bytes from a file, or `-` for stdin.
        #[arg(long, conflicts_with = "signature")]
        signature_file: Option<PathBuf>,
    },
    /// Print an asymmetric key's public key (PEM, SubjectPublicKeyInfo).
    #[command(after_help = "Example:\n  kmsim public-key --key-id alias/signer > signer.pem")]
    PublicKey {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        key: KeyVersionArgs,
    },
    /// Compute an HMAC with an HMAC key; prints the MAC in base64.
    #[command(
        after_help = "Example:\n  kmsim mac --key-id alias/webhooks --algorithm HMAC_SHA_256 --message-file body.json"
    )]
    Mac {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        key_id: String,
        /// HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512, matching the key spec.
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        message: MessageInput,
    },
    /// Verify an HMAC; prints `valid true|false`.
    #[command(after_help = "Example:\n  kmsim verify-mac --key-id alias/webhooks --algorithm HMAC_SHA_256 \\\n    \
                            --message-file body.json --mac \"$MAC\"")]
    VerifyMac {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        message: MessageInput,
        /// The MAC in base64, or `-` to read base64 text from stdin.
        #[arg(long, required_unless_present = "mac_file")]
        mac: Option<String>,
        /// Read the MAC's raw bytes from a file, or `-` for stdin.
        #[arg(long, conflicts_with = "mac")]
        mac_file: Option<PathBuf>,
    },
    /// Encrypt with an asymmetric key's public key; prints the ciphertext in base64.
    #[command(
        after_help = "Example:\n  kmsim asym-encrypt --key-id alias/rsa --algorithm RSAES_OAEP_SHA_256 --plaintext 'hello'"
    )]
    AsymEncrypt {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        key: KeyVersionArgs,
        /// RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or SM2PKE.
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        input: PlaintextInput,
    },
    /// Decrypt with an asymmetric key's private key.
    #[command(
        after_help = "Example:\n  kmsim asym-decrypt --key-id alias/rsa --algorithm RSAES_OAEP_SHA_256 --ciphertext-blob \"$CT\""
    )]
    AsymDecrypt {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        key: KeyVersionArgs,
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        blob: CiphertextInput,
    },
    /// Import key material into an EXTERNAL key: fetches the wrapping key and token, wraps the
    /// material locally with RSA-OAEP, and imports it.
    #[command(after_help = "Example:\n  kmsim key create --origin EXTERNAL\n  \
                            head -c 32 /dev/urandom > material.bin\n  \
                            kmsim import --key-id $KEY --material-file material.bin")]
    Import {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        key_id: String,
        /// The raw material (32 bytes for Aliyun_AES_256, 16 for Aliyun_AES_128 and Aliyun_SM4), or `-` for stdin.
        #[arg(long, required_unless_present = "material_base64")]
        material_file: Option<PathBuf>,
        /// The raw material in base64.
        #[arg(long, conflicts_with = "material_file")]
        material_base64: Option<String>,
        /// RSAES_OAEP_SHA_256 (default) or RSAES_OAEP_SHA_1.
        #[arg(long, default_value = "RSAES_OAEP_SHA_256")]
        wrapping_algorithm: String,
        /// Unix seconds when the material expires; 0 for never.
        #[arg(long, default_value_t = 0)]
        expire_unix: i64,
    },
    /// Export an exportable key's material, wrapped under your RSA public key; prints it in base64.
    #[command(
        after_help = "Example:\n  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out mine.pem\n  \
                            openssl pkey -in mine.pem -pubout -out mine.pub.pem\n  \
                            kmsim export --key-id $KEY --public-key-file mine.pub.pem"
    )]
    Export {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        key: KeyVersionArgs,
        #[command(flatten)]
        wrap: WrapArgs,
    },
    /// Make data keys, or re-wrap one under your public key.
    DataKey {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: DataKeyCommand,
    },
    /// Name keys with aliases (alias/NAME): create, repoint, delete and list them.
    Alias {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AliasCommand,
    },
    /// Tag keys with KEY=VALUE pairs: add, remove and list.
    Tag {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: TagCommand,
    },
    /// Manage Secrets Manager secrets: create, read and write values, stage versions, rotate, delete and restore.
    Secret {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Read the audit trail.
    Audit {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// List and watch system events; manage the webhooks that receive them.
    Events {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Read, advance or set the simulation clock.
    Clock {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: ClockCommand,
    },
    /// Buy, list and describe KMS instances (of the region given by --region).
    Instance {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: InstanceCommand,
    },
    /// Synchronise keys of an instance to shadow instances in other regions.
    Sync {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Inject, list and clear faults: failing or slow calls, for testing clients.
    Fault {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: FaultCommand,
    },
    /// Apply a YAML seed (fixtures) to the running server, or check what applying it would do.
    Seed {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: SeedCommand,
    },
    /// Per-minute metrics of each instance and region (--region filters by region).
    #[command(after_help = "Examples:\n  kmsim metrics\n  \
                            kmsim metrics --region cn-hangzhou --instance default --since 2025-01-01T00:00:00Z\n  \
                            kmsim metrics --instance kst-hzz… --output json")]
    Metrics {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        args: MetricsArgs,
    },
    /// RAM users' AccessKey pairs: create (the secret is shown once), list, disable, enable, delete.
    AccessKey {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AccessKeyCommand,
    },
    /// Permission policies (RAM policy JSON) and their attachment to users and AAPs.
    Policy {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Application access points: an application's identity, with policies and ClientKeys.
    Aap {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AapCommand,
    },
    /// ClientKeys of application access points: credentials with a validity period.
    ClientKey {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: ClientKeyCommand,
    },
    /// Who the server takes you for (GetCallerIdentity).
    #[command(after_help = "Examples:
  kmsim whoami
  kmsim whoami --credentials-file admin.json")]
    Whoami {
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PlaintextInput {
    /// The plaintext as text.
    #[arg(long)]
    plaintext: Option<String>,
    /// Read the plaintext from a file, or `-` for stdin.
    #[arg(long)]
    plaintext_file: Option<PathBuf>,
    /// The plaintext in base64.
    #[arg(long)]
    plaintext_base64: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeyVersionArgs {
    /// Key id, ARN or alias/NAME.
    #[arg(long)]
    key_id: String,
    /// A key version id; the primary version when omitted.
    #[arg(long, default_value = "")]
    key_version_id: String,
}

/// A digest to sign (as the client computed it) or a message the server hashes.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SignInput {
    /// The digest in base64.
    #[arg(long)]
    digest_base64: Option<String>,
    /// Read the digest (raw bytes) from a file, or `-` for stdin.
    #[arg(long)]
    digest_file: Option<PathBuf>,
    /// A message (text) for the server to hash (message type RAW).
    #[arg(long)]
    message: Option<String>,
    /// Read the message from a file, or `-` for stdin (message type RAW).
    #[arg(long)]
    message_file: Option<PathBuf>,
    /// The message in base64 (message type RAW).
    #[arg(long)]
    message_base64: Option<String>,
}

/// A ciphertext blob: base64 text, or the raw bytes of a file.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct CiphertextInput {
    /// The blob in base64, or `-` to read base64 text from stdin.
    #[arg(long)]
    ciphertext_blob: Option<String>,
    /// Read the blob's raw bytes from a file, or `-` for stdin.
    #[arg(long)]
    ciphertext_blob_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct MessageInput {
    /// The message as text.
    #[arg(long)]
    message: Option<String>,
    /// Read the message from a file, or `-` for stdin.
    #[arg(long)]
    message_file: Option<PathBuf>,
    /// The message in base64.
    #[arg(long)]
    message_base64: Option<String>,
}

/// The caller's public key that exported material is wrapped under.
#[derive(Debug, Args)]
pub struct WrapArgs {
    /// Your public key, PEM or DER SubjectPublicKeyInfo.
    #[arg(long)]
    public_key_file: PathBuf,
    /// RSA_AES_KEY_WRAP_SHA_256 (any material), RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, or SM2PKE (EC_SM2 keys).
    #[arg(long, default_value = "RSA_AES_KEY_WRAP_SHA_256")]
    wrapping_algorithm: String,
    /// RSA_2048, RSA_3072, RSA_4096 or EC_SM2: what the public key is.
    #[arg(long, default_value = "RSA_2048")]
    wrapping_key_spec: String,
}

#[derive(Debug, Subcommand)]
pub enum DataKeyCommand {
    /// A new data key: its plaintext and its blob sealed under the KMS key (or, with --public-key-file,
    /// also wrapped under your public key instead of returned in plaintext).
    #[command(after_help = "Examples:\n  kmsim data-key generate --key-id alias/app --context app=billing\n  \
                            kmsim data-key generate --key-id alias/app --without-plaintext\n  \
                            kmsim data-key generate --key-id alias/app --public-key-file mine.pub.pem \\\n    \
                            --wrapping-algorithm RSAES_OAEP_SHA_256")]
    Generate {
        #[arg(long)]
        key_id: String,
        /// AES_256 (default) or AES_128.
        #[arg(long, default_value = "")]
        key_spec: String,
        /// 1 to 1024; overrides --key-spec.
        #[arg(long, default_value_t = 0)]
        number_of_bytes: i32,
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Only the sealed blob (GenerateDataKeyWithoutPlaintext).
        #[arg(long, conflicts_with = "public_key_file")]
        without_plaintext: bool,
        /// Also wrap the data key under this public key (GenerateAndExportDataKey).
        #[arg(long)]
        public_key_file: Option<PathBuf>,
        #[arg(long, default_value = "RSAES_OAEP_SHA_256")]
        wrapping_algorithm: String,
        #[arg(long, default_value = "RSA_2048")]
        wrapping_key_spec: String,
    },
    /// Re-wrap the data key inside a blob under your public key (ExportDataKey).
    #[command(
        after_help = "Example:\n  kmsim data-key export --ciphertext-blob \"$BLOB\" --public-key-file mine.pub.pem \\\n    \
                            --wrapping-algorithm RSAES_OAEP_SHA_256"
    )]
    Export {
        #[command(flatten)]
        blob: CiphertextInput,
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        #[command(flatten)]
        wrap: WrapArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key.
    #[command(after_help = "Example:\n  kmsim key create --key-spec Aliyun_SM4 --description 'payments'")]
    Create {
        /// Aliyun_AES_256 (default), Aliyun_AES_128, Aliyun_AES_192 or Aliyun_SM4.
        #[arg(long, default_value = "")]
        key_spec: String,
        /// ENCRYPT/DECRYPT (default for symmetric keys).
        #[arg(long, default_value = "")]
        key_usage: String,
        /// Aliyun_KMS (default) or EXTERNAL.
        #[arg(long, default_value = "")]
        origin: String,
        #[arg(long, default_value = "")]
        description: String,
        /// SOFTWARE (default) or HSM.
        #[arg(long, default_value = "")]
        protection_level: String,
        /// Rotate automatically every --rotation-interval.
        #[arg(long)]
        enable_automatic_rotation: bool,
        /// 7d to 365d (units d, h, m, s); default 365d.
        #[arg(long, default_value = "")]
        rotation_interval: String,
        /// Allow ExportKey to export the material (set now, never changeable).
        #[arg(long)]
        exportable: bool,
        /// Create the key in this KMS instance (of the region) instead of as a default key.
        #[arg(long, default_value = "")]
        dkms_instance_id: String,
    },
    /// Make a new primary version (manual rotation); old versions keep decrypting and verifying.
    #[command(after_help = "Example:\n  kmsim key rotate alias/payments")]
    Rotate { key_id: String },
    /// List a key's versions, oldest first.
    #[command(after_help = "Example:\n  kmsim key versions alias/payments")]
    Versions {
        key_id: String,
        #[arg(long, default_value_t = 1)]
        page_number: i32,
        #[arg(long, default_value_t = 100)]
        page_size: i32,
    },
    /// Turn automatic rotation on (--enable --interval 30d) or off (--disable).
    #[command(after_help = "Examples:\n  kmsim key rotation-policy alias/payments --enable --interval 90d\n  \
                            kmsim key rotation-policy alias/payments --disable")]
    RotationPolicy {
        key_id: String,
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// 7d to 365d (units d, h, m, s); kept, or 365d, when omitted.
        #[arg(long, default_value = "", conflicts_with = "disable")]
        interval: String,
    },
    /// Show a key's metadata.
    #[command(after_help = "Example:\n  kmsim key describe alias/payments")]
    Describe { key_id: String },
    /// Change a key's description; prints the key after.
    #[command(after_help = "Examples:\n  kmsim key update-description alias/payments --description 'payments, EU'\n  \
                            kmsim key update-description alias/payments --description ''   # clears it")]
    UpdateDescription {
        key_id: String,
        /// The new description; an empty one clears it.
        #[arg(long)]
        description: String,
    },
    /// Protect a key from deletion (--enable) or lift the protection (--disable); scheduling a protected key's
    /// deletion is refused. Prints the key after.
    #[command(
        after_help = "Examples:\n  kmsim key deletion-protection alias/payments --enable --description 'ledger key'\n  \
                            kmsim key deletion-protection alias/payments --disable"
    )]
    DeletionProtection {
        /// The key: id, ARN or alias/NAME.
        key_id: String,
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// Why the key is protected.
        #[arg(long, default_value = "", conflicts_with = "disable")]
        description: String,
    },
    /// Show one version of a key.
    #[command(
        after_help = "Example:\n  kmsim key describe-version alias/payments $(kmsim key versions alias/payments \\\n    \
                            --query keyVersions.0.keyVersionId)"
    )]
    DescribeVersion { key_id: String, key_version_id: String },
    /// Fetch the public key (PEM) and import token for wrapping material to import into an EXTERNAL key;
    /// `kmsim import` does the whole import in one go.
    #[command(after_help = "Example:\n  kmsim key import-params $KEY --query publicKey > wrapping.pem\n  \
                            TOKEN=$(kmsim key import-params $KEY --query importToken)")]
    ImportParams {
        key_id: String,
        /// RSAES_OAEP_SHA_256 (default) or RSAES_OAEP_SHA_1.
        #[arg(long, default_value = "RSAES_OAEP_SHA_256")]
        wrapping_algorithm: String,
        /// RSA_2048.
        #[arg(long, default_value = "RSA_2048")]
        wrapping_key_spec: String,
    },
    /// List keys, oldest first.
    #[command(after_help = "Example:\n  kmsim key list --page-size 50")]
    List {
        #[arg(long, default_value_t = 1)]
        page_number: i32,
        #[arg(long, default_value_t = 10)]
        page_size: i32,
    },
    /// Enable a key.
    #[command(after_help = "Example:\n  kmsim key enable alias/payments")]
    Enable { key_id: String },
    /// Disable a key: cryptographic calls then fail with Rejected.Disabled.
    #[command(after_help = "Example:\n  kmsim key disable alias/payments")]
    Disable { key_id: String },
    /// Schedule a key for deletion after 7 to 366 days.
    #[command(after_help = "Example:\n  kmsim key schedule-deletion alias/payments --pending-window-in-days 7")]
    ScheduleDeletion {
        key_id: String,
        #[arg(long, default_value_t = 30)]
        pending_window_in_days: i32,
    },
    /// Destroy an EXTERNAL key's imported material; the key returns to PendingImport.
    #[command(after_help = "Example:\n  kmsim key delete-material $KEY")]
    DeleteMaterial { key_id: String },
    /// Cancel a scheduled deletion.
    #[command(after_help = "Example:\n  kmsim key cancel-deletion alias/payments")]
    CancelDeletion { key_id: String },
    /// The key's life as a timeline: creation, rotations, state changes, scheduled and actual deletion.
    #[command(
        after_help = "Example:\n  kmsim key history alias/payments\n  kmsim key history $KEY_ID   # also after deletion"
    )]
    History { key_id: String },
    /// Show a key's policy (the default one if none was set).
    #[command(after_help = "Example:\n  kmsim key get-policy alias/payments")]
    GetPolicy { key_id: String },
    /// Set a key's policy from a RAM policy JSON file (`-` reads stdin); statements name principals.
    #[command(after_help = "Example:\n  kmsim key set-policy alias/payments --policy-file key-policy.json")]
    SetPolicy {
        key_id: String,
        #[arg(long)]
        policy_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// Show the simulated time and its offset from real time.
    #[command(after_help = "Example:\n  kmsim clock show")]
    Show,
    /// Move the clock forward, e.g. `30d`, `12h`, `1d12h`.
    #[command(after_help = "Example:\n  kmsim clock advance 8d")]
    Advance {
        #[arg(value_parser = crate::clock::parse_duration)]
        by: std::time::Duration,
    },
    /// Move the clock forward to an instant (RFC 3339); earlier than now is refused.
    #[command(after_help = "Example:\n  kmsim clock set 2027-01-01T00:00:00Z")]
    Set {
        #[arg(value_parser = super::parse_instant)]
        time: crate::clock::SimTime,
    },
}

/// A failure the CLI reports: a server error, or a local one (connection, input).
pub(super) struct Failure(pub(super) String);

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let header = |name| status.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match (header(ERROR_CODE_HEADER), header(HTTP_STATUS_HEADER)) {
            (Some(code), Some(http)) => Failure(format!("{code} ({http}): {}", status.message())),
            _ => Failure(format!("{:?}: {}", status.code(), status.message())),
        }
    }
}

impl ClientCommand {
    fn connection(&self) -> &Connection {
        match self {
            ClientCommand::Key { conn, .. }
            | ClientCommand::Encrypt { conn, .. }
            | ClientCommand::Decrypt { conn, .. }
            | ClientCommand::Audit { conn, .. }
            | ClientCommand::Clock { conn, .. }
            | ClientCommand::Events { conn, .. }
            | ClientCommand::Instance { conn, .. }
            | ClientCommand::Sync { conn, .. }
            | ClientCommand::Fault { conn, .. }
            | ClientCommand::Metrics { conn, .. }
            | ClientCommand::Sign { conn, .. }
            | ClientCommand::Verify { conn, .. }
            | ClientCommand::PublicKey { conn, .. }
            | ClientCommand::Mac { conn, .. }
            | ClientCommand::VerifyMac { conn, .. }
            | ClientCommand::AsymEncrypt { conn, .. }
            | ClientCommand::AsymDecrypt { conn, .. }
            | ClientCommand::Import { conn, .. }
            | ClientCommand::Export { conn, .. }
            | ClientCommand::DataKey { conn, .. }
            | ClientCommand::ReEncrypt { conn, .. }
            | ClientCommand::Random { conn, .. }
            | ClientCommand::Alias { conn, .. }
            | ClientCommand::Tag { conn, .. }
            | ClientCommand::Seed { conn, .. }
            | ClientCommand::Secret { conn, .. }
            | ClientCommand::AccessKey { conn, .. }
            | ClientCommand::Policy { conn, .. }
            | ClientCommand::Aap { conn, .. }
            | ClientCommand::ClientKey { conn, .. }
            | ClientCommand::Whoami { conn } => conn,
        }
    }

    /// Whether the command prints its output as it goes (or writes it to a file) instead of returning a result.
    fn streams(&self) -> bool {
        matches!(
            self,
            ClientCommand::Audit {
                command: AuditCommand::Tail { .. } | AuditCommand::Export { out_dir: None, .. },
                ..
            } | ClientCommand::Events { command: EventsCommand::Watch { .. }, .. }
                | ClientCommand::Secret { command: SecretCommand::Get { value_only: true, .. }, .. }
        )
    }

    pub async fn run(self) -> ExitCode {
        let mut conn = self.connection().clone();
        // The path points into the JSON form, which some commands shape differently from their table.
        if conn.result_query.is_some() {
            conn.output = OutputFormat::Json;
            // Refused before it runs: an export or a stream would be done, or half done, before the error.
            if self.streams() {
                print_error("--query: this command streams its output and has no result to pick a field from");
                return ExitCode::FAILURE;
            }
        }
        let result = match self {
            ClientCommand::Key { command, .. } => key(&conn, command).await,
            ClientCommand::Events { command, .. } => events(&conn, command).await,
            ClientCommand::Instance { command, .. } => instance(&conn, command).await,
            ClientCommand::Sync { command, .. } => sync(&conn, command).await,
            ClientCommand::Fault { command, .. } => fault(&conn, command).await,
            ClientCommand::Metrics { args, .. } => metrics(&conn, args).await,
            ClientCommand::Encrypt { key_id, input, context, .. } => encrypt(&conn, key_id, input, context).await,
            ClientCommand::Decrypt { blob, context, .. } => decrypt(&conn, blob, context).await,
            ClientCommand::ReEncrypt { blob, source_context, destination_key_id, destination_context, .. } => {
                re_encrypt(&conn, blob, source_context, destination_key_id, destination_context).await
            }
            ClientCommand::Random { length, .. } => random(&conn, length).await,
            ClientCommand::Alias { command, .. } => alias(&conn, command).await,
            ClientCommand::Tag { command, .. } => tag(&conn, command).await,
            ClientCommand::Seed { command, .. } => seed(&conn, command).await,
            ClientCommand::Audit { command, .. } => audit(&conn, command).await,
            ClientCommand::Clock { command, .. } => clock(&conn, command).await,
            ClientCommand::Sign { key, algorithm, input, .. } => sign(&conn, key, algorithm, input).await,
            ClientCommand::Verify { key, algorithm, input, signature, signature_file, .. } => {
                verify(&conn, key, algorithm, input, signature, signature_file).await
            }
            ClientCommand::PublicKey { key, .. } => public_key(&conn, key).await,
            ClientCommand::Mac { key_id, algorithm, message, .. } => mac(&conn, key_id, algorithm, message, None).await,
            ClientCommand::VerifyMac { key_id, algorithm, message, mac: value, mac_file, .. } => {
                match blob_from(value, mac_file, "--mac") {
                    Ok(expected) => mac(&conn, key_id, algorithm, message, Some(expected)).await,
                    Err(failure) => Err(failure),
                }
            }
            ClientCommand::AsymEncrypt { key, algorithm, input, .. } => {
                asym_encrypt(&conn, key, algorithm, input).await
            }
            ClientCommand::Import {
                key_id, material_file, material_base64, wrapping_algorithm, expire_unix, ..
            } => {
                let material = bytes_from(None, material_file, material_base64, "--material-base64");
                match material {
                    Ok(material) => import(&conn, key_id, material, wrapping_algorithm, expire_unix).await,
                    Err(failure) => Err(failure),
                }
            }
            ClientCommand::Export { key, wrap, .. } => export_key(&conn, key, wrap).await,
            ClientCommand::DataKey { command, .. } => data_key(&conn, command).await,
            ClientCommand::Secret { command, .. } => secret(&conn, command).await,
            ClientCommand::AccessKey { command, .. } => access_key(&conn, command).await,
            ClientCommand::Policy { command, .. } => policy(&conn, command).await,
            ClientCommand::Aap { command, .. } => aap(&conn, command).await,
            ClientCommand::ClientKey { command, .. } => client_key(&conn, command).await,
            ClientCommand::Whoami { .. } => whoami(&conn).await,
            ClientCommand::AsymDecrypt { key, algorithm, blob, .. } => asym_decrypt(&conn, key, algorithm, blob).await,
        };
        let result = match (result, &conn.result_query) {
            (Ok(Value::Null), Some(_)) => {
                Err(Failure("--query: this command streams its output and has no result to pick from".into()))
            }
            (Ok(value), Some(path)) => select(&value, path).map(Value::String).map_err(Failure),
            (result, _) => result,
        };
        match result {
            // Commands that stream print as they go and return nothing more.
            Ok(Value::Null) => ExitCode::SUCCESS,
            Ok(Value::String(text)) if conn.result_query.is_some() => finish_with(print_line(&text)),
            Ok(value) => finish_with(print_line(&render(&value, conn.output))),
            Err(Failure(message)) => {
                print_error(&message);
                ExitCode::FAILURE
            }
        }
    }
}

/// A description cut to what fits a table column; the whole of it is in `key describe` and the JSON.
fn at_a_glance(description: &str) -> String {
    const WIDTH: usize = 32;
    let first_line = description.lines().next().unwrap_or_default();
    if first_line.chars().count() <= WIDTH && first_line.len() == description.len() {
        return description.to_owned();
    }
    let cut: String = first_line.chars().take(WIDTH - 1).collect();
    format!("{cut}…")
}

/// Why `url` could not be reached, in words a user can act on: tonic's own
/// message is only "transport error", with the reason in its sources.
fn cannot_reach(url: &str, error: &tonic::transport::Error) -> Failure {
    let mut reasons = Vec::new();
    let mut refused = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        let reason = cause.to_string();
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
        source = cause.source();
    }
    let address = url.split_once("://").map_or(url, |(_, rest)| rest).trim_end_matches('/');
    if refused {
        return Failure(format!(
            "nothing is listening on {address}: start a server with `kmsim serve` (it prints the address it \
             listens on), or point --endpoint or KMSIM_ENDPOINT at a running one"
        ));
    }
    let reasons = if reasons.is_empty() { error.to_string() } else { reasons.join(": ") };
    Failure(format!("cannot reach {url}: {reasons}"))
}

/// What the CLI's clients talk through: the channel, signing each call when the CLI has a secret.
pub(super) type Transport = Either<SigningService<Channel>, MapErr<Channel, fn(tonic::transport::Error) -> BoxError>>;

impl Connection {
    pub(super) async fn channel(&self) -> Result<Transport, Failure> {
        let url = self.endpoint_url();
        let mut endpoint = Channel::from_shared(url.clone())
            .map_err(|e| Failure(format!("invalid endpoint {:?}: {e}", self.endpoint)))?
            .user_agent(format!("kmsim-cli/{}", env!("CARGO_PKG_VERSION")))
            .map_err(|e| Failure(e.to_string()))?;
        if url.starts_with("https://") {
            endpoint = endpoint.tls_config(self.tls_config()?).map_err(|e| Failure(format!("TLS: {e}")))?;
        }
        let channel = endpoint.connect().await.map_err(|e| cannot_reach(&url, &e))?;
        Ok(match self.credentials()? {
            Some(credentials) => Either::Left(SigningLayer::new(credentials).layer(channel)),
            None => Either::Right(MapErr::new(channel, BoxError::from as fn(_) -> _)),
        })
    }

    /// The endpoint as a URL. `kmsim serve` prints a bare `IP:PORT`, which is what people paste, so one without
    /// a scheme gets `https://` when TLS files are given and `http://` otherwise.
    fn endpoint_url(&self) -> String {
        let endpoint = self.endpoint.trim();
        if endpoint.contains("://") {
            return endpoint.to_owned();
        }
        let tls = self.tls_ca.is_some() || self.tls_cert.is_some();
        format!("{}://{endpoint}", if tls { "https" } else { "http" })
    }

    fn credentials(&self) -> Result<Option<Credentials>, Failure> {
        if let Some(path) = &self.credentials_file {
            return Credentials::read_file(path).map(Some).map_err(|e| Failure(format!("--credentials-file {e}")));
        }
        Ok(match (&self.caller_access_key_id, &self.access_key_secret) {
            (Some(id), Some(secret)) => Some(Credentials::new(id.clone(), secret.clone())),
            _ => None,
        })
    }

    fn tls_config(&self) -> Result<ClientTlsConfig, Failure> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| Failure(format!("{flag} {}: {e}", path.display())))
        };
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &self.tls_ca {
            config = config.ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?));
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config = config.identity(Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?));
        }
        Ok(config)
    }

    pub(super) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        // A signed call gets its id from the signer; this names the caller of an unsigned one.
        let named = if self.access_key_secret.is_none() { self.caller_access_key_id.as_deref() } else { None };
        if let Some(id) = named.and_then(|id| id.parse().ok()) {
            request.metadata_mut().insert(crate::frontends::grpc::headers::ACCESS_KEY_ID, id);
        }
        if let Some(region) = self.region.as_deref().and_then(|region| region.parse().ok()) {
            request.metadata_mut().insert(crate::frontends::grpc::headers::REGION, region);
        }
        request
    }

    /// The region given by --region, if any.
    pub(super) fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    pub(super) async fn kms(&self) -> Result<KeyManagementServiceClient<Transport>, Failure> {
        Ok(KeyManagementServiceClient::new(self.channel().await?))
    }
}

async fn key(conn: &Connection, command: KeyCommand) -> Result<Value, Failure> {
    let mut kms = conn.kms().await?;
    let key_id_only = |key_id: &str| json!({ "keyId": key_id });
    Ok(match command {
        KeyCommand::Create {
            key_spec,
            key_usage,
            origin,
            description,
            protection_level,
            enable_automatic_rotation,
            rotation_interval,
            exportable,
            dkms_instance_id,
        } => {
            let request = pb::CreateKeyRequest {
                key_spec,
                key_usage,
                origin,
                description,
                protection_level,
                enable_automatic_rotation,
                rotation_interval,
                exportable,
                dkms_instance_id,
            };
            let response = kms.create_key(conn.request(request)).await?.into_inner();
            key_metadata_json(response.key_metadata.unwrap_or_default())
        }
        KeyCommand::Describe { key_id } => {
            let response = kms.describe_key(conn.request(pb::DescribeKeyRequest { key_id })).await?.into_inner();
            key_metadata_json(response.key_metadata.unwrap_or_default())
        }
        KeyCommand::List { page_number, page_size } => {
            let response =
                kms.list_keys(conn.request(pb::ListKeysRequest { page_number, page_size })).await?.into_inner();
            let keys = response.keys.iter().map(|k| match conn.output {
                // The ARN is the region, account and id over again: too wide for a table that should fit a terminal.
                OutputFormat::Table => json!({
                    "keyId": k.key_id,
                    "keyState": k.key_state,
                    "keySpec": k.key_spec,
                    "keyUsage": k.key_usage,
                    "aliases": k.aliases.join(","),
                    "description": at_a_glance(&k.description),
                }),
                OutputFormat::Json => json!({
                    "keyId": k.key_id,
                    "keyArn": k.key_arn,
                    "keyState": k.key_state,
                    "keySpec": k.key_spec,
                    "keyUsage": k.key_usage,
                    "aliases": k.aliases,
                    "description": k.description,
                }),
            });
            json!({
                "totalCount": response.total_count,
                "pageNumber": response.page_number,
                "pageSize": response.page_size,
                "keys": keys.collect::<Vec<_>>(),
            })
        }
        KeyCommand::UpdateDescription { key_id, description } => {
            let request = pb::UpdateKeyDescriptionRequest { key_id: key_id.clone(), description };
            kms.update_key_description(conn.request(request)).await?;
            described(conn, &mut kms, key_id).await?
        }
        KeyCommand::DeletionProtection { key_id, enable, disable: _, description } => {
            let request = pb::SetDeletionProtectionRequest {
                protected_resource_arn: key_id.clone(),
                enable_deletion_protection: enable,
                deletion_protection_description: description,
            };
            kms.set_deletion_protection(conn.request(request)).await?;
            described(conn, &mut kms, key_id).await?
        }
        KeyCommand::DescribeVersion { key_id, key_version_id } => {
            let request = pb::DescribeKeyVersionRequest { key_id, key_version_id };
            let response = kms.describe_key_version(conn.request(request)).await?.into_inner();
            key_version_json(response.key_version.unwrap_or_default())
        }
        KeyCommand::ImportParams { key_id, wrapping_algorithm, wrapping_key_spec } => {
            let request = pb::GetParametersForImportRequest { key_id, wrapping_algorithm, wrapping_key_spec };
            let params = kms.get_parameters_for_import(conn.request(request)).await?.into_inner();
            let fields = json!({
                "keyId": params.key_id,
                "importToken": params.import_token,
                "tokenExpireTime": params.token_expire_time,
            });
            match conn.output {
                OutputFormat::Json => {
                    let mut fields = fields;
                    fields["publicKey"] = Value::String(params.public_key);
                    fields
                }
                // A PEM does not fit a table cell: it goes below the fields, ready to copy.
                OutputFormat::Table => Value::String(format!(
                    "{}\n\n{}",
                    render(&fields, OutputFormat::Table),
                    params.public_key.trim_end()
                )),
            }
        }
        KeyCommand::Enable { key_id } => {
            kms.enable_key(conn.request(pb::EnableKeyRequest { key_id: key_id.clone() })).await?;
            key_id_only(&key_id)
        }
        KeyCommand::Disable { key_id } => {
            kms.disable_key(conn.request(pb::DisableKeyRequest { key_id: key_id.clone() })).await?;
            key_id_only(&key_id)
        }
        KeyCommand::ScheduleDeletion { key_id, pending_window_in_days } => {
            let request = pb::ScheduleKeyDeletionRequest { key_id, pending_window_in_days };
            let response = kms.schedule_key_deletion(conn.request(request)).await?.into_inner();
            json!({ "keyId": response.key_id, "deleteDate": response.delete_date })
        }
        KeyCommand::Rotate { key_id } => {
            let response = kms.create_key_version(conn.request(pb::CreateKeyVersionRequest { key_id })).await?;
            key_version_json(response.into_inner().key_version.unwrap_or_default())
        }
        KeyCommand::Versions { key_id, page_number, page_size } => {
            let request = pb::ListKeyVersionsRequest { key_id, page_number, page_size };
            let response = kms.list_key_versions(conn.request(request)).await?.into_inner();
            json!({
                "totalCount": response.total_count,
                "keyVersions": response.key_versions.into_iter().map(key_version_json).collect::<Vec<_>>(),
            })
        }
        KeyCommand::RotationPolicy { key_id, enable, disable: _, interval } => {
            let request = pb::UpdateRotationPolicyRequest {
                key_id: key_id.clone(),
                enable_automatic_rotation: enable,
                rotation_interval: interval,
            };
            kms.update_rotation_policy(conn.request(request)).await?;
            described(conn, &mut kms, key_id).await?
        }
        KeyCommand::DeleteMaterial { key_id } => {
            kms.delete_key_material(conn.request(pb::DeleteKeyMaterialRequest { key_id: key_id.clone() })).await?;
            key_id_only(&key_id)
        }
        KeyCommand::CancelDeletion { key_id } => {
            kms.cancel_key_deletion(conn.request(pb::CancelKeyDeletionRequest { key_id: key_id.clone() })).await?;
            key_id_only(&key_id)
        }
        KeyCommand::History { key_id } => key_history(conn, key_id).await?,
        KeyCommand::GetPolicy { key_id } => {
            let request = pb::GetKeyPolicyRequest { key_id: key_id.clone(), policy_name: String::new() };
            let policy = kms.get_key_policy(conn.request(request)).await?.into_inner().policy;
            json!({ "keyId": key_id, "policy": serde_json::from_str::<Value>(&policy).unwrap_or(Value::String(policy)) })
        }
        KeyCommand::SetPolicy { key_id, policy_file } => {
            let policy = read_text(&policy_file)?;
            let request = pb::SetKeyPolicyRequest { key_id: key_id.clone(), policy_name: String::new(), policy };
            kms.set_key_policy(conn.request(request)).await?;
            json!({ "keyId": key_id, "policySet": true })
        }
    })
}

async fn encrypt(
    conn: &Connection,
    key_id: String,
    input: PlaintextInput,
    context: Vec<(String, String)>,
) -> Result<Value, Failure> {
    let plaintext = input.bytes()?;
    let request = pb::EncryptRequest { key_id, plaintext, encryption_context: context.into_iter().collect() };
    let response = conn.kms().await?.encrypt(conn.request(request)).await?.into_inner();
    Ok(json!({
        "ciphertextBlob": BASE64.encode(&response.ciphertext_blob),
        "keyId": response.key_id,
        "keyVersionId": response.key_version_id,
    }))
}

async fn decrypt(conn: &Connection, blob: CiphertextInput, context: Vec<(String, String)>) -> Result<Value, Failure> {
    let request = pb::DecryptRequest {
        ciphertext_blob: blob.bytes()?,
        encryption_context: context.into_iter().collect::<HashMap<_, _>>(),
    };
    let response = conn.kms().await?.decrypt(conn.request(request)).await?.into_inner();
    Ok(plaintext_json(response.plaintext, response.key_id, response.key_version_id))
}

async fn re_encrypt(
    conn: &Connection,
    blob: CiphertextInput,
    source_context: Vec<(String, String)>,
    destination_key_id: String,
    destination_context: Vec<(String, String)>,
) -> Result<Value, Failure> {
    let request = pb::ReEncryptRequest {
        ciphertext_blob: blob.bytes()?,
        source_encryption_context: source_context.into_iter().collect(),
        destination_key_id,
        destination_encryption_context: destination_context.into_iter().collect(),
    };
    let response = conn.kms().await?.re_encrypt(conn.request(request)).await?.into_inner();
    Ok(json!({
        "ciphertextBlob": BASE64.encode(&response.ciphertext_blob),
        "keyId": response.key_id,
        "keyVersionId": response.key_version_id,
        "sourceKeyId": response.source_key_id,
        "sourceKeyVersionId": response.source_key_version_id,
    }))
}

async fn random(conn: &Connection, length: i32) -> Result<Value, Failure> {
    let response = conn.kms().await?.generate_random(conn.request(pb::GenerateRandomRequest { length })).await?;
    let random = BASE64.encode(response.into_inner().random);
    Ok(match conn.output {
        // People (and `$(kmsim random …)`) want the bytes themselves.
        OutputFormat::Table => Value::String(random),
        OutputFormat::Json => json!({ "random": random }),
    })
}

async fn clock(conn: &Connection, command: ClockCommand) -> Result<Value, Failure> {
    let mut client = SimulationServiceClient::new(conn.channel().await?);
    let response = match command {
        ClockCommand::Show => client.get_clock(conn.request(pb::GetClockRequest {})).await?,
        ClockCommand::Advance { by } => {
            let advance = prost_types::Duration {
                seconds: i64::try_from(by.as_secs()).map_err(|_| Failure("duration too large".into()))?,
                nanos: 0,
            };
            client.advance_clock(conn.request(pb::AdvanceClockRequest { advance: Some(advance) })).await?
        }
        ClockCommand::Set { time } => {
            let time = prost_types::Timestamp {
                seconds: time.millis().div_euclid(1000),
                nanos: (time.millis().rem_euclid(1000) * 1_000_000) as i32,
            };
            client.set_clock(conn.request(pb::SetClockRequest { time: Some(time) })).await?
        }
    }
    .into_inner();
    let now = response.now.unwrap_or_default();
    let now = crate::clock::SimTime(now.seconds * 1000 + i64::from(now.nanos / 1_000_000));
    let offset = response.offset.unwrap_or_default();
    Ok(json!({ "now": now.to_rfc3339(), "offsetSeconds": offset.seconds }))
}

impl PlaintextInput {
    fn bytes(self) -> Result<Vec<u8>, Failure> {
        bytes_from(self.plaintext, self.plaintext_file, self.plaintext_base64, "--plaintext-base64")
    }
}

impl MessageInput {
    fn bytes(self) -> Result<Vec<u8>, Failure> {
        bytes_from(self.message, self.message_file, self.message_base64, "--message-base64")
    }
}

impl CiphertextInput {
    fn bytes(self) -> Result<Vec<u8>, Failure> {
        blob_from(self.ciphertext_blob, self.ciphertext_blob_file, "--ciphertext-blob")
    }
}

impl SignInput {
    /// (digest, message, message type) as AsymmetricSign and AsymmetricVerify take them.
    fn into_fields(self) -> Result<(Vec<u8>, Vec<u8>, String), Failure> {
        if self.message.is_some() || self.message_file.is_some() || self.message_base64.is_some() {
            let message = bytes_from(self.message, self.message_file, self.message_base64, "--message-base64")?;
            return Ok((Vec::new(), message, "RAW".into()));
        }
        let digest = bytes_from(None, self.digest_file, self.digest_base64, "--digest-base64")?;
        Ok((digest, Vec::new(), "DIGEST".into()))
    }
}

/// Input given as text, as a file (`-` for stdin), or as base64; clap makes sure exactly one is given.
fn bytes_from(
    text: Option<String>,
    file: Option<PathBuf>,
    b64: Option<String>,
    b64_flag: &str,
) -> Result<Vec<u8>, Failure> {
    match (text, file, b64) {
        (Some(text), _, _) => Ok(text.into_bytes()),
        (_, Some(path), _) => read_input(&path),
        (_, _, Some(b64)) => decode_base64(&b64, b64_flag),
        _ => Err(Failure("no input given".into())),
    }
}

fn decode_base64(text: &str, flag: &str) -> Result<Vec<u8>, Failure> {
    BASE64.decode(text.trim()).map_err(|e| Failure(format!("{flag} is not base64: {e}")))
}

/// Binary input given as base64 (`-` reads base64 text from stdin) or as a file of raw bytes (`-` for stdin).
fn blob_from(b64: Option<String>, file: Option<PathBuf>, b64_flag: &str) -> Result<Vec<u8>, Failure> {
    match (b64, file) {
        (Some(b64), _) => base64_arg(b64, b64_flag),
        (None, Some(path)) => read_input(&path),
        (None, None) => Err(Failure(format!("give {b64_flag} or {b64_flag}-file"))),
    }
}

/// A base64 argument, or `-` to read base64 text from stdin.
fn base64_arg(value: String, flag: &str) -> Result<Vec<u8>, Failure> {
    let text = if value == "-" {
        String::from_utf8(read_input(&PathBuf::from("-"))?).map_err(|_| Failure("stdin is not base64 text".into()))?
    } else {
        value
    };
    decode_base64(&text, flag)
}

async fn sign(conn: &Connection, key: KeyVersionArgs, algorithm: String, input: SignInput) -> Result<Value, Failure> {
    let (digest, message, message_type) = input.into_fields()?;
    let request = pb::AsymmetricSignRequest {
        key_id: key.key_id,
        key_version_id: key.key_version_id,
        algorithm,
        digest,
        message,
        message_type,
    };
    let response = conn.kms().await?.asymmetric_sign(conn.request(request)).await?.into_inner();
    Ok(json!({
        "signature": BASE64.encode(&response.signature),
        "keyId": response.key_id,
        "keyVersionId": response.key_version_id,
    }))
}

async fn verify(
    conn: &Connection,
    key: KeyVersionArgs,
    algorithm: String,
    input: SignInput,
    signature: Option<String>,
    signature_file: Option<PathBuf>,
) -> Result<Value, Failure> {
    let (digest, message, message_type) = input.into_fields()?;
    let request = pb::AsymmetricVerifyRequest {
        key_id: key.key_id,
        key_version_id: key.key_version_id,
        algorithm,
        digest,
        message,
        message_type,
        signature: blob_from(signature, signature_file, "--signature")?,
    };
    let response = conn.kms().await?.asymmetric_verify(conn.request(request)).await?.into_inner();
    Ok(json!({ "valid": response.valid, "keyId": response.key_id, "keyVersionId": response.key_version_id }))
}

async fn public_key(conn: &Connection, key: KeyVersionArgs) -> Result<Value, Failure> {
    let request = pb::GetPublicKeyRequest { key_id: key.key_id, key_version_id: key.key_version_id };
    let response = conn.kms().await?.get_public_key(conn.request(request)).await?.into_inner();
    Ok(match conn.output {
        // People (and `> key.pem`) want the PEM itself.
        OutputFormat::Table => Value::String(response.public_key.trim_end().to_owned()),
        OutputFormat::Json => json!({
            "publicKey": response.public_key,
            "keyId": response.key_id,
            "keyVersionId": response.key_version_id,
        }),
    })
}

/// GenerateMac, or VerifyMac when `expected` is given.
async fn mac(
    conn: &Connection,
    key_id: String,
    algorithm: String,
    message: MessageInput,
    expected: Option<Vec<u8>>,
) -> Result<Value, Failure> {
    let message = message.bytes()?;
    let mut kms = conn.kms().await?;
    Ok(match expected {
        None => {
            let request = pb::GenerateMacRequest { key_id, algorithm, message };
            let response = kms.generate_mac(conn.request(request)).await?.into_inner();
            json!({ "mac": BASE64.encode(&response.mac), "keyId": response.key_id, "keyVersionId": response.key_version_id })
        }
        Some(mac) => {
            let request = pb::VerifyMacRequest { key_id, algorithm, message, mac };
            let response = kms.verify_mac(conn.request(request)).await?.into_inner();
            json!({ "valid": response.valid, "keyId": response.key_id, "keyVersionId": response.key_version_id })
        }
    })
}

async fn asym_encrypt(
    conn: &Connection,
    key: KeyVersionArgs,
    algorithm: String,
    input: PlaintextInput,
) -> Result<Value, Failure> {
    let request = pb::AsymmetricEncryptRequest {
        key_id: key.key_id,
        key_version_id: key.key_version_id,
        algorithm,
        plaintext: input.bytes()?,
    };
    let response = conn.kms().await?.asymmetric_encrypt(conn.request(request)).await?.into_inner();
    Ok(json!({
        "ciphertextBlob": BASE64.encode(&response.ciphertext_blob),
        "keyId": response.key_id,
        "keyVersionId": response.key_version_id,
    }))
}

async fn asym_decrypt(
    conn: &Connection,
    key: KeyVersionArgs,
    algorithm: String,
    blob: CiphertextInput,
) -> Result<Value, Failure> {
    let request = pb::AsymmetricDecryptRequest {
        key_id: key.key_id,
        key_version_id: key.key_version_id,
        algorithm,
        ciphertext_blob: blob.bytes()?,
    };
    let response = conn.kms().await?.asymmetric_decrypt(conn.request(request)).await?.into_inner();
    Ok(plaintext_json(response.plaintext, response.key_id, response.key_version_id))
}

/// The plaintext in base64, and as text too when it is UTF-8.
fn plaintext_json(plaintext: Vec<u8>, key_id: String, key_version_id: String) -> Value {
    let mut value = json!({
        "plaintextBase64": BASE64.encode(&plaintext),
        "keyId": key_id,
        "keyVersionId": key_version_id,
    });
    if let Ok(text) = String::from_utf8(plaintext) {
        value["plaintext"] = Value::String(text);
    }
    value
}

async fn import(
    conn: &Connection,
    key_id: String,
    material: Vec<u8>,
    wrapping_algorithm: String,
    expire_unix: i64,
) -> Result<Value, Failure> {
    use rsa::pkcs8::DecodePublicKey;
    let mut kms = conn.kms().await?;
    let request = pb::GetParametersForImportRequest {
        key_id: key_id.clone(),
        wrapping_algorithm: wrapping_algorithm.clone(),
        wrapping_key_spec: "RSA_2048".into(),
    };
    let params = kms.get_parameters_for_import(conn.request(request)).await?.into_inner();
    let public = rsa::RsaPublicKey::from_public_key_pem(&params.public_key)
        .map_err(|e| Failure(format!("the server's wrapping key is not an RSA public key: {e}")))?;
    let mut rng = rand::rng();
    let wrapped = match wrapping_algorithm.as_str() {
        "RSAES_OAEP_SHA_1" => public.encrypt(&mut rng, rsa::Oaep::<sha1::Sha1>::new(), &material),
        _ => public.encrypt(&mut rng, rsa::Oaep::<sha2::Sha256>::new(), &material),
    }
    .map_err(|e| Failure(format!("cannot wrap the material: {e}")))?;
    let request = pb::ImportKeyMaterialRequest {
        key_id: key_id.clone(),
        encrypted_key_material: wrapped,
        import_token: params.import_token,
        key_material_expire_unix: expire_unix,
    };
    kms.import_key_material(conn.request(request)).await?;
    described(conn, &mut kms, key_id).await
}

/// The key as it is after a change, so a command shows what it did.
async fn described(
    conn: &Connection,
    kms: &mut KeyManagementServiceClient<Transport>,
    key_id: String,
) -> Result<Value, Failure> {
    let described = kms.describe_key(conn.request(pb::DescribeKeyRequest { key_id })).await?.into_inner();
    Ok(key_metadata_json(described.key_metadata.unwrap_or_default()))
}

async fn export_key(conn: &Connection, key: KeyVersionArgs, wrap: WrapArgs) -> Result<Value, Failure> {
    let request = pb::ExportKeyRequest {
        key_id: key.key_id,
        key_version_id: key.key_version_id,
        public_key_blob: read_input(&wrap.public_key_file)?,
        wrapping_algorithm: wrap.wrapping_algorithm,
        wrapping_key_spec: wrap.wrapping_key_spec,
    };
    let response = conn.kms().await?.export_key(conn.request(request)).await?.into_inner();
    Ok(json!({
        "exportBlob": BASE64.encode(&response.export_blob),
        "keyId": response.key_id,
        "keyVersionId": response.key_version_id,
    }))
}

async fn data_key(conn: &Connection, command: DataKeyCommand) -> Result<Value, Failure> {
    let mut kms = conn.kms().await?;
    Ok(match command {
        DataKeyCommand::Generate {
            key_id,
            key_spec,
            number_of_bytes,
            context,
            public_key_file: Some(public_key_file),
            wrapping_algorithm,
            wrapping_key_spec,
            ..
        } => {
            let request = pb::GenerateAndExportDataKeyRequest {
                key_id,
                key_spec,
                number_of_bytes,
                encryption_context: context.into_iter().collect(),
                public_key_blob: read_input(&public_key_file)?,
                wrapping_algorithm,
                wrapping_key_spec,
            };
            let response = kms.generate_and_export_data_key(conn.request(request)).await?.into_inner();
            json!({
                "ciphertextBlob": BASE64.encode(&response.ciphertext_blob),
                "exportBlob": BASE64.encode(&response.export_blob),
                "keyId": response.key_id,
                "keyVersionId": response.key_version_id,
            })
        }
        DataKeyCommand::Generate { key_id, key_spec, number_of_bytes, context, without_plaintext, .. } => {
            let request = pb::GenerateDataKeyRequest {
                key_id,
                key_spec,
                number_of_bytes,
                encryption_context: context.into_iter().collect(),
            };
            if without_plaintext {
                let response = kms.generate_data_key_without_plaintext(conn.request(request)).await?.into_inner();
                json!({
                    "ciphertextBlob": BASE64.encode(&response.ciphertext_blob),
                    "keyId": response.key_id,
                    "keyVersionId": response.key_version_id,
                })
            } else {
                let response = kms.generate_data_key(conn.request(request)).await?.into_inner();
                json!({
                    "ciphertextBlob": BASE64.encode(&response.ciphertext_blob),
                    "plaintextBase64": BASE64.encode(&response.plaintext),
                    "keyId": response.key_id,
                    "keyVersionId": response.key_version_id,
                })
            }
        }
        DataKeyCommand::Export { blob, context, wrap } => {
            let request = pb::ExportDataKeyRequest {
                ciphertext_blob: blob.bytes()?,
                encryption_context: context.into_iter().collect(),
                public_key_blob: read_input(&wrap.public_key_file)?,
                wrapping_algorithm: wrap.wrapping_algorithm,
                wrapping_key_spec: wrap.wrapping_key_spec,
            };
            let response = kms.export_data_key(conn.request(request)).await?.into_inner();
            json!({
                "exportBlob": BASE64.encode(&response.export_blob),
                "keyId": response.key_id,
                "keyVersionId": response.key_version_id,
            })
        }
    })
}

fn key_metadata_json(m: pb::KeyMetadata) -> Value {
    json!({
        "keyId": m.key_id,
        "arn": m.arn,
        "keyState": m.key_state,
        "keySpec": m.key_spec,
        "keyUsage": m.key_usage,
        "origin": m.origin,
        "protectionLevel": m.protection_level,
        "creationDate": m.creation_date,
        "deleteDate": m.delete_date,
        "primaryKeyVersion": m.primary_key_version,
        "deletionProtection": m.deletion_protection,
        "deletionProtectionDescription": m.deletion_protection_description,
        "description": m.description,
        "region": m.region,
        "automaticRotation": m.automatic_rotation,
        "rotationInterval": m.rotation_interval,
        "lastRotationDate": m.last_rotation_date,
        "nextRotationDate": m.next_rotation_date,
        "materialExpireTime": m.material_expire_time,
        "exportable": m.exportable,
        "dkmsInstanceId": m.dkms_instance_id,
        "replicaOfInstanceId": m.replica_of_instance_id,
    })
}

fn key_version_json(v: pb::KeyVersion) -> Value {
    json!({ "keyId": v.key_id, "keyVersionId": v.key_version_id, "creationDate": v.creation_date })
}

pub(super) fn read_input(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| Failure(format!("stdin: {e}")))?;
    } else {
        bytes = std::fs::read(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    }
    Ok(bytes)
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}
