//! The cost/accuracy frontier as an SVG, drawn with plotters: one point per strategy,
//! sweep points joined in sweep order and labelled with their value, the frontier as a
//! wide grey line underneath. Text is SVG `<text>`, drawn by the viewer, so no
//! font files are needed.

use plotters::prelude::*;

use super::summary::StrategyResult;

const SIZE: (u32, u32) = (900, 560);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

/// Draws `results` and returns the SVG text.
pub fn frontier_svg(title: &str, results: &[StrategyResult]) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, title, results).map_err(|e| format!("drawing the plot: {e}"))?;
    Ok(svg)
}

fn draw<'a>(
    svg: &'a mut String,
    title: &str,
    results: &[StrategyResult],
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let max_cost = results.iter().map(|r| r.usd_per_1k).fold(0.0, f64::max);
    let x_max = if max_cost > 0.0 {
        max_cost * 1.15
    } else {
        1e-3
    };
    let min_accuracy = results
        .iter()
        .map(|r| r.accuracy * 100.0)
        .fold(100.0, f64::min);
    let y_min = (min_accuracy - 1.0).floor().max(0.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, y_min..100.5)?;
    chart
        .configure_mesh()
        .x_desc("serverless cost, US dollars per 1,000 requests")
        .y_desc("accuracy (%)")
        .x_label_formatter(&|x| format!("{x:.3}"))
        .draw()?;

    let mut frontier: Vec<(f64, f64)> = results
        .iter()
        .filter(|r| r.on_frontier)
        .map(|r| (r.usd_per_1k, r.accuracy * 100.0))
        .collect();
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(
            frontier,
            RGBColor(160, 160, 160).stroke_width(6),
        ))?
        .label("frontier")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 20, y)],
                RGBColor(160, 160, 160).stroke_width(6),
            )
        });

    let mut groups: Vec<&str> = Vec::new();
    for r in results {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    for (i, group) in groups.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let members: Vec<&StrategyResult> = results.iter().filter(|r| r.group == *group).collect();
        let points: Vec<(f64, f64)> = members
            .iter()
            .map(|r| (r.usd_per_1k, r.accuracy * 100.0))
            .collect();
        if members.len() > 1 {
            chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
        }
        chart
            .draw_series(members.iter().map(|r| {
                // Sweep values above their point, strategy names below, so a strategy
                // that lands on a sweep point stays readable.
                let (label, offset) = match r.sweep_value {
                    Some(v) => (format!("{v}"), (7, -16)),
                    None => (r.name.clone(), (7, 4)),
                };
                EmptyElement::at((r.usd_per_1k, r.accuracy * 100.0))
                    + Circle::new((0, 0), 5, color.filled())
                    + Text::new(label, offset, ("sans-serif", 13).into_font().color(&color))
            }))?
            .label(group.to_string())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
