//! SVG charts for experiment results (plotters, SVG backend, no font or C dependencies).
//!
//! Without a font feature plotters only estimates text widths, and a browser's sans-serif
//! is wider than its estimate, so the layout leaves room rather than trusting widths: the
//! legend and the notes go in a strip under the plot, where they can never hide data.

use std::ops::Range;

use anyhow::{Result, bail};
use plotters::coord::Shift;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::{
    AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One chart: several series over one x axis; each point a median with its min-max range.
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: XAxis,
    /// Logarithmic y axis (for figures spanning orders of magnitude; all values > 0).
    pub y_log: bool,
    pub series: Vec<Series>,
    /// Lines printed under the plot area, e.g. "select: n/a at 5,000 and 10,000 (FD_SETSIZE 1024)".
    pub notes: Vec<String>,
}

pub enum XAxis {
    /// x values are numbers; `log` for a logarithmic axis (all x >= 0, some > 0). A 0 on a
    /// log axis is drawn one decade's width left of the smallest positive x, the stretch
    /// between them linear (see [`ZeroLogAxis`]), and a note under the plot says so.
    Numeric { log: bool },
    /// x values are category indexes 0..n into these names: drawn as grouped bars.
    Categories(Vec<String>),
}

pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
    /// x positions where this series could not be measured (e.g. select beyond its
    /// descriptor limit): drawn as a visible "n/a" cross marker on the x axis in the series colour.
    pub unavailable: Vec<f64>,
}

