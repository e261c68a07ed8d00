//! Throughput and latency percentiles of one measured phase.

use serde::Serialize;

use super::client::LoadResult;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    pub name: String,
    /// Concurrent clients (connections or, for the storage ceilings, 1).
    pub clients: usize,
    pub secs: f64,
    pub requests: u64,
    pub docs: u64,
    pub requests_per_sec: f64,
    pub docs_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub bad_status: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<String>,
    /// CPU seconds the server process used per wall second (2.0 = both cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<f64>,
    /// CPU seconds this benchmark process (the client) used per wall second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cpu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

impl Phase {
    pub fn from_latencies(name: &str, clients: usize, secs: f64, mut lat_us: Vec<u32>) -> Phase {
        lat_us.sort_unstable();
        let requests = lat_us.len() as u64;
        Phase {
            name: name.to_string(),
            clients,
            secs: round(secs, 2),
            requests,
            docs: requests,
            requests_per_sec: round(requests as f64 / secs.max(1e-9), 1),
            docs_per_sec: round(requests as f64 / secs.max(1e-9), 1),
            p50_ms: round(percentile(&lat_us, 50.0), 3),
            p90_ms: round(percentile(&lat_us, 90.0), 3),
            p99_ms: round(percentile(&lat_us, 99.0), 3),
            max_ms: round(lat_us.last().map_or(0.0, |m| f64::from(*m) / 1000.0), 3),
            ..Phase::default()
        }
    }

    pub fn from_load(name: &str, clients: usize, r: LoadResult) -> Phase {
        let mut p = Phase::from_latencies(name, clients, r.secs, r.lat_us);
        p.requests = r.requests;
        p.docs = r.docs;
        p.docs_per_sec = round(r.docs as f64 / r.secs.max(1e-9), 1);
        p.errors = r.errors;
        p.bad_status = r.bad_status;
        p.first_problem = r.first_problem;
        if r.inserted != 0 && r.inserted != r.docs {
            p.note = Some(format!(
                "server reported {} inserted of {} sent",
                r.inserted, r.docs
            ));
        }
        p
    }
}
