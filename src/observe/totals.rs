//! Numbers kept beside the Prometheus families for the status page: the
//! recent latency of each upstream server and whole-process request totals
//! (which `history.rs` turns into rates). Plain atomics, updated on the
//! request path with relaxed ordering.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// An exponentially weighted moving average of response times, in
/// microseconds (0 = nothing measured yet). Updates race benignly: a lost
/// update only shifts the average a little.
#[derive(Debug, Default)]
pub struct Latency(AtomicU64);

impl Latency {
    pub(crate) fn update(&self, elapsed: Duration) {
        let sample = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let old = self.0.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            // 80 % history, 20 % this sample.
            (old.saturating_mul(4) / 5)
                .saturating_add(sample / 5)
                .max(1)
        };
        self.0.store(new, Ordering::Relaxed);
    }

    pub(crate) fn get_ms(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(micros as f64 / 1000.0),
        }
    }
}

/// Upper bounds (milliseconds) of the latency buckets behind the status
/// page's percentile; the last bucket is everything above.
pub const TOTAL_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

/// Totals over all requests, for rates on the status page.
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub duration_micros: AtomicU64,
    pub buckets: [AtomicU64; TOTAL_BUCKETS_MS.len() + 1],
}

impl Totals {
    pub(crate) fn record(&self, error: bool, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.duration_micros.fetch_add(micros, Ordering::Relaxed);
        let ms = micros / 1000;
        let bucket = TOTAL_BUCKETS_MS
            .iter()
            .position(|bound| ms < *bound)
            .unwrap_or(TOTAL_BUCKETS_MS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
}
