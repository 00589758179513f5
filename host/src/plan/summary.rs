//! What a strategy did over the whole workload, the cost/accuracy frontier, and the
//! recommendation.
//!
//! A failed request counts as a wrong answer: a policy that saves money by failing is not
//! cheaper. Latency percentiles are nearest-rank over every request, failed ones included.

use std::time::Duration;

use serde::Serialize;

use super::replay::Observation;
use super::spec::{Strategy, Target};
use super::workload::Item;

/// One strategy's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StrategyResult {
    /// Its name in the report.
    pub name: String,
    /// The spec it came from (sweep points share it).
    pub group: String,
    /// The pipeline.
    pub pipeline: String,
    /// The swept parameter's value, for sweep points.
    pub sweep_value: Option<f64>,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed.
    pub errors: usize,
    /// Share of requests answered with the label (0..1).
    pub accuracy: f64,
    /// Serverless spend over the whole workload, US dollars.
    pub cost_usd: f64,
    /// Spend per 1,000 requests, US dollars.
    pub usd_per_1k: f64,
    /// Median client-side latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile client-side latency, milliseconds.
    pub p95_ms: f64,
    /// Share of requests whose route was `local` (0..1).
    pub local_share: f64,
    /// Bytes sent off the box over the whole workload.
    pub egress_bytes: u64,
    /// The first failure's message, to say why.
    pub first_error: Option<String>,
    /// Whether no other strategy is both cheaper and at least as accurate (or as cheap and
    /// more accurate).
    pub on_frontier: bool,
}

/// Sums up one strategy's observations (one per item, in item order).
pub fn summarize(strategy: &Strategy, items: &[Item], seen: &[Observation]) -> StrategyResult {
    let requests = seen.len();
    let per = |n: usize| {
        if requests == 0 {
            0.0
        } else {
            n as f64 / requests as f64
        }
    };
    let correct = items
        .iter()
        .zip(seen)
        .filter(|(item, o)| o.error.is_none() && o.answer.as_deref() == Some(item.label.as_str()))
        .count();
    let cost_usd: f64 = seen.iter().map(|o| o.cost_usd).sum();
    let mut latencies: Vec<Duration> = seen.iter().map(|o| o.latency).collect();
    latencies.sort();
    StrategyResult {
        name: strategy.name.clone(),
        group: strategy.group.clone(),
        pipeline: strategy.pipeline.clone(),
        sweep_value: strategy.sweep.as_ref().map(|(_, v)| *v),
        requests,
        errors: seen.iter().filter(|o| o.error.is_some()).count(),
        accuracy: per(correct),
        cost_usd,
        usd_per_1k: if requests == 0 {
            0.0
        } else {
            cost_usd / requests as f64 * 1000.0
        },
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        local_share: per(seen.iter().filter(|o| o.route == "local").count()),
        egress_bytes: seen.iter().map(|o| o.egress_bytes).sum(),
        first_error: seen.iter().find_map(|o| o.error.clone()),
        on_frontier: false,
    }
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
}

/// Marks the strategies no other one beats on both cost and accuracy.
pub fn mark_frontier(results: &mut [StrategyResult]) {
    let points: Vec<(f64, f64)> = results.iter().map(|r| (r.usd_per_1k, r.accuracy)).collect();
    for (i, r) in results.iter_mut().enumerate() {
        let (cost, accuracy) = points[i];
        r.on_frontier = !points
            .iter()
            .enumerate()
            .any(|(j, &(c, a))| j != i && c <= cost && a >= accuracy && (c < cost || a > accuracy));
    }
}

/// The recommended strategy and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recommendation {
    /// The strategy's name, if one meets the target.
    pub strategy: Option<String>,
    /// The swept parameter's value it runs at.
    pub value: Option<f64>,
    /// The target in words.
    pub target: String,
    /// One sentence saying what was picked and why (or why nothing was).
    pub reason: String,
}

