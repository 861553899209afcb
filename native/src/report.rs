//! What a run leaves for a person: metrics as JSON lines, and the loss curve as an SVG picture.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use hearth_core::Error;
use hearth_core::error::io;

/// The peak resident set of this process (Linux's `VmHWM`), bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The progress bar of a loop of optimizer steps (`msg`: loss, learning rate, speed…).
pub fn steps_bar(steps: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("template")
        .progress_chars("##-"),
    );
    bar
}

/// Appends one JSON object per line to `metrics.jsonl`.
pub struct Metrics {
    file: File,
    path: std::path::PathBuf,
}

impl Metrics {
    pub fn open(path: &Path, truncate: bool) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .create(true)
            .append(!truncate)
            .write(true)
            .truncate(truncate)
            .open(path)
            .map_err(io("open", path.display()))?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    /// Appends `record` as one whole line in one write (`writeln!` on a file would issue a write per
    /// formatted piece, so a reader following the file could see half a record); a failed write (a
    /// full disk) is an error, never a silently lost line.
    pub fn log(&mut self, record: &serde_json::Value) -> Result<(), Error> {
        let line = format!("{record}\n");
        self.file.write_all(line.as_bytes()).and_then(|()| self.file.flush()).map_err(io("write", self.path.display()))
    }
}

/// Reads `(step, train loss)` and `(step, val loss)` back from a metrics file.
pub fn read_curves(path: &Path) -> (Vec<(f64, f64)>, Vec<(f64, f64)>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for v in text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        let step = v["step"].as_f64().unwrap_or(0.0);
        if let Some(l) = v["loss"].as_f64() {
            train.push((step, l));
        }
        if let Some(l) = v["val_loss"].as_f64() {
            val.push((step, l));
        }
    }
    (train, val)
}

/// A loss-curve chart as a standalone SVG (any browser opens it). Hand-written rather than
/// plotters: plotters lays out text through font-kit and system fonts, which a headless CI machine
/// may lack; two polylines, axes and labels are a page of SVG.
pub fn loss_curve_svg(train: &[(f64, f64)], val: &[(f64, f64)], title: &str) -> String {
    let (w, h, left, right, top, bottom) = (800.0, 480.0, 70.0, 20.0, 40.0, 50.0);
    let all = train.iter().chain(val);
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let y_max = all.clone().map(|p| p.1).fold(f64::MIN, f64::max).max(0.1);
    let y_min = all.map(|p| p.1).fold(f64::MAX, f64::min).min(y_max - 0.1).max(0.0);
    let sx = |x: f64| left + x / x_max * (w - left - right);
    let sy = |y: f64| top + (y_max - y) / (y_max - y_min) * (h - top - bottom);
    let line = |pts: &[(f64, f64)], color: &str, width: f64| {
        let p: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        format!(r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{}"/>"#, p.join(" "))
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    for i in 0..=5 {
        let y = y_min + (y_max - y_min) * i as f64 / 5.0;
        s += &format!(
            r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{y:.2}</text>"##,
            w - right,
            sy(y),
            sy(y),
            left - 6.0,
            sy(y) + 4.0
        );
        let x = x_max * i as f64 / 5.0;
        s += &format!(r#"<text x="{:.1}" y="{}" text-anchor="middle">{x:.0}</text>"#, sx(x), h - bottom + 18.0);
    }
    s += &format!(
        r#"<text x="{}" y="{}" text-anchor="middle">optimizer step</text>"#,
        (left + w - right) / 2.0,
        h - 10.0
    );
    s += &format!(
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">loss (nats/token)</text>"#,
        h / 2.0,
        h / 2.0
    );
    s += &line(train, "#1f77b4", 1.5);
    s += &line(val, "#d62728", 2.5);
    s += &format!(
        r##"<text x="{}" y="{}" fill="#1f77b4">train</text><text x="{}" y="{}" fill="#d62728">validation</text></svg>"##,
        w - 150.0,
        top + 14.0,
        w - 90.0,
        top + 14.0
    );
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
