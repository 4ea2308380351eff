//! Wall time per stage, printed at the end of a command (also when a stage fails), so every CI
//! log shows where its minutes went.

use std::time::{Duration, Instant};

use anyhow::Result;

/// Stages run so far and how long each took.
pub struct Timer {
    start: Instant,
    rows: Vec<(String, Duration, bool)>,
}

impl Default for Timer {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            rows: Vec::new(),
        }
    }
}

impl Timer {
    /// Runs `f` as stage `name`, recording its time and whether it succeeded.
    pub fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t0 = Instant::now();
        let r = f();
        self.rows.push((name.to_string(), t0.elapsed(), r.is_ok()));
        r
    }

    /// The table: one `xtask: time` line per stage, then the total.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for (name, d, ok) in &self.rows {
            s += &format!(
                "xtask: time {:<24} {:>8}{}\n",
                name,
                fmt(*d),
                if *ok { "" } else { "  FAILED" }
            );
        }
        s += &format!("xtask: time {:<24} {:>8}\n", "total", fmt(self.start.elapsed()));
        s
    }
}

/// `12.3 s` under a minute, else `4m 05s`.
fn fmt(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let s = secs.round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_each_stage_and_marks_the_failed_one() {
        let mut t = Timer::default();
        t.step("lint", || Ok(())).unwrap();
        assert!(t
            .step("rust", || -> Result<()> { anyhow::bail!("boom") })
            .is_err());
        let r = t.report();
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines.len(), 3, "{r}");
        assert!(
            lines[0].starts_with("xtask: time lint") && !lines[0].contains("FAILED"),
            "{r}"
        );
        assert!(lines[1].contains("rust") && lines[1].ends_with("FAILED"), "{r}");
        assert!(lines[2].starts_with("xtask: time total"), "{r}");
        assert_eq!(fmt(Duration::from_secs(245)), "4m 05s");
        assert_eq!(fmt(Duration::from_millis(1500)), "1.5 s");
    }
}
