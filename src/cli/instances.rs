//! `kmsim instance …` (KMS instances), `kmsim sync …` (cross-region key sync),
//! `kmsim fault …` (fault injection) and `kmsim metrics` (per-minute metrics).

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{Connection, Failure};
use super::output::OutputFormat;
use crate::proto as pb;
use crate::proto::instance_service_client::InstanceServiceClient;
use crate::proto::simulation_service_client::SimulationServiceClient;

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Buy a KMS instance in the region (global --region, default: the server's): a QPS spec and an expiry date.
    #[command(after_help = "Examples:\n  kmsim instance create --spec 200\n  \
                            kmsim instance create --region cn-shanghai --spec 1000 --name dr \
                            --expire-time 2027-01-01T00:00:00Z\n  \
                            kmsim key create --dkms-instance-id kst-hzz…")]
    Create {
        /// Calls per second: 200, 1000, 2000, 4000, or any number from 1 to 100000.
        #[arg(long)]
        spec: i64,
        /// RFC 3339 on the simulation clock, after now; default a year from now.
        #[arg(long, default_value = "")]
        expire_time: String,
        /// Default: the instance id.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List the region's instances, oldest first.
    #[command(after_help = "Examples:\n  kmsim instance list\n  kmsim instance list --region cn-shanghai")]
    List,
    /// Show an instance of the region: spec, expiry, status and key count.
    #[command(after_help = "Example:\n  kmsim instance describe kst-hzz62ee817bvyyr5x")]
    Describe { kms_instance_id: String },
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Replicate a key of an instance to a shadow instance in another region (ReplicateKey); the first sync runs at once.
    #[command(after_help = "Example:\n  kmsim sync add key-hzz… --shadow-instance kst-shh… --interval 1h")]
    Add {
        /// The key (id, ARN or alias/NAME) in a KMS instance of this region.
        key_id: String,
        /// The replica instance, in another region.
        #[arg(long)]
        shadow_instance: String,
        /// How often to sync: 1m to 365d (units d, h, m, s); default 1h.
        #[arg(long, default_value = "")]
        interval: String,
    },
    /// Sync every replica of a key now (SyncKey) and show how each sync ended.
    #[command(after_help = "Example:\n  kmsim sync run key-hzz…")]
    Run { key_id: String },
    /// List a key's replicas and how each one's last sync ended.
    #[command(after_help = "Example:\n  kmsim sync list key-hzz…")]
    List { key_id: String },
}

#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Make matching calls fail with an error code, or slow down, or both.
    #[command(
        after_help = "Examples:\n  kmsim fault inject --method Encrypt --error ServiceUnavailableTemporary --count 1\n  \
                            kmsim fault inject --method 'Generate*' --delay 250ms --probability 0.5 --ttl 10m\n  \
                            kmsim fault inject --method KeySync --error Rejected.Unavailable"
    )]
    Inject {
        /// Operation name pattern (`Decrypt`, `Generate*`, `KeySync`, `SecretRotation`); `?` and `*` wildcards;
        /// default `*`.
        #[arg(long, default_value = "")]
        method: String,
        /// Key id pattern (a secret name pattern for secret calls); default `*` (which also hits calls that name
        /// no key).
        #[arg(long, default_value = "")]
        key_id: String,
        /// An error code of the reference, e.g. ServiceUnavailableTemporary, Rejected.Throttling, InternalFailure.
        #[arg(long = "error", default_value = "")]
        error_code: String,
        /// Added before the answer, e.g. 250ms, 1s, 1.5s.
        #[arg(long, value_parser = parse_delay_ms, default_value = "0ms")]
        delay: u32,
        /// Chance that a matching call is hit, above 0 and at most 1; default 1.
        #[arg(long, default_value_t = 1.0)]
        probability: f64,
        /// Hits before the fault goes; default unlimited.
        #[arg(long, default_value_t = 0)]
        count: u32,
        /// How long the fault lasts, e.g. 10m, 2h (units d, h, m, s).
        #[arg(long, default_value = "", conflicts_with = "expire_time")]
        ttl: String,
        /// When the fault goes (RFC 3339, simulation clock).
        #[arg(long, default_value = "")]
        expire_time: String,
    },
    /// List the faults in force, oldest first, with their hits.
    #[command(after_help = "Example:\n  kmsim fault list")]
    List,
    /// Remove one fault, or every fault when none is named; prints how many were cleared.
    #[command(after_help = "Examples:\n  kmsim fault clear fault-1a2b3c4d5e6f\n  kmsim fault clear")]
    Clear { fault_id: Option<String> },
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// An instance id, or `default` for calls on default keys; default every instance.
    #[arg(long, default_value = "")]
    instance: String,
    /// The first minute (RFC 3339, simulation clock); default everything kept.
    #[arg(long, default_value = "")]
    since: String,
    /// The last minute (RFC 3339, simulation clock).
    #[arg(long, default_value = "")]
    until: String,
}

