//! Request metrics: counts by route, method and status, and latency histograms by route,
//! rendered in Prometheus' text format by `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Upper bounds of the latency buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0,
    60_000.0,
];
/// Distinct (route, method, status) series kept; beyond it new ones are folded into
/// `other` so a scanner cannot grow memory without bound.
pub const SERIES_MAX: usize = 1_024;

#[derive(Debug, Default)]
struct Latency {
    buckets: [u64; LATENCY_BUCKETS_MS.len()],
    count: u64,
    sum_ms: f64,
}

#[derive(Debug, Default)]
pub struct RequestMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
}

impl RequestMetrics {
    fn record(&self, route: String, method: String, status: u16, ms: f64) {
        {
            let mut requests = self.requests.lock().expect("metrics lock");
            let len = requests.len();
            let key = (route.clone(), method, status);
            let key = if len >= SERIES_MAX && !requests.contains_key(&key) {
                ("other".into(), String::new(), 0)
            } else {
                key
            };
            *requests.entry(key).or_default() += 1;
        }
        let mut latency = self.latency.lock().expect("metrics lock");
        let len = latency.len();
        let route = if len >= SERIES_MAX && !latency.contains_key(&route) {
            "other".into()
        } else {
            route
        };
        let l = latency.entry(route).or_default();
        for (bucket, bound) in l.buckets.iter_mut().zip(LATENCY_BUCKETS_MS) {
            if ms <= bound {
                *bucket += 1;
            }
        }
        l.count += 1;
        l.sum_ms += ms;
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# TYPE taskswarm_http_requests_total counter");
        for ((route, method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "taskswarm_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE taskswarm_http_request_duration_ms histogram");
        for (route, l) in self.latency.lock().expect("metrics lock").iter() {
            for (n, bound) in l.buckets.iter().zip(LATENCY_BUCKETS_MS) {
                let _ = writeln!(out, "taskswarm_http_request_duration_ms_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "taskswarm_http_request_duration_ms_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "taskswarm_http_request_duration_ms_sum{{route=\"{route}\"}} {}",
                l.sum_ms
            );
            let _ = writeln!(
                out,
                "taskswarm_http_request_duration_ms_count{{route=\"{route}\"}} {}",
                l.count
            );
        }
    }
}

/// Middleware: times every request under its route template (`/v1/tasks/{id}`).
/// Each request runs in a span naming the node, the route and the path (which carries
/// the task id), so every log line inside says where it came from.
pub async fn track(
    State((metrics, node_id)): State<(Arc<RequestMetrics>, u64)>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let span = tracing::debug_span!("request", node = node_id, %method, path = %req.uri().path());
    let start = Instant::now();
    let response = next.run(req).instrument(span).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(node = node_id, %method, %route, status = response.status().as_u16(), ms, "request");
    metrics.record(route, method, response.status().as_u16(), ms);
    response
}
