//! The last few minutes of traffic for the status page: every `STEP` the
//! request totals are sampled and the difference becomes one point
//! (request rate, error rate, mean and 95th percentile latency).
//!
//! Prometheus keeps real history; this ring only lets the status page
//! draw its small charts the moment it opens, without a Prometheus.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::metrics::{self, Totals, TOTAL_BUCKETS_MS};

/// Time between two points.
pub const STEP: Duration = Duration::from_secs(2);
/// Points kept: five minutes.
pub const POINTS: usize = 150;

/// One step of traffic.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// Unix milliseconds at the end of the step.
    pub time: u64,
    pub requests_per_second: f64,
    /// 5xx answers per second.
    pub errors_per_second: f64,
    pub latency_mean_ms: Option<f64>,
    /// Upper bound of the bucket holding the 95th percentile.
    pub latency_p95_ms: Option<f64>,
}

/// Raw totals at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    requests: u64,
    errors: u64,
    duration_micros: u64,
    buckets: [u64; TOTAL_BUCKETS_MS.len() + 1],
}

impl Reading {
    fn take(totals: &Totals) -> Reading {
        let mut buckets = [0; TOTAL_BUCKETS_MS.len() + 1];
        for (slot, bucket) in buckets.iter_mut().zip(&totals.buckets) {
            *slot = bucket.load(Ordering::Relaxed);
        }
        Reading {
            requests: totals.requests.load(Ordering::Relaxed),
            errors: totals.errors.load(Ordering::Relaxed),
            duration_micros: totals.duration_micros.load(Ordering::Relaxed),
            buckets,
        }
    }
}

/// The ring of points, shared by the sampler and the admin API.
#[derive(Debug, Default)]
pub struct History {
    points: Mutex<VecDeque<Point>>,
}

impl History {
    /// Starts sampling every `STEP` until `stop` fires.
    pub fn spawn(stop: tokio::sync::watch::Receiver<bool>) -> Arc<History> {
        let history = Arc::new(History::default());
        let sampler = history.clone();
        tokio::spawn(async move {
            let mut stop = stop;
            let mut previous = Reading::take(&metrics::global().totals);
            let mut ticker = tokio::time::interval(STEP);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.wait_for(|stopping| *stopping) => return,
                }
                let now = Reading::take(&metrics::global().totals);
                sampler.push(point(&previous, &now, STEP, SystemTime::now()));
                previous = now;
            }
        });
        history
    }

    fn push(&self, point: Point) {
        let mut points = match self.points.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if points.len() == POINTS {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The points, oldest first.
    pub fn points(&self) -> Vec<Point> {
        match self.points.lock() {
            Ok(guard) => guard.iter().copied().collect(),
            Err(poisoned) => poisoned.into_inner().iter().copied().collect(),
        }
    }
}

fn point(before: &Reading, after: &Reading, step: Duration, at: SystemTime) -> Point {
    let seconds = step.as_secs_f64();
    let requests = after.requests.saturating_sub(before.requests);
    let errors = after.errors.saturating_sub(before.errors);
    let micros = after.duration_micros.saturating_sub(before.duration_micros);
    let latency_mean_ms = (requests > 0).then(|| micros as f64 / requests as f64 / 1000.0);
    let latency_p95_ms = (requests > 0).then(|| {
        let wanted = (requests as f64 * 0.95).ceil() as u64;
        let mut seen = 0;
        for (index, (a, b)) in after.buckets.iter().zip(&before.buckets).enumerate() {
            seen += a.saturating_sub(*b);
            if seen >= wanted {
                return TOTAL_BUCKETS_MS
                    .get(index)
                    .map_or(f64::from(u32::MAX), |ms| *ms as f64);
            }
        }
        TOTAL_BUCKETS_MS[TOTAL_BUCKETS_MS.len() - 1] as f64
    });
    Point {
        time: at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        requests_per_second: requests as f64 / seconds,
        errors_per_second: errors as f64 / seconds,
        latency_mean_ms,
        latency_p95_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_the_difference_of_two_readings() {
        let before = Reading::default();
        let mut after = Reading {
            requests: 20,
            errors: 2,
            duration_micros: 20 * 3000,
            ..Reading::default()
        };
        // 18 requests under 5 ms, 2 under 250 ms.
        after.buckets[2] = 18;
        after.buckets[7] = 2;
        let p = point(
            &before,
            &after,
            Duration::from_secs(2),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(p.requests_per_second, 10.0);
        assert_eq!(p.errors_per_second, 1.0);
        assert_eq!(p.latency_mean_ms, Some(3.0));
        assert_eq!(p.latency_p95_ms, Some(250.0));
        let idle = point(
            &after,
            &after,
            Duration::from_secs(2),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(idle.requests_per_second, 0.0);
        assert_eq!(idle.latency_p95_ms, None);
    }
}
