//! Results: one row per measured figure, printed as a table and written as JSON.

use serde_json::{Value, json};

#[derive(Debug, Default, Clone)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: String,
    pub direct: Option<f64>,
    pub proxy: f64,
    /// e.g. ">= 0.95 ratio", with whether it passed.
    pub target: Option<(String, bool)>,
    pub note: String,
}

impl Row {
    pub fn new(scenario: &str, metric: &str, unit: &str, direct: Option<f64>, proxy: f64) -> Row {
        Row {
            scenario: scenario.into(),
            metric: metric.into(),
            unit: unit.into(),
            direct,
            proxy,
            ..Row::default()
        }
    }
    pub fn ratio(&self) -> Option<f64> {
        self.direct.filter(|d| *d != 0.0).map(|d| self.proxy / d)
    }
    pub fn target(mut self, what: &str, pass: bool) -> Row {
        self.target = Some((what.into(), pass));
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn print(rows: &[Row]) {
    println!(
        "\n{:<22} {:<28} {:>10} {:>10} {:>7}  {:<24} note",
        "scenario", "metric", "direct", "proxy", "ratio", "target"
    );
    for r in rows {
        let target = match &r.target {
            Some((t, pass)) => format!("{t} {}", if *pass { "PASS" } else { "FAIL" }),
            None => String::new(),
        };
        println!(
            "{:<22} {:<28} {:>10} {:>10} {:>7}  {:<24} {}",
            r.scenario,
            format!("{} ({})", r.metric, r.unit),
            r.direct.map(num).unwrap_or_else(|| "-".into()),
            num(r.proxy),
            r.ratio()
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
            target,
            r.note
        );
    }
}

pub fn json(rows: &[Row], meta: Value) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "scenario": r.scenario, "metric": r.metric, "unit": r.unit,
                "direct_median": r.direct, "proxy_median": r.proxy, "ratio": r.ratio(),
                "target": r.target.as_ref().map(|t| &t.0),
                "pass": r.target.as_ref().map(|t| t.1),
                "note": r.note,
            })
        })
        .collect();
    json!({ "meta": meta, "results": rows })
}

/// The CLIENT-BOUND marker when the load client's threads used more than 90 % of a
/// core (`busy` in cores) during a measured phase.
pub fn client_bound(busy: f64) -> Option<String> {
    (busy > 0.9).then(|| {
        format!(
            "CLIENT-BOUND (client threads {:.0}% of a core)",
            busy * 100.0
        )
    })
}

/// `note`, plus the CLIENT-BOUND marker when it applies.
pub fn with_client(note: String, busy: f64) -> String {
    match client_bound(busy) {
        Some(m) if note.is_empty() => m,
        Some(m) => format!("{note}; {m}"),
        None => note,
    }
}

/// The scenario's rows, or one FAILED row saying why (the run goes on).
pub fn or_failed(scenario: &str, r: std::io::Result<Vec<Row>>) -> Vec<Row> {
    r.unwrap_or_else(|e| {
        eprintln!("{scenario}: FAILED: {e}");
        vec![
            Row::new(scenario, "FAILED", "-", None, 0.0)
                .target("completes", false)
                .note(e.to_string()),
        ]
    })
}
