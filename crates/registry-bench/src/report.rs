//! The printed table: each figure for Berth and docker-registry, the ratio,
//! the target and whether it was met. Medians of the repetitions.

/// Rows gathered during the run.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<[String; 5]>,
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn verdict(met: bool) -> String {
    if met {
        "met".to_owned()
    } else {
        "MISSED".to_owned()
    }
}

impl Report {
    pub fn baseline(&mut self, name: &str, value: f64) {
        self.rows.push([
            name.to_owned(),
            format!("{value:.0} MiB/s"),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    pub fn info(&mut self, name: &str, value: f64) {
        self.rows.push([
            name.to_owned(),
            format!("{value:.1}"),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    /// Berth's median against docker-registry's, with a minimum ratio.
    pub fn compare(&mut self, name: &str, values: &[Vec<f64>; 2], target: f64) {
        let (berth, distribution) = (median(&values[0]), median(&values[1]));
        let ratio = berth / distribution;
        self.rows.push([
            name.to_owned(),
            format!("{berth:.0}"),
            format!("{distribution:.0}"),
            format!("{ratio:.2}x (target >= {target}x)"),
            verdict(ratio >= target),
        ]);
    }

    /// Berth's median beside docker-registry's, with no target.
    pub fn pair(&mut self, name: &str, values: &[Vec<f64>; 2]) {
        let (berth, distribution) = (median(&values[0]), median(&values[1]));
        self.rows.push([
            name.to_owned(),
            format!("{berth:.0}"),
            format!("{distribution:.0}"),
            format!("{:.2}x", berth / distribution),
            String::new(),
        ]);
    }

    /// Berth's median as a share of a baseline.
    pub fn share_of(&mut self, name: &str, values: &[f64], baseline: f64, target: f64) {
        let share = median(values) / baseline;
        self.rows.push([
            name.to_owned(),
            format!("{:.0}%", share * 100.0),
            String::new(),
            format!("target >= {:.0}%", target * 100.0),
            verdict(share >= target),
        ]);
    }

    /// A Berth figure that must stay at or under a ceiling.
    pub fn ceiling(&mut self, name: &str, value: f64, limit: f64) {
        self.rows.push([
            name.to_owned(),
            format!("{value:.1}"),
            String::new(),
            format!("target <= {limit}"),
            verdict(value <= limit),
        ]);
    }

    /// A Berth figure that must stay at or under `limit` times Distribution's.
    pub fn ceiling_ratio(&mut self, name: &str, berth: f64, distribution: f64, limit: f64) {
        let ratio = berth / distribution;
        self.rows.push([
            name.to_owned(),
            format!("{berth:.2}"),
            format!("{distribution:.2}"),
            format!("{ratio:.3}x (target <= {limit}x)"),
            verdict(ratio <= limit),
        ]);
    }

    pub fn print(&self) {
        let header = ["measure", "berth", "docker-registry", "ratio", "verdict"];
        println!("| {} |", header.join(" | "));
        println!("|{}", " --- |".repeat(header.len()));
        for row in &self.rows {
            println!("| {} |", row.join(" | "));
        }
    }
}