#[derive(Clone, Copy)]
pub struct Point {
    pub x: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

const WIDTH: u32 = 800;
const PLOT_HEIGHT: u32 = 450;
/// Height of one legend or note line in the strip under the plot.
const LINE: i32 = 20;
/// Left edge of the legend and notes: that of the plot area (margin + y label area).
const LEFT: i32 = 75;
const FONT: &str = "sans-serif";
/// Tableau 10's first eight: distinguishable on screen and in print.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
/// Share of a category's width taken by its group of bars.
const GROUP: f64 = 0.8;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A series' drawable data: finite points sorted by x, finite unavailable positions.
struct Clean {
    points: Vec<Point>,
    unavailable: Vec<f64>,
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> Result<String> {
    let series = clean(chart)?;
    let values = series.iter().flat_map(|s| &s.points);
    let y = span(
        values.flat_map(|p| [p.min, p.median, p.max]),
        chart.y_log,
        Start::Zero,
    );
    let xs = || {
        series
            .iter()
            .flat_map(|s| (s.points.iter().map(|p| p.x)).chain(s.unavailable.iter().copied()))
    };
    // A log x axis with a 0 on it: where it turns from linear to logarithmic.
    let zero_log = match chart.x {
        XAxis::Numeric { log: true } if xs().any(|x| x == 0.0) => {
            xs().filter(|x| *x > 0.0).min_by(f64::total_cmp)
        }
        _ => None,
    };
    let axis_note = zero_log.map(|linear| {
        let linear = tick(linear);
        format!("x axis: linear from 0 to {linear} (one decade wide), logarithmic above")
    });
    let notes: Vec<&str> = (chart.notes.iter().map(String::as_str))
        .chain(axis_note.as_deref())
        .collect();
    let legend = legend_rows(chart);
    let strip = 10 + LINE * (legend.len() + notes.len()) as i32;
    let height = PLOT_HEIGHT + strip as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(PLOT_HEIGHT);
        match &chart.x {
            XAxis::Numeric { log } => {
                let fmt = |v: &f64| tick(*v);
                match (log, zero_log) {
                    (true, Some(linear)) => {
                        let hi = xs().fold(linear, f64::max);
                        plot_y(&top, chart, &series, ZeroLogAxis::new(linear, hi), y, &fmt)?
                    }
                    (true, None) => {
                        let x = log_axis(span(xs(), true, Start::Data));
                        plot_y(&top, chart, &series, x, y, &fmt)?
                    }
                    (false, _) => {
                        let x = span(xs(), false, Start::Data);
                        plot_y(&top, chart, &series, x, y, &fmt)?
                    }
                }
            }
            XAxis::Categories(names) => {
                let axis = CategoryAxis((-0.5..names.len() as f64 - 0.5).into(), names.len());
                // Ticks are exactly the integers 0..n (see CategoryAxis), so rounding is exact.
                let fmt = |v: &f64| match names.get(v.round().max(0.0) as usize) {
                    Some(name) => name.clone(),
                    None => String::new(),
                };
                plot_y(&top, chart, &series, axis, y, &fmt)?
            }
        }
        footer(&bottom, chart, &legend, &notes)?;
        root.present()?;
    }
    Ok(out)
}

/// Checks the chart against its axes and keeps what can be drawn.
fn clean(chart: &Chart) -> Result<Vec<Clean>> {
    let title = &chart.title;
    let (x_log, categories) = match &chart.x {
        XAxis::Numeric { log } => (*log, None),
        XAxis::Categories(names) if names.is_empty() => {
            bail!("chart {title:?}: a category axis without categories")
        }
        XAxis::Categories(names) => (false, Some(names.len())),
    };
    let mut out = Vec::new();
    for s in &chart.series {
        let name = &s.name;
        let mut points: Vec<Point> = (s.points.iter().copied())
            .filter(|p| [p.x, p.median, p.min, p.max].iter().all(|v| v.is_finite()))
            .collect();
        let unavailable: Vec<f64> = (s.unavailable.iter().copied())
            .filter(|x| x.is_finite())
            .collect();
        for &x in points.iter().map(|p| &p.x).chain(&unavailable) {
            if x_log && x < 0.0 {
                bail!(
                    "chart {title:?}, series {name:?}: x = {x} on a logarithmic x axis (needs x >= 0)"
                );
            }
            if let Some(n) = categories
                && !(x.fract() == 0.0 && (0.0..n as f64).contains(&x))
            {
                bail!("chart {title:?}, series {name:?}: x = {x} is not a category index 0..{n}");
            }
        }
        let bad_y = points
            .iter()
            .flat_map(|p| [p.min, p.median, p.max])
            .find(|v| *v <= 0.0);
        if let (true, Some(v)) = (chart.y_log, bad_y) {
            bail!(
                "chart {title:?}, series {name:?}: y = {v} on a logarithmic y axis (needs y > 0)"
            );
        }
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        out.push(Clean {
            points,
            unavailable,
        });
    }
    if out.iter().all(|s| s.points.is_empty()) {
        bail!("chart {title:?}: no measured point to draw");
    }
    let positive = |s: &Clean| s.points.iter().any(|p| p.x > 0.0);
    if x_log && !out.iter().any(positive) {
        bail!("chart {title:?}: a logarithmic x axis needs a measured point at x > 0");
    }
    Ok(out)
}

/// Where a linear axis over values >= 0 starts.
#[derive(Clone, Copy)]
enum Start {
    /// At 0, so that bars and differences read true (the y axis).
    Zero,
    /// A margin below the smallest value, never below 0 (the x axis).
    Data,
}

/// The axis range covering `values` (not empty, > 0 for a log axis) with a 5% margin. A
/// linear axis over values >= 0 stays >= 0 and starts as `start` says. A log axis spans
/// at least one decade, so that it has ticks.
fn span(values: impl Iterator<Item = f64>, log: bool, start: Start) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if log {
        let (lo, hi) = (lo.log10(), hi.log10());
        let half = ((hi - lo) * 0.55).max(0.5);
        let mid = (lo + hi) / 2.0;
        10f64.powf(mid - half)..10f64.powf(mid + half)
    } else {
        let margin = if hi > lo {
            (hi - lo) * 0.05
        } else {
            lo.abs().max(1.0) * 0.1
        };
        let start = match (lo >= 0.0, start) {
            (true, Start::Zero) => 0.0,
            (true, Start::Data) => (lo - margin).max(0.0),
            (false, _) => lo - margin,
        };
        start..hi + margin
    }
}

