//! The per-minute metrics of the KMS API, per region and KMS instance, as
//! CloudMonitor keeps them for KMS (seed 001): requests by class of operation,
//! 4xx and 5xx errors, average latency, and symmetric and asymmetric QPS
//! utilisation. Also their Prometheus text rendering.
//!
//! Minutes are minutes of the simulation clock, like every other time in
//! kmsim. Each series keeps its last [`MINUTES_KEPT`] minutes with calls; its
//! totals since start are kept for ever and are what Prometheus reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::SimTime;

/// How many minutes with calls each series keeps for GetMetrics.
pub const MINUTES_KEPT: usize = 24 * 60;
/// The shared gateway's quotas for default keys, per account and region (reference).
pub const SHARED_SYMMETRIC_QPS: u32 = 750;
pub const SHARED_ASYMMETRIC_QPS: u32 = 200;

/// The classes of call the metrics count apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClass {
    SymmetricEncrypt,
    SymmetricDecrypt,
    AsymmetricEncrypt,
    AsymmetricDecrypt,
    AsymmetricSign,
    AsymmetricVerify,
    Secret,
    Other,
}

impl CallClass {
    pub const ALL: [CallClass; 8] = [
        CallClass::SymmetricEncrypt,
        CallClass::SymmetricDecrypt,
        CallClass::AsymmetricEncrypt,
        CallClass::AsymmetricDecrypt,
        CallClass::AsymmetricSign,
        CallClass::AsymmetricVerify,
        CallClass::Secret,
        CallClass::Other,
    ];

    /// The class of an operation, by its event name.
    pub fn of(event_name: &str) -> CallClass {
        match event_name {
            "Encrypt" | "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" | "GenerateAndExportDataKey" => {
                CallClass::SymmetricEncrypt
            }
            "Decrypt" | "ReEncrypt" => CallClass::SymmetricDecrypt,
            "AsymmetricEncrypt" => CallClass::AsymmetricEncrypt,
            "AsymmetricDecrypt" => CallClass::AsymmetricDecrypt,
            "AsymmetricSign" => CallClass::AsymmetricSign,
            "AsymmetricVerify" => CallClass::AsymmetricVerify,
            name if name.contains("Secret") || name == "GetRandomPassword" => CallClass::Secret,
            _ => CallClass::Other,
        }
    }

    /// The label Prometheus output gives the class.
    pub fn label(self) -> &'static str {
        match self {
            CallClass::SymmetricEncrypt => "symmetric_encrypt",
            CallClass::SymmetricDecrypt => "symmetric_decrypt",
            CallClass::AsymmetricEncrypt => "asymmetric_encrypt",
            CallClass::AsymmetricDecrypt => "asymmetric_decrypt",
            CallClass::AsymmetricSign => "asymmetric_sign",
            CallClass::AsymmetricVerify => "asymmetric_verify",
            CallClass::Secret => "secret",
            CallClass::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is_symmetric(self) -> bool {
        matches!(self, CallClass::SymmetricEncrypt | CallClass::SymmetricDecrypt)
    }

    fn is_asymmetric(self) -> bool {
        matches!(
            self,
            CallClass::AsymmetricEncrypt
                | CallClass::AsymmetricDecrypt
                | CallClass::AsymmetricSign
                | CallClass::AsymmetricVerify
        )
    }
}

/// One finished call, as the metrics see it.
#[derive(Debug, Clone)]
pub struct CallSample<'a> {
    pub region: &'a str,
    /// Empty for default keys.
    pub instance_id: &'a str,
    /// The instance's QPS spec, for utilisation; `None` for default keys.
    pub spec: Option<u32>,
    pub event_name: &'a str,
    pub http_status: u16,
    pub latency: Duration,
    pub at: SimTime,
}

/// The counters of one minute, or of all time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub by_class: [u64; 8],
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub latency_us: u64,
    pub peak_symmetric_qps: u32,
    pub peak_asymmetric_qps: u32,
}

impl Counters {
    pub fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    pub fn class(&self, class: CallClass) -> u64 {
        self.by_class[class.index()]
    }

    pub fn average_latency_ms(&self) -> f64 {
        match self.requests() {
            0 => 0.0,
            n => self.latency_us as f64 / n as f64 / 1000.0,
        }
    }

    fn add(&mut self, sample: &CallSample<'_>, class: CallClass) {
        self.by_class[class.index()] += 1;
        match sample.http_status {
            400..=499 => self.errors_4xx += 1,
            500..=599 => self.errors_5xx += 1,
            _ => {}
        }
        self.latency_us += u64::try_from(sample.latency.as_micros()).unwrap_or(u64::MAX);
    }
}

/// One minute of one series, for GetMetrics.
#[derive(Debug, Clone, PartialEq)]
pub struct MinutePoint {
    pub minute: SimTime,
    pub region: String,
    pub instance_id: String,
    pub counters: Counters,
    pub symmetric_utilization: f64,
    pub asymmetric_utilization: f64,
}

