//! The bench's tables, in Markdown.

use std::fmt::Write as _;

use crate::SizeResult;
use crate::apiserver::{LEASE, NON_RESOURCE, VERBS, writes};

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// RSS added per cluster: against idle at this size, and against the
/// previous size.
fn per_cluster(results: &[SizeResult], i: usize) -> (f64, Option<f64>) {
    let r = &results[i];
    let vs_idle = (mb(r.after_quiet.rss_kb) - mb(r.idle.rss_kb)) / r.clusters as f64;
    let marginal = i
        .checked_sub(1)
        .map(|j| &results[j])
        .filter(|p| p.clusters < r.clusters)
        .map(|p| (mb(r.after_quiet.rss_kb) - mb(p.after_quiet.rss_kb)) / (r.clusters - p.clusters) as f64);
    (vs_idle, marginal)
}

pub fn markdown(results: &[SizeResult], quiet_minutes: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| clusters | pods | converged | floor | converged / floor | median cluster | operator CPU | RSS idle | RSS converged | RSS after {quiet_minutes} min | peak RSS | MB per cluster (vs idle / vs previous size) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, r) in results.iter().enumerate() {
        let (vs_idle, marginal) = per_cluster(results, i);
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} s | {:.1} s | {:.2} | {:.1} s | {:.1} s | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB | {:.2} / {} |",
            r.clusters,
            r.pods,
            r.converged_secs,
            r.floor_secs,
            r.converged_secs / r.floor_secs,
            r.converged_median_secs,
            r.converged.cpu_secs - r.idle.cpu_secs,
            mb(r.idle.rss_kb),
            mb(r.converged.rss_kb),
            mb(r.after_quiet.rss_kb),
            mb(r.after_quiet.hwm_kb),
            vs_idle,
            marginal.map_or("–".to_string(), |m| format!("{m:.2}")),
        );
    }

    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "API requests of the operator per cluster, apply → converged (kube-apiserver's count by verb; leases and discovery in total):"
    );
    let _ = writeln!(out);
    let shown: Vec<&str> = VERBS
        .iter()
        .copied()
        .filter(|v| results.iter().any(|r| r.requests.get(*v).copied().unwrap_or(0) > 0))
        .collect();
    let _ = write!(out, "| clusters |");
    for v in &shown {
        let _ = write!(out, " {v} |");
    }
    let _ = writeln!(out, " all | leases (total) | discovery (total) | operator's write counter |");
    let _ = write!(out, "|---|");
    for _ in &shown {
        let _ = write!(out, "---|");
    }
    let _ = writeln!(out, "---|---|---|---|");
    for r in results {
        let n = r.clusters as f64;
        let _ = write!(out, "| {} |", r.clusters);
        let mut all = 0;
        for v in &shown {
            let c = r.requests.get(*v).copied().unwrap_or(0);
            all += c;
            let _ = write!(out, " {:.1} |", c as f64 / n);
        }
        let _ = writeln!(
            out,
            " {:.1} | {} | {} | {:.1} per cluster (API server: {:.1}) |",
            all as f64 / n,
            r.requests.get(LEASE).copied().unwrap_or(0),
            r.requests.get(NON_RESOURCE).copied().unwrap_or(0),
            r.operator_writes as f64 / n,
            writes(&r.requests) as f64 / n,
        );
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "The quiet window after convergence (must write 0):");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| clusters | window | operator's write counter | writes (API server) | reads (API server) | lease writes | reconciles | last write |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in results {
        let reads: u64 = ["get", "list", "watch"].iter().map(|v| r.quiet_requests.get(*v).copied().unwrap_or(0)).sum();
        let lease_writes = r.quiet_requests.get(LEASE).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {} | {:.0} s | {} | {} | {} | {} (requests) | {} | {} |",
            r.clusters,
            r.quiet_secs,
            r.quiet_operator_writes,
            writes(&r.quiet_requests),
            reads,
            lease_writes,
            r.quiet_reconciles,
            r.quiet_last_write_secs.map_or("none".to_string(), |s| format!("{s:.1} s after convergence")),
        );
    }
    out
}