/// A log axis ticked as [`log_ticks`] says.
fn log_axis(range: Range<f64>) -> WithKeyPoints<LogCoord<f64>> {
    let (bold, light) = log_ticks(&range);
    range
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

/// Labelled and light ticks of a log axis: labels at 1, 2 and 5 times the powers of ten
/// when it spans up to three decades, else at (at most ten of) the powers of ten:
/// plotters' own log ticks are powers of ten only, which leaves a short axis with one
/// label or none. The mesh's light lines are at 1..9 times the powers of ten while that
/// does not make a grey smear.
fn log_ticks(range: &Range<f64>) -> (Vec<f64>, Vec<f64>) {
    let decades = range.start.log10().floor() as i32..=range.end.log10().ceil() as i32;
    let ticks = |steps: &[f64]| -> Vec<f64> {
        let all = decades
            .clone()
            .flat_map(|k| steps.iter().map(move |m| m * 10f64.powi(k)));
        all.filter(|v| range.contains(v)).collect()
    };
    let span = (range.end / range.start).log10();
    let powers = ticks(&[1.0]);
    let bold = match span <= 3.0 {
        true => ticks(&[1.0, 2.0, 5.0]),
        false => (powers.iter().copied())
            .step_by(powers.len().div_ceil(10).max(1))
            .collect(),
    };
    let light = match span <= 6.0 {
        true => ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
        false => powers,
    };
    (bold, light)
}

/// A log axis that also shows 0, as matplotlib's symlog scale does: linear from 0 to
/// `linear` (the smallest positive x) over the width of one decade, logarithmic above.
/// 0 then sits a decade's width left of `linear` rather than at minus infinity, and a
/// line from 0 to `linear` interpolates linearly, as on any linear axis: nothing is
/// drawn that the data does not say. (A broken axis would leave that segment's slope
/// meaningless.) Ticks: 0, then the log ticks from `linear` up.
struct ZeroLogAxis {
    linear: f64,
    /// The axis in decades above `linear`, 0 mapping to 0 and `linear` to 1.
    decades: RangedCoordf64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl ZeroLogAxis {
    /// Over 0..`hi`, with the 5% margins of [`span`].
    fn new(linear: f64, hi: f64) -> ZeroLogAxis {
        let top = 1.0 + (hi / linear).log10();
        let margin = top * 0.05;
        let end = linear * 10f64.powf(top + margin - 1.0);
        let (bold, light) = log_ticks(&(linear..end));
        ZeroLogAxis {
            linear,
            decades: (-margin..top + margin).into(),
            bold: [0.0].into_iter().chain(bold).collect(),
            light,
        }
    }

    fn decades(&self, x: f64) -> f64 {
        match x <= self.linear {
            true => x / self.linear,
            false => 1.0 + (x / self.linear).log10(),
        }
    }

    fn value(&self, decades: f64) -> f64 {
        match decades <= 1.0 {
            true => decades * self.linear,
            false => self.linear * 10f64.powf(decades - 1.0),
        }
    }
}

impl Ranged for ZeroLogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.decades.map(&self.decades(*value), limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        match hint.weight().allow_light_points() {
            true => self.light.clone(),
            false => self.bold.clone(),
        }
    }

    fn range(&self) -> Range<f64> {
        let decades = self.decades.range();
        self.value(decades.start)..self.value(decades.end)
    }
}

/// A category axis: linear over -0.5..n-0.5, with its ticks exactly at the n category
/// centres (plotters' own f64 axis would pick "nice" ticks between them).
struct CategoryAxis(RangedCoordf64, usize);

impl Ranged for CategoryAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.0.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        (0..self.1).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        self.0.range()
    }
}

/// Picks the y axis type; x is already picked.
fn plot_y<X>(
    area: &Area,
    chart: &Chart,
    series: &[Clean],
    x: X,
    y: Range<f64>,
    x_fmt: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    if chart.y_log {
        plot(area, chart, series, x, log_axis(y), x_fmt)
    } else {
        plot(area, chart, series, x, y, x_fmt)
    }
}