pub async fn instance(conn: &Connection, command: InstanceCommand) -> Result<Value, Failure> {
    let mut client = InstanceServiceClient::new(conn.channel().await?);
    Ok(match command {
        // The region is the caller's, which the global --region sets.
        InstanceCommand::Create { spec, expire_time, name } => {
            let request =
                pb::CreateKmsInstanceRequest { region: String::new(), spec, expire_time, instance_name: name };
            let response = client.create_kms_instance(conn.request(request)).await?.into_inner();
            instance_json(response.kms_instance.unwrap_or_default())
        }
        InstanceCommand::List => {
            let response = client.list_kms_instances(conn.request(pb::ListKmsInstancesRequest {})).await?;
            let instances = response.into_inner().kms_instances.into_iter().map(instance_json).collect::<Vec<_>>();
            json!({ "kmsInstances": instances })
        }
        InstanceCommand::Describe { kms_instance_id } => {
            let request = pb::GetKmsInstanceRequest { kms_instance_id };
            let response = client.get_kms_instance(conn.request(request)).await?.into_inner();
            instance_json(response.kms_instance.unwrap_or_default())
        }
    })
}

pub async fn sync(conn: &Connection, command: SyncCommand) -> Result<Value, Failure> {
    let mut client = InstanceServiceClient::new(conn.channel().await?);
    let (key_id, region, replicas) = match command {
        SyncCommand::Add { key_id, shadow_instance, interval } => {
            let request =
                pb::ReplicateKeyRequest { key_id, shadow_instance_id: shadow_instance, sync_interval: interval };
            let r = client.replicate_key(conn.request(request)).await?.into_inner();
            (r.key_id, r.region, r.replicas)
        }
        SyncCommand::Run { key_id } => {
            let r = client.sync_key(conn.request(pb::SyncKeyRequest { key_id })).await?.into_inner();
            (r.key_id, r.region, r.replicas)
        }
        SyncCommand::List { key_id } => {
            let r = client.list_key_replicas(conn.request(pb::ListKeyReplicasRequest { key_id })).await?.into_inner();
            (r.key_id, r.region, r.replicas)
        }
    };
    Ok(json!({
        "keyId": key_id,
        "region": region,
        "replicas": replicas.into_iter().map(replica_json).collect::<Vec<_>>(),
    }))
}

pub async fn fault(conn: &Connection, command: FaultCommand) -> Result<Value, Failure> {
    let mut client = SimulationServiceClient::new(conn.channel().await?);
    Ok(match command {
        FaultCommand::Inject { method, key_id, error_code, delay, probability, count, ttl, expire_time } => {
            let request = pb::InjectFaultRequest {
                method,
                key_id,
                error_code,
                delay_ms: delay,
                probability,
                count,
                expire_time,
                ttl,
            };
            let response = client.inject_fault(conn.request(request)).await?.into_inner();
            fault_json(response.fault.unwrap_or_default())
        }
        FaultCommand::List => {
            let response = client.list_faults(conn.request(pb::ListFaultsRequest {})).await?.into_inner();
            json!({ "faults": response.faults.into_iter().map(fault_json).collect::<Vec<_>>() })
        }
        FaultCommand::Clear { fault_id } => {
            let request = pb::ClearFaultsRequest { fault_id: fault_id.unwrap_or_default() };
            let response = client.clear_faults(conn.request(request)).await?.into_inner();
            json!({ "cleared": response.cleared })
        }
    })
}

/// GetMetrics, filtered by the global --region (which also names the caller's region).
pub async fn metrics(conn: &Connection, args: MetricsArgs) -> Result<Value, Failure> {
    let mut client = SimulationServiceClient::new(conn.channel().await?);
    let request = pb::GetMetricsRequest {
        region: conn.region().unwrap_or_default().to_owned(),
        kms_instance_id: args.instance,
        start_time: args.since,
        end_time: args.until,
    };
    let response = client.get_metrics(conn.request(request)).await?.into_inner();
    let points: Vec<Value> = response.points.iter().map(|p| metric_json(p, conn.output)).collect();
    Ok(match conn.output {
        OutputFormat::Json => json!({ "points": points }),
        // Just the table, one row per minute.
        OutputFormat::Table => Value::Array(points),
    })
}

