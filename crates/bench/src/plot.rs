//! docs/scale.png: convergence against the floor, and the operator's RSS,
//! by number of clusters (log scale). Text is drawn with DejaVu Sans compiled
//! into the binary, so the plot needs no system font.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::SizeResult;

const FONT: &str = "sans-serif";

pub fn draw(results: &[SizeResult], path: &Path) -> anyhow::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow!("the compiled-in font does not load"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(700);

    let max_n = results.iter().map(|r| r.clusters).max().unwrap_or(1) as f64;
    let x_range = || (0.7f64..max_n * 1.5).log_scale();
    // Only the measured sizes are labelled on the (logarithmic) x axis.
    let sizes: Vec<f64> = results.iter().map(|r| r.clusters as f64).collect();
    let x_label = |x: &f64| -> String {
        if sizes.iter().any(|s| (s - x).abs() < 1e-9) { format!("{x:.0}") } else { String::new() }
    };
    let series = |f: &dyn Fn(&SizeResult) -> f64| -> Vec<(f64, f64)> {
        results.iter().map(|r| (r.clusters as f64, f(r))).collect()
    };

    // Convergence against the floor.
    let operator = series(&|r| r.converged_secs);
    let floor = series(&|r| r.floor_secs);
    let y_max = operator.iter().chain(&floor).map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("Time to all Ready (N clusters applied at once)", (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(), 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("clusters")
        .x_label_formatter(&x_label)
        .y_desc("seconds")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(err)?;
    line(&mut chart, &operator, BLUE, "magnetar run: Ready with endpoints")?;
    line(&mut chart, &floor, RGBColor(230, 120, 0), "floor: server-side apply, workloads Ready")?;
    legend(&mut chart)?;

    // Memory.
    let idle = series(&|r| r.idle.rss_kb as f64 / 1024.0);
    let converged = series(&|r| r.converged.rss_kb as f64 / 1024.0);
    let after = series(&|r| r.after_quiet.rss_kb as f64 / 1024.0);
    let y_max = idle.iter().chain(&converged).chain(&after).map(|p| p.1).fold(64.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption("magnetar run: resident memory (VmRSS)", (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(), 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("clusters")
        .x_label_formatter(&x_label)
        .y_desc("MB")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(err)?;
    line(&mut chart, &idle, RGBColor(120, 120, 120), "idle, before the clusters")?;
    line(&mut chart, &converged, BLUE, "at convergence")?;
    line(&mut chart, &after, RGBColor(0, 150, 60), "after the quiet window")?;
    let goal = RED.mix(0.6);
    chart
        .draw_series(LineSeries::new([(0.7, 64.0), (max_n * 1.5, 64.0)], goal.stroke_width(1)))
        .map_err(err)?
        .label("goal: 64 MB at 100 clusters")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], goal));
    legend(&mut chart)?;

    root.present().map_err(err)?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::combinators::LogCoord<f64>, plotters::coord::types::RangedCoordf64>,
>;

fn line<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    points: &[(f64, f64)],
    color: RGBColor,
    label: &str,
) -> anyhow::Result<()> {
    chart
        .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled()))).map_err(err)?;
    Ok(())
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::Usage;

    fn sample(n: usize, secs: f64, rss_mb: u64) -> SizeResult {
        let usage = |kb| Usage { rss_kb: kb, hwm_kb: kb, ..Usage::default() };
        SizeResult {
            clusters: n,
            objects_per_cluster: 44,
            pods: 10 * n,
            floor_secs: secs * 0.8,
            floor_cleanup_secs: 1.0,
            operator_start_secs: 0.5,
            converged_secs: secs,
            converged_median_secs: secs / 2.0,
            idle: usage(30 * 1024),
            converged: usage(rss_mb * 1024),
            after_quiet: usage(rss_mb * 1024),
            quiet_max_rss_kb: rss_mb * 1024,
            startup_requests: Default::default(),
            requests: [("patch".to_string(), 60 * n as u64)].into(),
            quiet_requests: Default::default(),
            operator_writes: 60 * n as u64,
            quiet_operator_writes: 0,
            quiet_last_write_secs: None,
            quiet_secs: 60.0,
            reconciles: 10,
            quiet_reconciles: 0,
        }
    }

    #[test]
    fn draws_a_png_and_a_table() {
        let results = [sample(1, 2.0, 32), sample(10, 8.0, 40), sample(100, 60.0, 90)];
        let path = std::env::temp_dir().join(format!("magnetar-bench-plot-{}.png", std::process::id()));
        draw(&results, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let table = crate::report::markdown(&results, 5.0);
        assert!(table.contains("| 100 | 1000 | 60.0 s | 48.0 s | 1.25 |"), "{table}");
        assert!(table.contains("0.60 / 0.56"), "{table}");
    }
}