fn plot<X, Y>(
    area: &Area,
    chart: &Chart,
    series: &[Clean],
    x: X,
    y: Y,
    x_fmt: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, (FONT, 24))
        .margin(10)
        .margin_right(25)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x, y)?;
    let bars = matches!(chart.x, XAxis::Categories(_));
    let mut mesh = ctx.configure_mesh();
    mesh.x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(x_fmt)
        .y_label_formatter(&|v| tick(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240));
    if bars {
        // Vertical lines would run through the middle of every group of bars.
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    draw_series(&mut ctx, chart, series)
}

/// Each series as a line (or bars, over categories), its min-max error bars, and a
/// cross on the x axis where it could not be measured.
fn draw_series<X, Y>(
    ctx: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    chart: &Chart,
    series: &[Clean],
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let bars = matches!(chart.x, XAxis::Categories(_));
    let y_range = ctx.y_range();
    let bottom = y_range.start;
    // Bars grow from 0 when the axis shows it, else from the bottom (a log axis).
    let base = 0f64.max(y_range.start).min(y_range.end);
    let width = GROUP / series.len() as f64;
    // Where series i's value for x is drawn: x itself, or its bar within the group.
    let at = |i: usize, x: f64| match bars {
        true => x - GROUP / 2.0 + (i as f64 + 0.5) * width,
        false => x,
    };
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if bars {
            ctx.draw_series(s.points.iter().map(|p| {
                let (l, r) = (at(i, p.x) - width * 0.45, at(i, p.x) + width * 0.45);
                Rectangle::new([(l, base), (r, p.median)], colour.filled())
            }))?;
        } else {
            let line = LineSeries::new(
                s.points.iter().map(|p| (p.x, p.median)),
                colour.filled().stroke_width(2),
            );
            ctx.draw_series(line.point_size(3))?;
        }
        // Black on bars, where the series colour would vanish into the bar.
        let bar_colour = if bars { BLACK } else { colour };
        let error_bars: Vec<_> = (s.points.iter())
            .map(|p| {
                let x = at(i, p.x);
                // Caps are a fixed width in pixels, so the bar is drawn in pixels from its top.
                let h = ctx.backend_coord(&(x, p.min)).1 - ctx.backend_coord(&(x, p.max)).1;
                let path = vec![(-4, 0), (4, 0), (0, 0), (0, h), (-4, h), (4, h)];
                EmptyElement::at((x, p.max)) + PathElement::new(path, bar_colour.stroke_width(1))
            })
            .collect();
        ctx.draw_series(error_bars)?;
        // Crosses of several series at one x are stacked rather than drawn over each other.
        let marks = s.unavailable.iter().map(|&x| {
            let earlier = series[..i].iter().filter(|o| o.unavailable.contains(&x));
            let lift = -10 - 14 * earlier.count() as i32;
            let label = TextStyle::from((FONT, 14)).color(&colour);
            EmptyElement::at((at(i, x), bottom))
                + Cross::new((0, lift), 5, colour.stroke_width(2))
                + Text::new("n/a", (7, lift - 6), label)
        });
        ctx.draw_series(marks)?;
    }
    Ok(())
}

/// Legend entries, as (series index, x offset), in rows of equal columns that fit the width.
fn legend_rows(chart: &Chart) -> Vec<Vec<(usize, i32)>> {
    // Swatch, gap, the longest name at ~0.6 em a character (plotters' SVG text is 1/1.24 of
    // the nominal size 16; a browser's sans-serif averages a bit over 0.5 em), spacing.
    let longest = chart.series.iter().map(|s| s.name.chars().count()).max();
    let column = 18 + (longest.unwrap_or(0) as f64 * 16.0 / 1.24 * 0.6) as i32 + 24;
    let columns = ((WIDTH as i32 - 10 - LEFT) / column).max(1) as usize;
    let entries: Vec<usize> = (0..chart.series.len()).collect();
    let row = |r: &[usize]| {
        (r.iter().zip(0..))
            .map(|(&i, c)| (i, LEFT + c * column))
            .collect()
    };
    entries.chunks(columns).map(row).collect()
}

