//! Prometheus metrics (`GET /metrics`): jobs by plugin, tenant and outcome, queue depth,
//! job duration, real-time factor, peak memory and fuel (of metered jobs) per plugin,
//! active SSE streams and plugin load failures.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::runtime::ResourceUse;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    plugin: String,
    tenant: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

type HistogramFamily = Family<PluginLabels, Histogram, fn() -> Histogram>;

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    queued: Gauge,
    running: Gauge,
    duration: HistogramFamily,
    real_time_factor: HistogramFamily,
    peak_memory: HistogramFamily,
    fuel: HistogramFamily,
    sse_streams: Gauge,
    plugins_loaded: Gauge,
    plugin_load_failures: Gauge,
    shared_model_bytes: Gauge,
    /// Where `shared_model_bytes` is read from when the metrics are encoded.
    shared_weights: std::sync::OnceLock<Arc<crate::runtime::WeightsCache>>,
}

fn duration_histogram() -> Histogram {
    // 50 ms .. ~7 h
    Histogram::new(exponential_buckets(0.05, 2.0, 19))
}

fn rtf_histogram() -> Histogram {
    // 0.01 .. ~10: below 1 is faster than real time
    Histogram::new(exponential_buckets(0.01, 2.0, 11))
}

fn memory_histogram() -> Histogram {
    // 1 MiB .. 8 GiB
    Histogram::new(exponential_buckets(1_048_576.0, 2.0, 14))
}

