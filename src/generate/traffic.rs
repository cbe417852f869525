//! When an application calls: its mean rate shaped by a daily cycle, a
//! weekly cycle and bursts, drawn minute by minute as Poisson arrivals from
//! the generator's own seeded random stream.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::clock::SimTime;

/// The generator's random stream for everything it decides itself (arrivals,
/// callers, payloads); the engine's cryptography draws from its own.
pub struct Dice(StdRng);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(StdRng::seed_from_u64(seed))
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.random_range(0..n) }
    }

    pub fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        self.0.fill(bytes);
    }

    /// A Poisson count with mean `mean`: exact by multiplication for small
    /// means, the normal approximation above (where it is indistinguishable).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean < 30.0 {
            let limit = (-mean).exp();
            let (mut count, mut product) = (0, self.unit());
            while product > limit {
                count += 1;
                product *= self.unit();
            }
            return count;
        }
        // Box–Muller.
        let (u1, u2) = (self.unit().max(f64::MIN_POSITIVE), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (mean + mean.sqrt() * z).round().max(0.0) as u64
    }

    /// Picks an index with probability proportional to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut draw = self.below(total);
        for (i, weight) in weights.iter().enumerate() {
            if draw < u64::from(*weight) {
                return i;
            }
            draw -= u64::from(*weight);
        }
        weights.len().saturating_sub(1)
    }
}

/// An application's rate over time.
#[derive(Debug, Clone)]
pub struct RateShape {
    pub per_minute: f64,
    pub peak_hour: f64,
    pub daily: f64,
    pub weekend: f64,
    /// Bursts as `(from, to, factor)` in simulated milliseconds.
    pub bursts: Vec<(i64, i64, f64)>,
}

impl RateShape {
    /// The mean number of calls in the minute starting at `at`.
    pub fn mean_at(&self, at: SimTime) -> f64 {
        let ms = at.millis();
        let hour = ms.rem_euclid(SimTime::MS_PER_DAY) as f64 / 3_600_000.0;
        // 1 at the peak hour, 1 - daily twelve hours away.
        let phase = std::f64::consts::TAU * (hour - self.peak_hour) / 24.0;
        let daily = 1.0 - self.daily * (1.0 - phase.cos()) / 2.0;
        // 1970-01-01 was a Thursday: day 0 is weekday 4, with Sunday as 0.
        let weekday = (ms.div_euclid(SimTime::MS_PER_DAY) + 4).rem_euclid(7);
        let weekly = if weekday == 0 || weekday == 6 { self.weekend } else { 1.0 };
        let burst =
            self.bursts.iter().filter(|(from, to, _)| (*from..*to).contains(&ms)).map(|b| b.2).fold(1.0, f64::max);
        self.per_minute * daily * weekly * burst
    }
}

/// Places `per_week` bursts on average over `[start, end)`, each `lasting` long.
pub fn plan_bursts(
    dice: &mut Dice,
    start: SimTime,
    end: SimTime,
    per_week: f64,
    factor: f64,
    lasting_ms: i64,
) -> Vec<(i64, i64, f64)> {
    let span = (end.millis() - start.millis()).max(0);
    let weeks = span as f64 / (7.0 * SimTime::MS_PER_DAY as f64);
    let count = dice.poisson(per_week * weeks);
    let mut bursts: Vec<(i64, i64, f64)> = (0..count)
        .map(|_| {
            let from = start.millis() + dice.below(span.unsigned_abs()) as i64;
            (from, from + lasting_ms, factor)
        })
        .collect();
    bursts.sort_by_key(|b| b.0);
    bursts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_counts_have_their_mean() {
        let mut dice = Dice::new(7);
        for mean in [0.3, 4.0, 250.0] {
            let n = 20_000;
            let total: u64 = (0..n).map(|_| dice.poisson(mean)).sum();
            let observed = total as f64 / n as f64;
            assert!((observed - mean).abs() < mean * 0.05 + 0.02, "mean {mean}: observed {observed}");
        }
    }

    #[test]
    fn the_rate_peaks_at_its_hour_and_drops_at_weekends_and_rises_in_bursts() {
        // 2026-10-01 was a Thursday.
        let thursday = SimTime::parse_rfc3339("2026-10-01T00:00:00Z").unwrap();
        let shape = RateShape { per_minute: 10.0, peak_hour: 6.0, daily: 0.8, weekend: 0.5, bursts: vec![] };
        let at = |day: i64, hour: u64| shape.mean_at(thursday.plus_days(day).plus_secs(hour * 3600));
        assert!((at(0, 6) - 10.0).abs() < 1e-9);
        assert!((at(0, 18) - 2.0).abs() < 1e-9, "twelve hours from the peak, 1 - daily");
        assert!((at(2, 6) - 5.0).abs() < 1e-9, "Saturday");
        assert!((at(4, 6) - 10.0).abs() < 1e-9, "Monday");
        let from = thursday.plus_secs(6 * 3600).millis();
        let bursty = RateShape { bursts: vec![(from, from + 60_000, 6.0)], ..shape };
        assert!((bursty.mean_at(SimTime(from)) - 60.0).abs() < 1e-9);
        assert!((bursty.mean_at(SimTime(from + 60_000)) - 10.0).abs() < 1e-3, "the burst is over");
    }

    #[test]
    fn the_same_seed_draws_the_same_numbers() {
        let draw = |seed| {
            let mut dice = Dice::new(seed);
            (0..100).map(|_| dice.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