/// The legend, then the notes, in the strip under the plot.
fn footer(area: &Area, chart: &Chart, legend: &[Vec<(usize, i32)>], notes: &[&str]) -> Result<()> {
    let mut y = 4;
    for row in legend {
        for &(i, x) in row {
            let colour = PALETTE[i % PALETTE.len()];
            area.draw(&Rectangle::new(
                [(x, y + 3), (x + 12, y + 15)],
                colour.filled(),
            ))?;
            area.draw(&Text::new(
                chart.series[i].name.as_str(),
                (x + 18, y + 2),
                (FONT, 16),
            ))?;
        }
        y += LINE;
    }
    let style = TextStyle::from((FONT, 16)).color(&RGBColor(60, 60, 60));
    for note in notes {
        area.draw(&Text::new(*note, (LEFT, y + 2), &style))?;
        y += LINE;
    }
    Ok(())
}

/// A tick label: 1.5k, 10k, 2M rather than 1500, 10000, 2000000; three significant digits
/// at most and no trailing zeros, so 0.25 and 0.002 stay short; 1e-6 and 1e15 beyond.
fn tick(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e12).contains(&v.abs()) {
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exponent}", trim(mantissa));
    }
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if v.abs() >= scale {
            return format!("{}{suffix}", plain(v / scale));
        }
    }
    plain(v)
}

fn plain(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    trim(&format!("{v:.decimals$}")).to_string()
}

