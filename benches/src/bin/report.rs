//! Reads criterion's results of the `compare` group and prints the documented table —
//! workload, ChronoDB, SQLite, ratio (and raw RocksDB, the floor, where measured) — then,
//! when the `scale` bench has run, how each read workload's cost grows from 10k to 1M
//! orders, and gRPC point queries per second when the `grpc` bench has run; and writes a
//! bar chart of the ratios as SVG.
//!
//! `cargo run --release -p benches --bin report -- [CRITERION_DIR] [SVG]`
//! (defaults: `$CARGO_TARGET_DIR/criterion` or `target/criterion`, `bench-report.svg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// Median time of one measurement, in nanoseconds.
fn median_ns(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new").join("estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("median")?.get("point_estimate")?.as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        Path::new(&target).join("criterion")
    });
    let svg = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench-report.svg"));
    let group = dir.join("compare");
    // workload → contender → median ns
    let mut results: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let Ok(workloads) = std::fs::read_dir(&group) else {
        eprintln!(
            "no criterion results in {} (run `cargo bench -p benches --bench compare --bench writes` first)",
            group.display()
        );
        std::process::exit(1);
    };
    for w in workloads.flatten().filter(|e| e.path().is_dir()) {
        let name = w.file_name().to_string_lossy().to_string();
        if name == "report" {
            continue;
        }
        for c in std::fs::read_dir(w.path()).into_iter().flatten().flatten() {
            let contender = c.file_name().to_string_lossy().to_string();
            if let Some(ns) = median_ns(&c.path()) {
                results
                    .entry(name.clone())
                    .or_default()
                    .insert(contender, ns);
            }
        }
    }
    println!(
        "| workload | ChronoDB | SQLite | ChronoDB / SQLite | RocksDB (raw) | ChronoDB / raw |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (w, m) in &results {
        let Some(s) = m.get("SQLite") else {
            continue;
        };
        let raw = m.get("RocksDB_raw");
        // The default configuration, then the audit trail off where a bench measured it.
        for (contender, label) in [
            ("ChronoDB", w.clone()),
            ("ChronoDB_audit_off", format!("{w} (audit off)")),
        ] {
            let Some(c) = m.get(contender) else {
                continue;
            };
            let ratio = c / s;
            ratios.push((label.clone(), ratio));
            println!(
                "| {label} | {} | {} | {:.2}× | {} | {} |",
                human(*c),
                human(*s),
                ratio,
                raw.map(|r| human(*r)).unwrap_or_else(|| "–".into()),
                raw.map(|r| format!("{:.1}×", c / r))
                    .unwrap_or_else(|| "–".into()),
            );
        }
    }
    println!(
        "\nratio = median ChronoDB time / median SQLite time in the same run (lower is better; < 1 means ChronoDB is faster)"
    );
    scale(&dir);
    grpc(&dir);
    if let Err(e) = chart(&ratios, &svg) {
        eprintln!("could not write {}: {e}", svg.display());
        std::process::exit(1);
    }
    println!("chart: {}", svg.display());
}

/// The `grpc` group (`cargo bench --bench grpc`): point queries per second through the
/// server, from the median time per query with 8 clients sharing the iterations.
fn grpc(dir: &Path) {
    let Some(ns) = median_ns(&dir.join("grpc").join("point_query").join("8_clients")) else {
        return;
    };
    println!(
        "\ngRPC point queries on loopback, server and 8 clients on the same machine: {:.0} queries/s ({} per query)",
        1e9 / ns,
        human(ns)
    );
}

/// `10k`, `100k`, `1M` → the number.
fn size_of(label: &str) -> Option<f64> {
    let (num, mult) = match label.strip_suffix('M') {
        Some(n) => (n, 1e6),
        None => (label.strip_suffix('k')?, 1e3),
    };
    Some(num.parse::<f64>().ok()? * mult)
}

/// The `scale` group (`cargo bench --bench scale`): each workload at each size, per query
/// for point and index reads, per row for whole-table workloads, and how the ChronoDB time
/// at the largest size compares with the smallest.
fn scale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("scale")) else {
        return;
    };
    // workload → size → contender → median ns
    let mut results: BTreeMap<String, BTreeMap<u64, BTreeMap<String, f64>>> = BTreeMap::new();
    for w in entries.flatten().filter(|e| e.path().is_dir()) {
        let name = w.file_name().to_string_lossy().to_string();
        let Some((workload, label)) = name.rsplit_once('_') else {
            continue;
        };
        let Some(size) = size_of(label) else {
            continue;
        };
        for c in std::fs::read_dir(w.path()).into_iter().flatten().flatten() {
            if let Some(ns) = median_ns(&c.path()) {
                results
                    .entry(workload.to_string())
                    .or_default()
                    .entry(size as u64)
                    .or_default()
                    .insert(c.file_name().to_string_lossy().to_string(), ns);
            }
        }
    }
    if results.is_empty() {
        return;
    }
    println!("\nHow cost grows with size (orders; users a tenth of them):\n");
    println!(
        "| workload | orders | ChronoDB | SQLite | ChronoDB / SQLite | ChronoDB vs smallest |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (w, sizes) in &results {
        let per_row = w.starts_with("full_scan") || w.starts_with("count_group_by");
        let unit = if per_row { "per row" } else { "per query" };
        let mut first: Option<f64> = None;
        for (size, m) in sizes {
            let (Some(c), Some(s)) = (m.get("ChronoDB"), m.get("SQLite")) else {
                continue;
            };
            let div = if per_row { *size as f64 } else { 1.0 };
            let (c, s) = (c / div, s / div);
            let base = *first.get_or_insert(c);
            println!(
                "| {w} ({unit}) | {size} | {} | {} | {:.2}× | {:.2}× |",
                human(c),
                human(s),
                c / s,
                c / base
            );
        }
    }
}

fn chart(ratios: &[(String, f64)], path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let height = 80 + 28 * ratios.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let lo = ratios
        .iter()
        .map(|r| r.1)
        .fold(1.0f64, f64::min)
        .log10()
        .floor()
        - 0.1;
    let hi = ratios
        .iter()
        .map(|r| r.1)
        .fold(1.0f64, f64::max)
        .log10()
        .ceil()
        + 0.1;
    let n = ratios.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "ChronoDB time / SQLite time (log scale; left of 1 = ChronoDB faster)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(300)
        .build_cartesian_2d(lo..hi, 0..n)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|x| format!("{:.2}", 10f64.powf(*x)))
        .y_label_formatter(&|i| ratios.get(*i).map(|r| r.0.clone()).unwrap_or_default())
        .y_labels(n)
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(ratios.iter().enumerate().map(|(i, (_, r))| {
            let x = r.log10();
            let color = if *r <= 1.0 {
                RGBColor(44, 160, 44)
            } else {
                RGBColor(214, 39, 40)
            };
            Rectangle::new(
                [(0f64.min(x), i), (0f64.max(x), i + 1)],
                color.mix(0.7).filled(),
            )
        }))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0), (0.0, n)],
            BLACK.stroke_width(1),
        )))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
