//! SVG plots of a study (plotters): power over time with the task windows, score against
//! energy with the Pareto front, and a scheme × task heatmap of EOR.

use std::path::Path;

use eai_power::Signal;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::report::StudyReport;
use crate::scheme::Scheme;
use crate::study::StudyResults;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Plot { path: path.display().to_string(), reason }
}

fn prepare(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Power of every source over the study, with each task window shaded and labelled.
/// Without a recorded timeline, draws a placeholder saying so.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] naming the file.
pub fn power_over_time(r: &StudyResults, path: &Path) -> Result<()> {
    prepare(path)?;
    let e = plot_err(path);
    let root = SVGBackend::new(path, (1100, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let Some(tl) = &r.timeline else {
        root.draw(&Text::new(
            "no power source was sampled: no power trace",
            (40, 250),
            ("sans-serif", 22),
        ))
        .map_err(|x| e(x.to_string()))?;
        return root.present().map_err(|x| e(x.to_string()));
    };
    // The study's clock starts at the first task's window start minus its offset; use the
    // windows' own starts (seconds since the meter's anchor) for both axes.
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (i, src) in tl.sources.iter().enumerate() {
        let ch = tl
            .channel(i, Signal::InstantPower)
            .or_else(|| tl.channel(i, Signal::AveragePower))
            .filter(|c| !c.samples.is_empty());
        if let Some(ch) = ch {
            let pts = thin(ch.samples.iter().map(|s| (s.t_s(), s.value)).collect(), 4000);
            series.push((format!("{} ({})", src.id, src.name), pts));
        } else if let Some(ch) = tl.channel(i, Signal::EnergyCounter) {
            // Power from counter differences over ≥ 100 ms.
            let mut pts = Vec::new();
            let mut last: Option<(f64, f64)> = None;
            for s in &ch.samples {
                let (t, j) = (s.t_s(), s.value);
                match last {
                    Some((t0, j0)) if t - t0 >= 0.1 => {
                        if j >= j0 {
                            pts.push(((t + t0) / 2.0, (j - j0) / (t - t0)));
                        }
                        last = Some((t, j));
                    }
                    None => last = Some((t, j)),
                    _ => {}
                }
            }
            series.push((format!("{} ({}, from counter)", src.id, src.name), thin(pts, 4000)));
        }
    }
    let task_windows: Vec<(&str, f64, f64)> = r
        .windows
        .iter()
        .filter(|w| w.name.contains("/rep") && !w.name.contains(':'))
        .map(|w| (w.name.as_str(), w.start.0, w.start.0 + w.duration.0))
        .collect();
    let all_t = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let (mut t0, mut t1) =
        all_t.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| (a.min(t), b.max(t)));
    for w in &task_windows {
        t0 = t0.min(w.1);
        t1 = t1.max(w.2);
    }
    if !(t0.is_finite() && t1 > t0) {
        t0 = 0.0;
        t1 = 1.0;
    }
    let pmax =
        series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(1.0) * 1.15;
    let title = format!("Power over the study ({})", kind_label(r));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..(t1 - t0), 0.0..pmax)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("time since the first sample (s)")
        .y_desc("power (W)")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let schemes: Vec<&str> = r.settings.schemes.iter().map(|s| s.label()).collect();
    for (name, a, b) in &task_windows {
        let scheme_idx =
            schemes.iter().position(|s| name.starts_with(&format!("{s}/"))).unwrap_or(0);
        let c = color(scheme_idx);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a - t0, 0.0), (b - t0, pmax)],
                c.mix(0.12).filled(),
            )))
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(std::iter::once(Text::new(
                name.to_string(),
                (a - t0, pmax * 0.98),
                ("sans-serif", 10).into_font().transform(FontTransform::Rotate90),
            )))
            .map_err(|x| e(x.to_string()))?;
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = color(i + 3);
        chart
            .draw_series(LineSeries::new(pts.iter().map(|&(t, p)| (t - t0, p)), c.stroke_width(1)))
            .map_err(|x| e(x.to_string()))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

fn kind_label(r: &StudyResults) -> &'static str {
    match r.energy.kind {
        crate::study::EnergyKind::Measured => "measured",
        crate::study::EnergyKind::Replayed => "REPLAYED trace",
        crate::study::EnergyKind::Estimated => "ESTIMATE, not measured",
        _ => "no sensor",
    }
}

/// Keeps at most about `n` points (every k-th, plus the last).
fn thin(pts: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if pts.len() <= n {
        return pts;
    }
    let k = pts.len().div_ceil(n);
    let last = pts.last().copied();
    let mut out: Vec<(f64, f64)> = pts.into_iter().step_by(k).collect();
    if let Some(l) = last
        && out.last() != Some(&l)
    {
        out.push(l);
    }
    out
}