/// Drops trailing zeros after a decimal point, and the point if nothing is left after it.
fn trim(s: &str) -> &str {
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.'),
        false => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::ranged1d::BoldPoints;

    fn p(x: f64, median: f64) -> Point {
        Point {
            x,
            median,
            min: median * 0.9,
            max: median * 1.2,
        }
    }

    fn series(name: &str, points: Vec<Point>, unavailable: Vec<f64>) -> Series {
        Series {
            name: name.to_string(),
            points,
            unavailable,
        }
    }

    fn chart(x: XAxis, y_log: bool, series: Vec<Series>, notes: &[&str]) -> Chart {
        Chart {
            title: "Requests per second & latency".to_string(),
            x_label: "connections".to_string(),
            y_label: "requests/s".to_string(),
            x,
            y_log,
            series,
            notes: notes.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn numeric(log: bool) -> Chart {
        let xs = [10.0, 100.0, 1000.0, 10000.0];
        let points = |f: f64| xs.iter().rev().map(|&x| p(x, f * 1e5 / x.sqrt())).collect();
        chart(
            XAxis::Numeric { log },
            log,
            vec![
                series("select", points(1.0), vec![]),
                series("poll", points(1.3), vec![]),
                series("epoll-lt", points(2.0), vec![]),
            ],
            &[],
        )
    }

    fn unavailable() -> Chart {
        let xs = [100.0, 1000.0, 5000.0, 10000.0];
        let all = |f: f64| xs.iter().map(|&x| p(x, f * 1e6 / x)).collect::<Vec<_>>();
        chart(
            XAxis::Numeric { log: true },
            false,
            vec![
                series(
                    "select",
                    all(1.0).into_iter().take(2).collect(),
                    vec![5000.0, 10000.0],
                ),
                series("poll", all(1.2), vec![]),
                series("epoll-et", all(1.5), vec![]),
                series("only-na", vec![], vec![10000.0]),
            ],
            &[
                "select: n/a at 5,000 and 10,000 (FD_SETSIZE 1024)",
                "only-na: never measured",
            ],
        )
    }

    fn categories() -> Chart {
        let names = ["select", "poll", "epoll-lt", "epoll-et", "polling"];
        let values = |f: f64| {
            (0..5)
                .map(|i| p(i as f64, f * (100.0 + 10.0 * i as f64)))
                .collect()
        };
        chart(
            XAxis::Categories(names.iter().map(|n| n.to_string()).collect()),
            false,
            vec![
                series("64 B", values(1.0), vec![]),
                series("4 KiB", values(0.8), vec![]),
                series(
                    "64 KiB",
                    (0..4).map(|i| p(i as f64, 40.0)).collect(),
                    vec![4.0],
                ),
            ],
            &["64 KiB: polling n/a"],
        )
    }

    /// The contents of the SVG's <text> elements.
    fn texts(svg: &str) -> Vec<&str> {
        let inner = svg.split("<text").skip(1).filter_map(|t| t.split_once('>'));
        inner
            .filter_map(|(_, t)| t.split_once("</text>"))
            .map(|(t, _)| t.trim())
            .collect()
    }

    fn check(chart: &Chart, file: &str) -> String {
        let svg = svg(chart).expect("renders");
        // PLOT_SAMPLES=dir keeps the samples there, to look at.
        if let Some(dir) = std::env::var_os("PLOT_SAMPLES") {
            let path = std::path::Path::new(&dir).join(format!("{file}.svg"));
            std::fs::write(&path, &svg).expect("sample written");
        }
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("Requests per second &amp; latency"));
        let texts = texts(&svg);
        for s in &chart.series {
            assert!(texts.contains(&s.name.as_str()), "{} missing", s.name);
        }
        for note in &chart.notes {
            assert!(texts.contains(&note.as_str()), "{note} missing");
        }
        // Same input, same bytes: the samples are committed.
        assert_eq!(svg, super::svg(chart).expect("renders"));
        svg
    }

    #[test]
    fn numeric_linear_and_log() {
        let linear = check(&numeric(false), "numeric-linear");
        // A linear y axis over values >= 0 starts at 0; ticks in thousands read "k".
        assert!(texts(&linear).contains(&"0") && texts(&linear).contains(&"50k"));
        let log = check(&numeric(true), "numeric-log");
        for decade in ["10", "100", "1k", "10k"] {
            assert!(texts(&log).contains(&decade), "{decade} missing");
        }
    }

    #[test]
    fn zero_on_a_log_axis() {
        // idle-scaling's x: 0 beside two decades, select n/a at the top.
        let xs = [0.0, 100.0, 1000.0, 5000.0, 10000.0];
        let all = |f: f64| xs.iter().map(|&x| p(x, f * 1e5 / (1.0 + x))).collect();
        let c = chart(
            XAxis::Numeric { log: true },
            true,
            vec![
                series("select", all(1.0), vec![]),
                series(
                    "poll",
                    xs[..3].iter().map(|&x| p(x, 5e4)).collect(),
                    vec![5000.0],
                ),
            ],
            &[],
        );
        let svg = check(&c, "zero-log");
        let labels = texts(&svg);
        for label in ["0", "100", "200", "500", "1k", "2k", "5k", "10k"] {
            assert!(labels.contains(&label), "{label} missing: {labels:?}");
        }
        let note = "x axis: linear from 0 to 100 (one decade wide), logarithmic above";
        assert!(labels.contains(&note), "{labels:?}");
        // 0 is as far left of 100 as 100 is of 1k.
        let axis = ZeroLogAxis::new(100.0, 10000.0);
        let at = |x: f64| axis.map(&x, (0, 1000));
        assert!((at(1000.0) - at(100.0) - (at(100.0) - at(0.0))).abs() <= 1);
        assert!(at(0.0) > 0 && at(10000.0) < 1000);
        // Without a 0, a log axis is as before: no note.
        assert!(!texts(&check(&numeric(true), "numeric-log")).contains(&note));
    }

    #[test]
    fn grouped_bars() {
        let svg = check(&categories(), "categories");
        for name in ["select", "poll", "epoll-lt", "epoll-et", "polling"] {
            assert!(texts(&svg).contains(&name), "category {name} missing");
        }
        assert_eq!(texts(&svg).iter().filter(|t| **t == "n/a").count(), 1);
        let log = Chart {
            y_log: true,
            ..categories()
        };
        check(&log, "categories-log");
    }

    #[test]
    fn unavailable_points_are_marked() {
        let svg = check(&unavailable(), "unavailable");
        assert_eq!(texts(&svg).iter().filter(|t| **t == "n/a").count(), 3);
    }

    #[test]
    fn narrow_ranges_still_have_ticks() {
        let ticks = |svg: &str| {
            texts(svg)
                .iter()
                .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
                .count()
        };
        for log in [false, true] {
            let one = vec![series("poll", vec![p(1000.0, 35.0)], vec![])];
            let svg = svg(&chart(XAxis::Numeric { log }, log, one, &[])).expect("renders");
            assert!(ticks(&svg) >= 4, "log {log}: {:?}", texts(&svg));
        }
    }

    #[test]
    fn many_series_wrap_the_legend() {
        let names = (0..12).map(|i| format!("a rather long series name {i}"));
        let many = names
            .map(|n| series(&n, vec![p(1.0, 2.0), p(2.0, 3.0)], vec![]))
            .collect();
        let c = chart(XAxis::Numeric { log: false }, true, many, &["a note"]);
        check(&c, "many-series");
        let rows = legend_rows(&c);
        assert!(rows.len() > 1 && rows.iter().all(|r| r.len() == rows[0].len()));
    }

    #[test]
    fn wide_log_axis_keeps_ten_labels_at_most() {
        assert!(log_axis(1e-20..1e20).key_points(BoldPoints(10)).len() <= 10);
        let wide = vec![series("poll", vec![p(1.0, 1e-20), p(2.0, 1e20)], vec![])];
        let svg = check(
            &chart(XAxis::Numeric { log: false }, true, wide, &[]),
            "wide-log",
        );
        let powers = texts(&svg)
            .into_iter()
            .filter(|t| t.starts_with("1e"))
            .count();
        assert!((3..=10).contains(&powers), "{:?}", texts(&svg));
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let mut c = numeric(false);
        c.series[0].points.push(Point {
            x: f64::NAN,
            median: 1.0,
            min: 1.0,
            max: 1.0,
        });
        c.series[1].points.push(Point {
            x: 5.0,
            median: f64::INFINITY,
            min: 1.0,
            max: 1.0,
        });
        c.series[2].unavailable.push(f64::NAN);
        assert!(!svg(&c).expect("renders").contains("NaN"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |c: Chart| svg(&c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err(chart(XAxis::Numeric { log: false }, false, vec![], &[]))
                .contains("no measured point")
        );
        let na_only = vec![series("select", vec![], vec![1.0])];
        assert!(
            err(chart(XAxis::Numeric { log: false }, false, na_only, &[]))
                .contains("no measured point")
        );
        let zero_x = vec![series("poll", vec![p(0.0, 1.0)], vec![1.0])];
        assert!(err(chart(XAxis::Numeric { log: true }, false, zero_x, &[])).contains("x > 0"));
        let negative_x = vec![series("poll", vec![p(-1.0, 1.0), p(10.0, 1.0)], vec![])];
        assert!(
            err(chart(XAxis::Numeric { log: true }, false, negative_x, &[]))
                .contains("logarithmic x")
        );
        let zero_y = vec![series("poll", vec![p(1.0, 0.0)], vec![])];
        assert!(
            err(chart(XAxis::Numeric { log: false }, true, zero_y, &[])).contains("logarithmic y")
        );
        let names = XAxis::Categories(vec!["a".to_string()]);
        let outside = vec![series("poll", vec![p(1.0, 1.0)], vec![])];
        assert!(err(chart(names, false, outside, &[])).contains("category index"));
        let none = vec![series("poll", vec![p(0.0, 1.0)], vec![])];
        assert!(
            err(chart(XAxis::Categories(vec![]), false, none, &[])).contains("without categories")
        );
    }

    #[test]
    fn tick_labels() {
        let ticks: Vec<String> = [
            0.0, 0.25, 0.002, 1.5, 250.0, 1000.0, 2500.0, 12500.0, 2e6, -500.0, 2.5e-5, 1e15,
        ]
        .into_iter()
        .map(tick)
        .collect();
        assert_eq!(
            ticks,
            [
                "0", "0.25", "0.002", "1.5", "250", "1k", "2.5k", "12.5k", "2M", "-500", "2.5e-5",
                "1e15",
            ]
        );
    }
}
