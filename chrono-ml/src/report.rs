//! The documented `generate_training_report()`: what each training saw and reached, and an SVG
//! with the loss curves and the held-out q-error distribution of the network against the
//! statistics baseline.

use std::fmt;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::estimator::{LearnedEstimator, TrainingRun};

/// The training report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainingReport {
    /// Every training since open, oldest first.
    pub runs: Vec<TrainingRun>,
    /// The plot, when one was written.
    pub plot: Option<PathBuf>,
}

impl fmt::Display for TrainingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs.is_empty() {
            return writeln!(f, "no training yet (ANALYZE a table to train its model)");
        }
        for r in &self.runs {
            writeln!(
                f,
                "{} v{} ({}): {} examples, {} held out, {} epochs, loss {:.3} → {:.3}, {:.2} s, {}",
                r.table,
                r.version,
                r.trigger,
                r.examples,
                r.held_out,
                r.epochs,
                r.loss_per_epoch.first().copied().unwrap_or(0.0),
                r.loss_per_epoch.last().copied().unwrap_or(0.0),
                r.seconds,
                if r.in_use { "in use" } else { "not in use" }
            )?;
            if let Some(b) = &r.before {
                writeln!(f, "  before    q-error {b}")?;
            }
            writeln!(f, "  after     q-error {}", r.after.learned)?;
            writeln!(f, "  baseline  q-error {}", r.after.baseline)?;
        }
        if let Some(p) = &self.plot {
            writeln!(f, "plot: {}", p.display())?;
        }
        Ok(())
    }
}

impl LearnedEstimator {
    /// The training report; with `dir`, also writes `training-report.svg` there.
    pub fn training_report(&self, dir: Option<&Path>) -> std::io::Result<TrainingReport> {
        let runs = self.training_runs();
        let plot = match dir {
            Some(d) if !runs.is_empty() => {
                std::fs::create_dir_all(d)?;
                let path = d.join("training-report.svg");
                plot(&runs, &path).map_err(std::io::Error::other)?;
                Some(path)
            }
            _ => None,
        };
        Ok(TrainingReport { runs, plot })
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot(runs: &[TrainingRun], path: &Path) -> Result<(), String> {
    let err = |e: &dyn fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1100, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(550);

    // Loss curves.
    let epochs = runs
        .iter()
        .map(|r| r.loss_per_epoch.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let top = runs
        .iter()
        .flat_map(|r| r.loss_per_epoch.iter().copied())
        .fold(0.1f32, f32::max);
    let mut chart = ChartBuilder::on(&left)
        .caption("training loss (mean |ln q-error|)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .build_cartesian_2d(0..epochs, 0f32..top * 1.05)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, r) in runs.iter().enumerate().rev().take(6) {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                r.loss_per_epoch.iter().enumerate().map(|(e, l)| (e, *l)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("{} v{} ({})", r.table, r.version, r.trigger))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(&e))?;

    // Held-out q-error distribution of the latest run: share of queries with q-error ≤ x.
    let last = runs.last().ok_or("no runs")?;
    let max_q = last
        .learned_errors
        .iter()
        .chain(&last.baseline_errors)
        .fold(10f64, |a, b| a.max(*b))
        .log10()
        .ceil();
    let mut chart = ChartBuilder::on(&right)
        .caption(
            format!("held-out q-error, {} v{}", last.table, last.version),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..max_q, 0f64..1.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("log10 q-error")
        .y_desc("share of queries ≤")
        .draw()
        .map_err(|e| err(&e))?;
    for (name, errors, color) in [
        ("learned", &last.learned_errors, COLORS[0]),
        ("statistics", &last.baseline_errors, COLORS[1]),
    ] {
        let mut sorted = errors.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        chart
            .draw_series(LineSeries::new(
                sorted
                    .iter()
                    .enumerate()
                    .map(|(i, q)| (q.log10(), (i + 1) as f64 / n)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