fn instance_json(i: pb::KmsInstance) -> Value {
    json!({
        "kmsInstanceId": i.kms_instance_id,
        "instanceName": i.instance_name,
        "region": i.region,
        "spec": i.spec,
        "status": i.status,
        "keyCount": i.key_count,
        "createTime": i.create_time,
        "expireTime": i.expire_time,
        "arn": i.arn,
    })
}

fn replica_json(r: pb::KeyReplica) -> Value {
    json!({
        "shadowInstanceId": r.shadow_instance_id,
        "shadowRegion": r.shadow_region,
        "syncInterval": r.sync_interval,
        "lastSyncTaskId": r.last_sync_task_id,
        "lastSyncTime": r.last_sync_time,
        "lastSyncStatus": r.last_sync_status,
        "lastErrorCode": r.last_error_code,
    })
}

fn fault_json(f: pb::Fault) -> Value {
    json!({
        "faultId": f.fault_id,
        "method": f.method,
        "keyId": f.key_id,
        "errorCode": f.error_code,
        "delayMs": f.delay_ms,
        "probability": f.probability,
        "remaining": f.remaining,
        "expireTime": f.expire_time,
        "hits": f.hits,
    })
}

/// JSON carries every counter under its full name; the table is one row per minute with short columns.
fn metric_json(p: &pb::MetricPoint, output: OutputFormat) -> Value {
    match output {
        OutputFormat::Json => json!({
            "minute": p.minute,
            "region": p.region,
            "kmsInstanceId": p.kms_instance_id,
            "requests": p.requests,
            "symmetricEncryptRequests": p.symmetric_encrypt_requests,
            "symmetricDecryptRequests": p.symmetric_decrypt_requests,
            "asymmetricEncryptRequests": p.asymmetric_encrypt_requests,
            "asymmetricDecryptRequests": p.asymmetric_decrypt_requests,
            "asymmetricSignRequests": p.asymmetric_sign_requests,
            "asymmetricVerifyRequests": p.asymmetric_verify_requests,
            "secretRequests": p.secret_requests,
            "otherRequests": p.other_requests,
            "errors4xx": p.errors_4xx,
            "errors5xx": p.errors_5xx,
            "averageLatencyMs": p.average_latency_ms,
            "symmetricQpsUtilization": p.symmetric_qps_utilization,
            "asymmetricQpsUtilization": p.asymmetric_qps_utilization,
        }),
        OutputFormat::Table => json!({
            "minute": p.minute,
            "region": p.region,
            "instance": if p.kms_instance_id.is_empty() { "default" } else { p.kms_instance_id.as_str() },
            "requests": p.requests,
            "symEnc": p.symmetric_encrypt_requests,
            "symDec": p.symmetric_decrypt_requests,
            "asymEnc": p.asymmetric_encrypt_requests,
            "asymDec": p.asymmetric_decrypt_requests,
            "sign": p.asymmetric_sign_requests,
            "verify": p.asymmetric_verify_requests,
            "secret": p.secret_requests,
            "other": p.other_requests,
            "4xx": p.errors_4xx,
            "5xx": p.errors_5xx,
            "avgMs": format!("{:.1}", p.average_latency_ms),
            "symUtil": format!("{:.1}%", p.symmetric_qps_utilization),
            "asymUtil": format!("{:.1}%", p.asymmetric_qps_utilization),
        }),
    }
}

/// Parses a delay such as `250ms`, `1s`, `1.5s` or `2m` into milliseconds.
fn parse_delay_ms(text: &str) -> Result<u32, String> {
    let bad = || format!("invalid delay {text:?}: write e.g. 250ms, 1s or 1.5s");
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return Err(bad());
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ms = (value * unit_ms).round();
    if !(0.0..=f64::from(u32::MAX)).contains(&ms) {
        return Err(bad());
    }
    Ok(ms as u32)
}

#[cfg(test)]
mod tests {
    use super::parse_delay_ms;

    #[test]
    fn delays() {
        assert_eq!(parse_delay_ms("250ms"), Ok(250));
        assert_eq!(parse_delay_ms("1s"), Ok(1_000));
        assert_eq!(parse_delay_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_delay_ms("2m"), Ok(120_000));
        assert_eq!(parse_delay_ms("0ms"), Ok(0));
        for bad in ["", "250", "ms", "-1s", "1h", "1e3ms", "99999999999s"] {
            assert!(parse_delay_ms(bad).is_err(), "{bad:?}");
        }
    }
}