struct Series {
    spec: Option<u32>,
    totals: Counters,
    minutes: BTreeMap<i64, Counters>,
    /// The second being counted for peak QPS, and its symmetric and asymmetric calls.
    second: i64,
    second_symmetric: u32,
    second_asymmetric: u32,
}

impl Series {
    fn quotas(&self) -> (u32, u32) {
        match self.spec {
            Some(spec) => (spec, spec),
            None => (SHARED_SYMMETRIC_QPS, SHARED_ASYMMETRIC_QPS),
        }
    }

    fn utilization(&self, minute: &Counters) -> (f64, f64) {
        let (symmetric, asymmetric) = self.quotas();
        let percent = |peak: u32, quota: u32| f64::from(peak) * 100.0 / f64::from(quota.max(1));
        (percent(minute.peak_symmetric_qps, symmetric), percent(minute.peak_asymmetric_qps, asymmetric))
    }
}

/// Which points GetMetrics wants; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct MetricsFilter {
    pub region: String,
    /// `default` selects default keys.
    pub instance_id: String,
    pub start: Option<SimTime>,
    pub end: Option<SimTime>,
}

/// All series, keyed by (region, instance id).
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String), Series>>,
}

impl Metrics {
    pub fn record(&self, sample: &CallSample<'_>) {
        let class = CallClass::of(sample.event_name);
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let series = all.entry((sample.region.to_owned(), sample.instance_id.to_owned())).or_insert_with(|| Series {
            spec: sample.spec,
            totals: Counters::default(),
            minutes: BTreeMap::new(),
            second: i64::MIN,
            second_symmetric: 0,
            second_asymmetric: 0,
        });
        series.spec = sample.spec.or(series.spec);
        let second = sample.at.millis().div_euclid(1000);
        if second != series.second {
            series.second = second;
            series.second_symmetric = 0;
            series.second_asymmetric = 0;
        }
        if class.is_symmetric() {
            series.second_symmetric += 1;
        }
        if class.is_asymmetric() {
            series.second_asymmetric += 1;
        }
        let (symmetric_now, asymmetric_now) = (series.second_symmetric, series.second_asymmetric);
        series.totals.add(sample, class);
        let minute = series.minutes.entry(sample.at.millis().div_euclid(60_000)).or_default();
        minute.add(sample, class);
        minute.peak_symmetric_qps = minute.peak_symmetric_qps.max(symmetric_now);
        minute.peak_asymmetric_qps = minute.peak_asymmetric_qps.max(asymmetric_now);
        while series.minutes.len() > MINUTES_KEPT {
            series.minutes.pop_first();
        }
    }

    /// The kept minutes that `filter` selects, by region, instance and time.
    pub fn points(&self, filter: &MetricsFilter) -> Vec<MinutePoint> {
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let wanted_instance = |id: &str| match filter.instance_id.as_str() {
            "" => true,
            "default" => id.is_empty(),
            wanted => wanted == id,
        };
        let mut points = Vec::new();
        for ((region, instance_id), series) in all.iter() {
            if !(filter.region.is_empty() || filter.region == *region) || !wanted_instance(instance_id) {
                continue;
            }
            for (minute, counters) in &series.minutes {
                let minute = SimTime(minute * 60_000);
                if filter.start.is_some_and(|s| minute < s) || filter.end.is_some_and(|e| minute > e) {
                    continue;
                }
                let (symmetric_utilization, asymmetric_utilization) = series.utilization(counters);
                points.push(MinutePoint {
                    minute,
                    region: region.clone(),
                    instance_id: instance_id.clone(),
                    counters: counters.clone(),
                    symmetric_utilization,
                    asymmetric_utilization,
                });
            }
        }
        points.sort_by(|a, b| (a.minute, &a.region, &a.instance_id).cmp(&(b.minute, &b.region, &b.instance_id)));
        points
    }