/// Every run as a point (score, Wh), scheme means as large markers, the Pareto front as a
/// line through its members.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] naming the file.
pub fn score_energy(r: &StudyResults, report: &StudyReport, path: &Path) -> Result<()> {
    prepare(path)?;
    let e = plot_err(path);
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let runs: Vec<(Scheme, f64, f64)> = r
        .runs
        .iter()
        .filter_map(|run| {
            Some((
                Scheme::from_label(&run.config().scheme)?,
                run.energy().ok()?.to_watt_hours(),
                run.score().ok()?,
            ))
        })
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(_, x, y) in &runs {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (dx, dy) = (((x1 - x0) * 0.15).max(x1.abs() * 0.02 + 1e-9), ((y1 - y0) * 0.2).max(0.01));
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Score against energy per run ({})", kind_label(r)), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - dx).max(0.0)..(x1 + dx), (y0 - dy).max(0.0)..(y1 + dy).min(1.0))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("energy per run (Wh)")
        .y_desc("mean task score")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    for (i, s) in r.settings.schemes.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> = runs.iter().filter(|p| p.0 == *s).map(|p| (p.1, p.2)).collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(|x| e(x.to_string()))?
            .label(s.display_name())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        if let Some(m) = report.points.iter().find(|p| p.config.scheme == s.label()) {
            chart
                .draw_series(std::iter::once(Cross::new(
                    (m.energy.to_watt_hours(), m.score),
                    9,
                    c.stroke_width(2),
                )))
                .map_err(|x| e(x.to_string()))?;
        }
    }
    let front: Vec<(f64, f64)> = report
        .front
        .iter()
        .filter_map(|s| report.points.iter().find(|p| p.config.scheme == s.label()))
        .map(|p| (p.energy.to_watt_hours(), p.score))
        .collect();
    if front.len() > 1 {
        chart
            .draw_series(LineSeries::new(front, BLACK.stroke_width(1)))
            .map_err(|x| e(x.to_string()))?
            .label("Pareto front (scheme means ×)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// Scheme × task heatmap of mean EOR (score per Wh); of mean scores when there is no energy.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] naming the file.
pub fn heatmap(report: &StudyReport, path: &Path) -> Result<()> {
    prepare(path)?;
    let e = plot_err(path);
    let mut schemes: Vec<Scheme> = Vec::new();
    let mut tasks: Vec<String> = Vec::new();
    for c in &report.cells {
        if !schemes.contains(&c.scheme) {
            schemes.push(c.scheme);
        }
        if !tasks.contains(&c.task) {
            tasks.push(c.task.clone());
        }
    }
    let use_eor = report.cells.iter().all(|c| c.eor.is_some()) && !report.cells.is_empty();
    let value = |s: Scheme, t: &str| -> Option<f64> {
        let c = report.cells.iter().find(|c| c.scheme == s && c.task == t)?;
        if use_eor { c.eor.map(|x| x.mean) } else { Some(c.score) }
    };
    let (w, h) = (220 + 170 * tasks.len().max(1) as u32, 120 + 60 * schemes.len().max(1) as u32);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let title = if use_eor {
        "EOR (score per Wh) by scheme and task; row-wise change vs baseline"
    } else {
        "Score by scheme and task (no energy measured)"
    };
    root.draw(&Text::new(title, (20, 20), ("sans-serif", 18))).map_err(|x| e(x.to_string()))?;
    for (j, t) in tasks.iter().enumerate() {
        let vals: Vec<f64> = schemes.iter().filter_map(|&s| value(s, t)).collect();
        let (lo, hi) =
            vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let base = schemes.first().and_then(|&s| value(s, t));
        let x = 200 + 170 * j as i32;
        root.draw(&Text::new(t.clone(), (x + 10, 60), ("sans-serif", 15)))
            .map_err(|x| e(x.to_string()))?;
        for (i, &s) in schemes.iter().enumerate() {
            let y = 80 + 60 * i as i32;
            if j == 0 {
                root.draw(&Text::new(s.display_name(), (10, y + 22), ("sans-serif", 14)))
                    .map_err(|x| e(x.to_string()))?;
            }
            let Some(v) = value(s, t) else { continue };
            let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            // White (low) to deep green (high).
            let c = RGBColor(
                (230.0 - 180.0 * f) as u8,
                (245.0 - 90.0 * f) as u8,
                (230.0 - 180.0 * f) as u8,
            );
            root.draw(&Rectangle::new([(x, y), (x + 165, y + 55)], c.filled()))
                .map_err(|x| e(x.to_string()))?;
            let label = match base {
                Some(b) if use_eor && b > 0.0 && i > 0 => {
                    format!("{v:.3} ({:+.1} %)", 100.0 * (v / b - 1.0))
                }
                _ if use_eor => format!("{v:.3}"),
                _ => format!("{v:.4}"),
            };
            root.draw(&Text::new(label, (x + 10, y + 22), ("sans-serif", 14)))
                .map_err(|x| e(x.to_string()))?;
        }
    }
    root.present().map_err(|x| e(x.to_string()))
}