/// Picks among sweep points (or every strategy when there is no sweep): with a budget,
/// the most accurate within it; otherwise the cheapest that reaches the target accuracy
/// (default: the best accuracy seen, less one point).
pub fn recommend(results: &[StrategyResult], target: &Target) -> Recommendation {
    let swept: Vec<&StrategyResult> = results.iter().filter(|r| r.sweep_value.is_some()).collect();
    let candidates: Vec<&StrategyResult> = if swept.is_empty() {
        results.iter().collect()
    } else {
        swept
    };
    let pick =
        |r: Option<&&StrategyResult>, target: String, why: &dyn Fn(&StrategyResult) -> String| {
            match r {
                Some(r) => Recommendation {
                    strategy: Some(r.name.clone()),
                    value: r.sweep_value,
                    reason: why(r),
                    target,
                },
                None => Recommendation {
                    strategy: None,
                    value: None,
                    reason: format!("no candidate meets the target ({target})"),
                    target,
                },
            }
        };
    if let Some(budget) = target.max_usd_per_1k {
        let best = candidates
            .iter()
            .filter(|r| r.usd_per_1k <= budget)
            .max_by(|a, b| {
                a.accuracy
                    .total_cmp(&b.accuracy)
                    .then(b.usd_per_1k.total_cmp(&a.usd_per_1k))
            });
        return pick(
            best,
            format!("at most ${budget} per 1,000 requests"),
            &|r| {
                format!(
                    "{} is the most accurate ({:.2}%) at ${:.4} per 1,000 requests, within the budget",
                    r.name,
                    r.accuracy * 100.0,
                    r.usd_per_1k
                )
            },
        );
    }
    let (goal, described) = match target.accuracy {
        Some(a) => (a, format!("accuracy at least {:.2}%", a * 100.0)),
        None => {
            let best = results.iter().map(|r| r.accuracy).fold(0.0, f64::max);
            (
                best - 0.01,
                format!(
                    "accuracy within 1 point of the best strategy's {:.2}%",
                    best * 100.0
                ),
            )
        }
    };
    // Rounding: 0.97 - 0.01 must accept 0.96 exactly.
    let cheapest = candidates
        .iter()
        .filter(|r| r.accuracy + 1e-9 >= goal)
        .min_by(|a, b| {
            a.usd_per_1k
                .total_cmp(&b.usd_per_1k)
                .then(b.accuracy.total_cmp(&a.accuracy))
        });
    pick(cheapest, described, &|r| {
        format!(
            "{} is the cheapest reaching it: {:.2}% accurate at ${:.4} per 1,000 requests, {:.0}% served locally",
            r.name,
            r.accuracy * 100.0,
            r.usd_per_1k,
            r.local_share * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, sweep: Option<f64>, usd: f64, accuracy: f64) -> StrategyResult {
        StrategyResult {
            name: name.into(),
            group: name.into(),
            pipeline: "p".into(),
            sweep_value: sweep,
            requests: 100,
            errors: 0,
            accuracy,
            cost_usd: usd / 10.0,
            usd_per_1k: usd,
            p50_ms: 1.0,
            p95_ms: 2.0,
            local_share: 0.5,
            egress_bytes: 0,
            first_error: None,
            on_frontier: false,
        }
    }

    #[test]
    fn failures_count_as_wrong_and_percentiles_are_nearest_rank() {
        let strategy = Strategy {
            name: "s".into(),
            group: "s".into(),
            pipeline: "p".into(),
            params: vec![],
            sweep: None,
        };
        let item = |label: &str| Item {
            id: label.into(),
            content_type: "application/json".into(),
            body: vec![],
            label: label.into(),
            metadata: vec![],
        };
        let seen = |answer: Option<&str>, route: &str, ms: u64, error: bool| Observation {
            answer: answer.map(Into::into),
            route: route.into(),
            cost_usd: if route == "local" { 0.0 } else { 0.001 },
            egress_bytes: if route == "local" { 0 } else { 100 },
            latency: Duration::from_millis(ms),
            error: error.then(|| "boom".to_owned()),
        };
        let items = [item("1"), item("2"), item("3"), item("4")];
        let observed = [
            seen(Some("1"), "local", 1, false),
            seen(Some("9"), "local", 2, false),
            seen(Some("3"), "remote:strong", 40, false),
            seen(None, "", 50, true),
        ];
        let r = summarize(&strategy, &items, &observed);
        assert_eq!((r.requests, r.errors), (4, 1));
        assert_eq!(r.accuracy, 0.5);
        assert_eq!(r.local_share, 0.5);
        // The failed request's bytes and cost count too (it may have failed remotely).
        assert_eq!(r.egress_bytes, 200);
        assert!((r.usd_per_1k - 0.5).abs() < 1e-12);
        assert_eq!((r.p50_ms, r.p95_ms), (2.0, 50.0));
        assert_eq!(r.first_error.as_deref(), Some("boom"));
    }

    #[test]
    fn the_frontier_drops_dominated_points() {
        let mut rs = vec![
            result("local", None, 0.0, 0.90),
            result("remote", None, 1.0, 0.98),
            result("worse", None, 0.5, 0.89),
            result("mid", None, 0.2, 0.97),
        ];
        mark_frontier(&mut rs);
        let on: Vec<&str> = rs
            .iter()
            .filter(|r| r.on_frontier)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(on, ["local", "remote", "mid"]);
    }

    #[test]
    fn recommends_the_cheapest_sweep_point_meeting_the_target_or_the_best_within_budget() {
        let rs = vec![
            result("local", None, 0.0, 0.90),
            result("remote", None, 1.0, 0.98),
            result("t=0.5", Some(0.5), 0.05, 0.95),
            result("t=0.9", Some(0.9), 0.10, 0.97),
            result("t=0.99", Some(0.99), 0.30, 0.975),
        ];
        let default = recommend(&rs, &Target::default());
        assert_eq!(default.strategy.as_deref(), Some("t=0.9"));
        assert_eq!(default.value, Some(0.9));
        let strict = recommend(
            &rs,
            &Target {
                accuracy: Some(0.99),
                max_usd_per_1k: None,
            },
        );
        assert_eq!(strict.strategy, None);
        assert!(strict.reason.contains("no candidate"));
        let budget = recommend(
            &rs,
            &Target {
                accuracy: None,
                max_usd_per_1k: Some(0.2),
            },
        );
        assert_eq!(budget.strategy.as_deref(), Some("t=0.9"));
    }
}