fn fuel_histogram() -> Histogram {
    // 1 M .. ~270 T units: a tiny plugin's start-up to hours of model inference
    Histogram::new(exponential_buckets(1e6, 4.0, 15))
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Self::with_registry(Registry::with_prefix("sandscribe"))
    }

    /// Metrics whose every series carries `node="<id>"`, so the series of several nodes
    /// scraped into one Prometheus stay apart.
    pub fn for_node(node: &str) -> Arc<Self> {
        let labels = [(
            std::borrow::Cow::Borrowed("node"),
            std::borrow::Cow::Owned(node.to_owned()),
        )];
        Self::with_registry(Registry::with_prefix_and_labels(
            "sandscribe",
            labels.into_iter(),
        ))
    }

    fn with_registry(mut registry: Registry) -> Arc<Self> {
        let jobs = Family::<JobLabels, Counter>::default();
        let queued = Gauge::default();
        let running = Gauge::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let real_time_factor: HistogramFamily = Family::new_with_constructor(rtf_histogram);
        let peak_memory: HistogramFamily = Family::new_with_constructor(memory_histogram);
        let fuel: HistogramFamily = Family::new_with_constructor(fuel_histogram);
        let sse_streams = Gauge::default();
        let plugins_loaded = Gauge::default();
        let plugin_load_failures = Gauge::default();
        let shared_model_bytes = Gauge::default();
        registry.register(
            "jobs",
            "Finished jobs by plugin, tenant and outcome",
            jobs.clone(),
        );
        registry.register("queue_depth", "Jobs waiting in the queue", queued.clone());
        registry.register("jobs_running", "Jobs running now", running.clone());
        registry.register(
            "job_duration_seconds",
            "Wall time of finished jobs in the sandbox",
            duration.clone(),
        );
        registry.register(
            "job_real_time_factor",
            "Processing time divided by audio length, per completed job",
            real_time_factor.clone(),
        );
        registry.register(
            "job_peak_memory_bytes",
            "Peak linear memory of a job's store",
            peak_memory.clone(),
        );
        registry.register(
            "job_fuel_consumed",
            "Fuel burnt by a metered job (about one unit per WebAssembly instruction)",
            fuel.clone(),
        );
        registry.register(
            "sse_streams",
            "Open Server-Sent Events streams",
            sse_streams.clone(),
        );
        registry.register("plugins_loaded", "Plugins loaded", plugins_loaded.clone());
        registry.register(
            "plugin_load_failures",
            "Plugin folders that failed to load",
            plugin_load_failures.clone(),
        );
        registry.register(
            "shared_model_bytes",
            "Bytes of plugin weights held once and shared by every job of a plugin build",
            shared_model_bytes.clone(),
        );
        Arc::new(Self {
            shared_model_bytes,
            shared_weights: std::sync::OnceLock::new(),
            registry,
            jobs,
            queued,
            running,
            duration,
            real_time_factor,
            peak_memory,
            fuel,
            sse_streams,
            plugins_loaded,
            plugin_load_failures,
        })
    }

    /// Records a finished job; `usage` when the plugin ran.
    pub fn job_finished(
        &self,
        plugin: &str,
        tenant: &str,
        outcome: &str,
        usage: Option<&ResourceUse>,
        audio_ms: u64,
    ) {
        self.jobs
            .get_or_create(&JobLabels {
                plugin: plugin.to_owned(),
                tenant: tenant.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        let labels = PluginLabels {
            plugin: plugin.to_owned(),
        };
        // Fuel is exact, so a metered job counts even when it took under a millisecond.
        if let Some(fuel) = usage.and_then(|u| u.fuel_consumed) {
            self.fuel.get_or_create(&labels).observe(fuel as f64);
        }
        let Some(usage) = usage.filter(|u| u.wall_ms > 0) else {
            return;
        };
        let seconds = usage.wall_ms as f64 / 1000.0;
        self.duration.get_or_create(&labels).observe(seconds);
        self.peak_memory
            .get_or_create(&labels)
            .observe(usage.peak_memory_bytes as f64);
        if outcome == "completed" && audio_ms > 0 {
            self.real_time_factor
                .get_or_create(&labels)
                .observe(usage.wall_ms as f64 / audio_ms as f64);
        }
    }

    pub fn set_queue(&self, queued: usize, running: usize) {
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
        self.running.set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    pub fn set_plugins(&self, loaded: usize, failed: usize) {
        self.plugins_loaded
            .set(i64::try_from(loaded).unwrap_or(i64::MAX));
        self.plugin_load_failures
            .set(i64::try_from(failed).unwrap_or(i64::MAX));
    }

    /// Counts an SSE stream as open until the guard is dropped.
    pub fn sse_stream(self: &Arc<Self>) -> SseGuard {
        self.sse_streams.inc();
        SseGuard(self.clone())
    }

    /// Reports the runtime's shared weights in every exposition from now on.
    pub fn watch_shared_weights(&self, cache: Arc<crate::runtime::WeightsCache>) {
        let _ = self.shared_weights.set(cache);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        if let Some(cache) = self.shared_weights.get() {
            self.shared_model_bytes
                .set(i64::try_from(cache.used_bytes()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Keeps the SSE stream gauge up while a stream is open.
pub struct SseGuard(Arc<Metrics>);

impl Drop for SseGuard {
    fn drop(&mut self) {
        self.0.sse_streams.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_of_a_node_carries_its_id() {
        let metrics = Metrics::for_node("box-1:8080");
        metrics.set_queue(3, 1);
        let text = metrics.encode();
        let queued = text
            .lines()
            .find(|l| l.starts_with("sandscribe_queue_depth"))
            .expect("the queued gauge");
        assert!(queued.contains("node=\"box-1:8080\""), "{queued}");
    }

    #[test]
    fn encodes_jobs_queue_and_streams() {
        let metrics = Metrics::new();
        let usage = ResourceUse {
            wall_ms: 500,
            peak_memory_bytes: 10 << 20,
            fuel_consumed: Some(3_000_000),
            ..Default::default()
        };
        metrics.job_finished("echo", "default", "completed", Some(&usage), 1000);
        metrics.set_queue(3, 1);
        let guard = metrics.sse_stream();
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"sandscribe_jobs_total{plugin="echo",tenant="default",outcome="completed"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("sandscribe_queue_depth 3"), "{text}");
        assert!(
            text.contains(r#"sandscribe_job_fuel_consumed_sum{plugin="echo"} 3000000"#),
            "{text}"
        );
        assert!(text.contains("sandscribe_sse_streams 1"), "{text}");
        assert!(
            text.contains(r#"sandscribe_job_real_time_factor_sum{plugin="echo"} 0.5"#),
            "{text}"
        );
        drop(guard);
        assert!(metrics.encode().contains("sandscribe_sse_streams 0"));
    }
}