    /// The Prometheus text exposition (format 0.0.4) of every series: totals
    /// since start as counters, and the latest minute's latency and
    /// utilisation as gauges.
    pub fn prometheus(&self) -> String {
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let labels = |region: &str, instance: &str| {
            format!("region=\"{}\",kms_instance_id=\"{}\"", escape_label(region), escape_label(instance))
        };
        let mut family = |name: &str, kind: &str, help: &str, lines: &mut dyn FnMut(&mut String)| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            lines(&mut out);
        };
        family("kmsim_requests_total", "counter", "KMS API calls by class of operation.", &mut |out| {
            for ((region, instance), series) in all.iter() {
                for class in CallClass::ALL {
                    let _ = writeln!(
                        out,
                        "kmsim_requests_total{{{},operation=\"{}\"}} {}",
                        labels(region, instance),
                        class.label(),
                        series.totals.class(class)
                    );
                }
            }
        });
        family("kmsim_errors_total", "counter", "KMS API calls that failed, by HTTP status class.", &mut |out| {
            for ((region, instance), series) in all.iter() {
                for (class, count) in [("4xx", series.totals.errors_4xx), ("5xx", series.totals.errors_5xx)] {
                    let _ =
                        writeln!(out, "kmsim_errors_total{{{},status=\"{class}\"}} {count}", labels(region, instance));
                }
            }
        });
        family(
            "kmsim_request_latency_seconds_total",
            "counter",
            "Time spent answering KMS API calls; divide by the requests for the average.",
            &mut |out| {
                for ((region, instance), series) in all.iter() {
                    let seconds = series.totals.latency_us as f64 / 1e6;
                    let _ =
                        writeln!(out, "kmsim_request_latency_seconds_total{{{}}} {seconds}", labels(region, instance));
                }
            },
        );
        family(
            "kmsim_average_latency_milliseconds",
            "gauge",
            "Average latency of the latest minute with calls.",
            &mut |out| {
                for ((region, instance), series) in all.iter() {
                    if let Some(latest) = series.minutes.values().next_back() {
                        let _ = writeln!(
                            out,
                            "kmsim_average_latency_milliseconds{{{}}} {}",
                            labels(region, instance),
                            latest.average_latency_ms()
                        );
                    }
                }
            },
        );
        family(
            "kmsim_qps_utilization_percent",
            "gauge",
            "Peak one-second QPS of the latest minute with calls, as a percentage of the quota.",
            &mut |out| {
                for ((region, instance), series) in all.iter() {
                    if let Some(latest) = series.minutes.values().next_back() {
                        let (symmetric, asymmetric) = series.utilization(latest);
                        for (kind, value) in [("symmetric", symmetric), ("asymmetric", asymmetric)] {
                            let _ = writeln!(
                                out,
                                "kmsim_qps_utilization_percent{{{},kind=\"{kind}\"}} {value}",
                                labels(region, instance)
                            );
                        }
                    }
                }
            },
        );
        out
    }
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(event_name: &'a str, status: u16, at_ms: i64) -> CallSample<'a> {
        CallSample {
            region: "cn-hangzhou",
            instance_id: "kst-hzz1",
            spec: Some(200),
            event_name,
            http_status: status,
            latency: Duration::from_millis(2),
            at: SimTime(at_ms),
        }
    }

    #[test]
    fn minutes_count_classes_errors_latency_and_peak_qps() {
        let metrics = Metrics::default();
        for i in 0..10 {
            metrics.record(&sample("Encrypt", 200, 60_000 + i));
        }
        metrics.record(&sample("Decrypt", 409, 61_000));
        metrics.record(&sample("AsymmetricSign", 503, 62_000));
        metrics.record(&sample("DescribeKey", 200, 120_000));
        let points = metrics.points(&MetricsFilter::default());
        assert_eq!(points.len(), 2);
        let first = &points[0].counters;
        assert_eq!(first.requests(), 12);
        assert_eq!(first.class(CallClass::SymmetricEncrypt), 10);
        assert_eq!(first.class(CallClass::SymmetricDecrypt), 1);
        assert_eq!(first.class(CallClass::AsymmetricSign), 1);
        assert_eq!((first.errors_4xx, first.errors_5xx), (1, 1));
        assert_eq!(first.peak_symmetric_qps, 10);
        assert!((points[0].symmetric_utilization - 5.0).abs() < 1e-9);
        assert!((first.average_latency_ms() - 2.0).abs() < 1e-9);
        assert_eq!(points[1].counters.class(CallClass::Other), 1);
    }

    #[test]
    fn filters_select_region_instance_and_time() {
        let metrics = Metrics::default();
        metrics.record(&sample("Encrypt", 200, 0));
        metrics.record(&CallSample { instance_id: "", spec: None, ..sample("Encrypt", 200, 60_000) });
        let only = |filter: MetricsFilter| metrics.points(&filter).len();
        assert_eq!(only(MetricsFilter { instance_id: "default".into(), ..Default::default() }), 1);
        assert_eq!(only(MetricsFilter { instance_id: "kst-hzz1".into(), ..Default::default() }), 1);
        assert_eq!(only(MetricsFilter { region: "cn-shanghai".into(), ..Default::default() }), 0);
        assert_eq!(only(MetricsFilter { start: Some(SimTime(60_000)), ..Default::default() }), 1);
    }

    #[test]
    fn prometheus_text_has_every_family_and_escapes_labels() {
        let metrics = Metrics::default();
        metrics.record(&CallSample { region: "a\"b", ..sample("Encrypt", 200, 0) });
        let text = metrics.prometheus();
        for family in [
            "kmsim_requests_total",
            "kmsim_errors_total",
            "kmsim_request_latency_seconds_total",
            "kmsim_average_latency_milliseconds",
            "kmsim_qps_utilization_percent",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family} missing:\n{text}");
        }
        assert!(text.contains(r#"region="a\"b""#), "{text}");
    }
}
