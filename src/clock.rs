//! The simulation clock: the one source of "now" for everything in kmsim.
//!
//! It follows real time plus an offset that only ever grows, so a test can
//! jump a year ahead while time keeps flowing normally from there. A manual
//! clock ([`SimClock::manual`]) does not follow real time at all: it stands
//! still until advanced, which is how the audit-data generator places every
//! call at the instant it chooses.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant on the simulation clock, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub i64);

impl SimTime {
    pub const MS_PER_DAY: i64 = 86_400_000;

    /// The end of time: 9999-12-31T23:59:59Z, the last instant an RFC 3339
    /// timestamp (and so every record, event and protobuf Timestamp kmsim
    /// writes) can say. The clock never reads later, and no move takes it past.
    pub const END: SimTime = SimTime(253_402_300_799_000);

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_days(self, days: i64) -> SimTime {
        SimTime(self.0.saturating_add(days.saturating_mul(Self::MS_PER_DAY)))
    }

    pub fn plus_secs(self, secs: u64) -> SimTime {
        let ms = i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
        SimTime(self.0.saturating_add(ms))
    }

    /// RFC 3339 UTC with whole seconds, as Alibaba writes dates (`2024-05-01T08:00:00Z`).
    pub fn to_rfc3339(self) -> String {
        self.format(false)
    }

    /// RFC 3339 UTC with milliseconds, for audit records.
    pub fn to_rfc3339_millis(self) -> String {
        self.format(true)
    }

    fn format(self, millis: bool) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
            return String::new();
        };
        let (y, mo, d) = (dt.year(), dt.month() as u8, dt.day());
        let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
        if millis {
            let ms = dt.millisecond();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        }
    }

    pub fn parse_rfc3339(text: &str) -> Option<SimTime> {
        let dt = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok().map(SimTime)
    }
}

/// Real time (or, for a manual clock, a fixed instant) plus a forward-only offset.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_ms: AtomicI64,
    /// `Some` for a manual clock: the instant it reads at offset zero.
    fixed_base_ms: Option<i64>,
}

impl SimClock {
    pub fn with_offset(offset_ms: i64) -> Self {
        SimClock { offset_ms: AtomicI64::new(offset_ms), fixed_base_ms: None }
    }

    /// A clock that reads `start` until it is advanced.
    pub fn manual(start: SimTime) -> Self {
        SimClock { offset_ms: AtomicI64::new(0), fixed_base_ms: Some(start.0) }
    }

    /// Whether this clock follows real time (false for a manual clock).
    pub fn follows_real_time(&self) -> bool {
        self.fixed_base_ms.is_none()
    }

    fn base_ms(&self) -> i64 {
        self.fixed_base_ms.unwrap_or_else(real_now_ms)
    }

    pub fn now(&self) -> SimTime {
        self.now_with_offset(self.offset_ms())
    }

    /// What `now` will read once the offset is `offset_ms`: real time flows on
    /// from a clock set near [`SimTime::END`], but stops there.
    pub fn now_with_offset(&self, offset_ms: i64) -> SimTime {
        SimTime(self.base_ms().saturating_add(offset_ms)).min(SimTime::END)
    }

    /// Whether the clock could be moved to read `target` now: no later than [`SimTime::END`].
    pub fn can_reach(target: SimTime) -> bool {
        target <= SimTime::END
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Acquire)
    }

    /// The offset an advance by `by` would produce; the caller persists it and
    /// then calls [`SimClock::set_offset`], so a crash never leaves the clock
    /// ahead of what the store remembers.
    pub fn offset_after(&self, by: Duration) -> i64 {
        let by_ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms().saturating_add(by_ms)
    }

    /// The offset at which `now` reads `target`.
    pub fn offset_reaching(&self, target: SimTime) -> i64 {
        target.0.saturating_sub(self.base_ms())
    }

    /// Only ever moves the offset forward.
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.fetch_max(offset_ms, Ordering::AcqRel);
    }
}

fn real_now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// The one duration grammar, for flags, scenarios and API parameters alike: `integer[unit]`
/// terms, e.g. `30d`, `12h`, `1d12h`, `90s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let bad = || format!("invalid duration {text:?}: use e.g. 30d, 12h, 90m, 45s or 1d12h");
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        total = total.checked_add(digits.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(parse_duration("1d12h").unwrap().as_secs(), 36 * 3_600);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = SimTime(1_700_000_000_123);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20Z");
        assert_eq!(t.to_rfc3339_millis(), "2023-11-14T22:13:20.123Z");
        assert_eq!(SimTime::parse_rfc3339("2023-11-14T22:13:20.123Z"), Some(t));
        assert_eq!(SimTime::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn advancing_moves_now_forward_and_never_back() {
        let clock = SimClock::default();
        let before = clock.now();
        clock.set_offset(clock.offset_after(Duration::from_secs(86_400 * 365)));
        assert!(clock.now().millis() - before.millis() >= 86_400_000 * 365);
        let ahead = clock.offset_ms();
        clock.set_offset(0);
        assert_eq!(clock.offset_ms(), ahead);
    }

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let start = SimTime(1_790_000_000_000);
        let clock = SimClock::manual(start);
        assert_eq!(clock.now(), start);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), start, "real time does not move a manual clock");
        clock.set_offset(clock.offset_reaching(start.plus_secs(90)));
        assert_eq!(clock.now(), start.plus_secs(90));
        assert!(!clock.follows_real_time() && SimClock::default().follows_real_time());
    }
}
