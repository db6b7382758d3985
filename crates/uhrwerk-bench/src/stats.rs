//! Percentiles and latency summaries (nearest-rank on sorted samples), and the per-activity cost
//! of long histories over their first and last rounds.

use std::time::{Duration, Instant};

use serde::Serialize;

/// The `p`-th percentile (0 < p <= 100) of ascending `sorted` samples by the nearest-rank method:
/// the smallest sample with at least p% of the samples at or below it. `None` if empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latencies in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    pub fn of_ms(samples: &[f64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let p = |q| percentile(&sorted, q).unwrap_or_default();
        Summary {
            count: sorted.len(),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: p(50.0),
            p95: p(95.0),
            p99: p(99.0),
            max: sorted[sorted.len() - 1],
        }
    }

    pub fn of(durations: &[Duration]) -> Summary {
        Summary::of_ms(&durations.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>())
    }

    /// Every figure minus `ms` (for the timer workload: latency minus the timer).
    pub fn minus(self, ms: f64) -> Summary {
        if self.count == 0 {
            return self;
        }
        Summary {
            mean: self.mean - ms,
            p50: self.p50 - ms,
            p95: self.p95 - ms,
            p99: self.p99 - ms,
            max: self.max - ms,
            ..self
        }
    }
}

/// Milliseconds per round over the first `window` and the last `window` rounds of one run,
/// from `marks[i]` = when round i began (activity i was scheduled) and a final mark at the
/// end. `None` if the run has fewer than `window` rounds.
pub fn round_costs_ms(marks: &[Instant], window: usize) -> Option<(f64, f64)> {
    if window == 0 || marks.len() < window + 1 {
        return None;
    }
    let per = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1000.0 / window as f64;
    let last = marks.len() - 1;
    Some((per(marks[0], marks[window]), per(marks[last - window], marks[last])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let v = [10.0, 20.0, 30.0];
        assert_eq!(percentile(&v, 50.0), Some(20.0));
        assert_eq!(percentile(&v, 99.0), Some(30.0));
        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summaries_sort_their_samples() {
        let s = Summary::of_ms(&[5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!(s, Summary { count: 5, mean: 3.0, p50: 3.0, p95: 5.0, p99: 5.0, max: 5.0 });
        assert_eq!(Summary::of(&[Duration::from_millis(1500)]).p50, 1500.0);
        assert_eq!(Summary::of_ms(&[]), Summary::default());
        let o = Summary::of_ms(&[1010.0, 1030.0]).minus(1000.0);
        assert_eq!((o.p50, o.max, o.count), (10.0, 30.0, 2));
    }

    #[test]
    fn round_costs_over_first_and_last_window() {
        let t0 = Instant::now();
        // Round i takes i+1 ms: 5 rounds, marks at 0, 1, 3, 6, 10, 15 ms.
        let marks: Vec<Instant> = [0, 1, 3, 6, 10, 15].iter().map(|&ms| t0 + Duration::from_millis(ms)).collect();
        let (first, last) = round_costs_ms(&marks, 2).unwrap();
        assert!((first - 1.5).abs() < 1e-9, "{first}");
        assert!((last - 4.5).abs() < 1e-9, "{last}");
        assert_eq!(round_costs_ms(&marks, 5).map(|(a, b)| a == b), Some(true));
        assert_eq!(round_costs_ms(&marks, 6), None);
        assert_eq!(round_costs_ms(&marks, 0), None);
    }
}
