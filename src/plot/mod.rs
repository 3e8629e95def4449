//! Speed/accuracy figures: accuracy against mean decision step, one curve per model
//! or setting, drawn from a sweep of the rank-coding decision threshold.
//!
//! The SVG is built by hand as plain text; the PNG is the same SVG rasterised with
//! `resvg`. Text is set in DejaVu Sans, which is embedded in the binary
//! (`assets/fonts/DejaVuSans.ttf`, licence in `assets/fonts/LICENSE`), so PNGs render
//! identically on machines without any system fonts.

use crate::error::{Error, Result};
use resvg::{tiny_skia, usvg};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

mod text;
pub use text::accuracy_vs_decision_text;

/// Width of the figure in pixels (SVG user units and PNG pixels alike).
const WIDTH: f64 = 900.0;
/// Height of the figure in pixels.
const HEIGHT: f64 = 600.0;
/// The one font family used for all text; it is the embedded font.
const FONT_FAMILY: &str = "DejaVu Sans";
/// The embedded font file.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Distinct line colours (the Tableau 10 palette), used in turn.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Space around the plot area: left (y tick labels and axis label), top (title),
/// bottom (x tick labels and axis label), and the gap at the far right.
const MARGIN_LEFT: f64 = 78.0;
const MARGIN_TOP: f64 = 56.0;
const MARGIN_BOTTOM: f64 = 64.0;
const MARGIN_RIGHT: f64 = 20.0;

/// Legend geometry: font size, row height, bounds on the legend width, and the
/// length of the line sample in front of each label.
const LEGEND_FONT: f64 = 13.0;
const LEGEND_ROW: f64 = 22.0;
const LEGEND_MIN_WIDTH: f64 = 110.0;
const LEGEND_MAX_WIDTH: f64 = 300.0;
const LEGEND_SAMPLE: f64 = 28.0;
/// Generous estimate of the advance of one DejaVu Sans character, in ems.
const CHAR_EM: f64 = 0.64;

/// One curve: points (mean decision step, accuracy in \[0, 1\]) from a threshold sweep,
/// or a reference accuracy with no decision time.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// A published accuracy whose decision time is not known: drawn as a dashed line
    /// across the plot at its one point's accuracy, without markers.
    pub reference: bool,
    /// How its points are drawn (not a reference's).
    pub draw: Draw,
}

/// How a curve's points are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Draw {
    /// A line through the points, with a marker on each.
    #[default]
    LineAndMarkers,
    /// Markers only: a scatter of separate results (one run each).
    Markers,
    /// The line only, e.g. a front through points that other curves mark.
    Line,
}

impl Curve {
    /// A curve with the given label and points.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Curve {
            label: label.into(),
            points,
            reference: false,
            draw: Draw::default(),
        }
    }

    /// The same curve drawn as `draw` says.
    pub fn drawn(self, draw: Draw) -> Self {
        Curve { draw, ..self }
    }

    /// A reference line at `accuracy` (in \[0, 1\]).
    pub fn reference(label: impl Into<String>, accuracy: f64) -> Self {
        Curve {
            label: label.into(),
            points: vec![(0.0, accuracy)],
            reference: true,
            draw: Draw::default(),
        }
    }

    /// The finite points, sorted by x (decision step).
    fn sorted_points(&self) -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        pts
    }
}

/// The x axis of a figure: mean decision step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepAxis {
    /// From 0 to the task's steps, widened only if some point lies beyond; integer ticks.
    Task(usize),
    /// Up to this mean decision step, from the whole step below the first point shown:
    /// a close view of early decisions. Points beyond it are left out.
    UpTo(f64),
}

/// SVG text of a line chart: x = mean decision step ([`StepAxis`]), y = accuracy (%),
/// one polyline with point markers per curve, distinct colours, legend, axis labels, ticks, title.
///
/// Non-finite points are skipped. The y axis runs from a little below the lowest
/// accuracy shown to 100 % (or higher, if some accuracy exceeds 1). Legend labels longer
/// than the legend is wide are shortened with an ellipsis; the full label stays in a
/// `<title>`.
pub fn accuracy_vs_decision_svg(title: &str, steps: StepAxis, curves: &[Curve]) -> String {
    let shown = |&(x, _): &(f64, f64)| match steps {
        StepAxis::Task(_) => true,
        StepAxis::UpTo(max) => x <= max,
    };
    let sorted: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| c.sorted_points().into_iter().filter(shown).collect())
        .collect();
    let all_points = || sorted.iter().flatten().copied();
    // A reference line's one point has no decision time: it spans whatever x shows.
    let timed_points = || {
        curves
            .iter()
            .zip(&sorted)
            .filter(|(c, _)| !c.reference)
            .flat_map(|(_, points)| points.iter().copied())
    };
    let x_axis = match steps {
        StepAxis::Task(max_steps) => Axis::for_steps(max_steps, timed_points().map(|p| p.0)),
        StepAxis::UpTo(max) => Axis::for_steps_up_to(max, timed_points().map(|p| p.0)),
    };
    let y_axis = Axis::for_accuracy(all_points().map(|p| 100.0 * p.1));
    let legend_width = legend_width(curves);
    let plot = Rect::plot_area(legend_width);

    let mut svg = String::with_capacity(16 * 1024);
    svg_open(&mut svg);
    svg_title(&mut svg, title);
    svg_grid_and_ticks(&mut svg, &plot, &x_axis, &y_axis);
    svg_axis_labels(&mut svg, &plot);
    for (i, (curve, points)) in curves.iter().zip(&sorted).enumerate() {
        if curve.reference {
            for &(_, accuracy) in points {
                let y = y_axis.y_pixel(100.0 * accuracy, &plot);
                svg_reference(&mut svg, i, &curve.label, plot.left, plot.right, y);
            }
            continue;
        }
        let pixels: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, y)| (x_axis.x_pixel(x, &plot), y_axis.y_pixel(100.0 * y, &plot)))
            .collect();
        svg_curve(&mut svg, i, curve, &pixels);
    }
    if curves.is_empty() {
        svg_no_data(&mut svg, &plot);
    }
    svg_legend(&mut svg, &plot, legend_width, curves);
    svg.push_str("</svg>\n");
    svg
}

/// Writes `<stem>.svg` and `<stem>.png` (PNG rendered from the same SVG, 900x600),
/// returns the two paths. Both files are written atomically (temporary file in the
/// same directory, then rename). Errors are [`Error::File`] naming the file.
pub fn write_figure(
    stem: &Path,
    title: &str,
    steps: StepAxis,
    curves: &[Curve],
) -> Result<(PathBuf, PathBuf)> {
    let svg_path = with_suffix(stem, ".svg");
    let png_path = with_suffix(stem, ".png");
    let svg = accuracy_vs_decision_svg(title, steps, curves);
    let png = render_png(&svg).map_err(|problem| Error::file(&png_path, problem))?;
    crate::files::write_atomic(&svg_path, svg.as_bytes())?;
    crate::files::write_atomic(&png_path, &png)?;
    Ok((svg_path, png_path))
}

/// An axis: the data range shown and the distance between ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    min: f64,
    max: f64,
    step: f64,
}

impl Axis {
    /// The x axis: 0..=max_steps (at least 1), widened to cover all `xs`, integer ticks.
    fn for_steps(max_steps: usize, xs: impl Iterator<Item = f64>) -> Self {
        let data_max = xs.fold(0.0_f64, f64::max);
        let max = (max_steps as f64).max(data_max.ceil()).max(1.0);
        let step = nice_step(max, 8.0).max(1.0);
        Axis {
            min: 0.0,
            max,
            step,
        }
    }

    /// The x axis of [`StepAxis::UpTo`]: from the whole step at or below the smallest of
    /// `xs` (0 without any, or if that is not below `max`) to `max`, in nice steps.
    fn for_steps_up_to(max: f64, xs: impl Iterator<Item = f64>) -> Self {
        let data_min = xs.fold(f64::INFINITY, f64::min).floor();
        let min = if data_min < max {
            data_min.max(0.0)
        } else {
            0.0
        };
        let max = if max > min { max } else { min + 1.0 };
        Axis {
            min,
            max,
            step: nice_step(max - min, 8.0),
        }
    }

    /// The y axis in percent: from a little below the lowest value (5 % of the span,
    /// at least 0.1, and at least one point below the top) to 100 (or the highest
    /// value, if above), with both bounds on multiples of a nice step.
    fn for_accuracy(ys: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        if !lo.is_finite() {
            return Axis {
                min: 0.0,
                max: 100.0,
                step: 10.0,
            };
        }
        let hi = hi.max(100.0);
        // A little room below the lowest point, and at least one percentage point shown.
        let padding = ((hi - lo) * 0.05).max(0.1);
        let low = (lo - padding).min(hi - 1.0);
        let step = nice_step(hi - low, 6.0);
        let min = (low / step + 1e-9).floor() * step;
        let min = if lo >= 0.0 { min.max(0.0) } else { min };
        let max = (hi / step - 1e-9).ceil() * step;
        Axis { min, max, step }
    }

    /// The tick values, from `min` to `max` inclusive.
    fn ticks(&self) -> Vec<f64> {
        let count = ((self.max - self.min) / self.step + 1e-9).floor() as usize;
        (0..=count)
            .map(|i| self.min + i as f64 * self.step)
            .collect()
    }

    /// Decimal places that show every tick value exactly.
    fn decimals(&self) -> usize {
        (-self.step.log10().floor()).max(0.0) as usize
    }

    /// Where value `v` lands on this axis, as a fraction of the axis length.
    fn fraction(&self, v: f64) -> f64 {
        (v - self.min) / (self.max - self.min)
    }

    /// Horizontal pixel position of `v` when this is the x axis of `plot`.
    fn x_pixel(&self, v: f64, plot: &Rect) -> f64 {
        plot.left + self.fraction(v) * plot.width()
    }

    /// Vertical pixel position of `v` when this is the y axis of `plot`.
    fn y_pixel(&self, v: f64, plot: &Rect) -> f64 {
        plot.bottom - self.fraction(v) * plot.height()
    }
}

/// Returns a tick step of 1, 2 or 5 times a power of ten that splits `range` into
/// about `target` intervals. Falls back to 1 for empty or non-finite ranges.
fn nice_step(range: f64, target: f64) -> f64 {
    let raw = range / target;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let nice = if normalised <= 1.0 {
        1.0
    } else if normalised <= 2.0 {
        2.0
    } else if normalised <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A rectangle in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Rect {
    /// The plot area, leaving room for a legend of the given width on the right.
    fn plot_area(legend_width: f64) -> Self {
        let legend_space = if legend_width > 0.0 {
            legend_width + 20.0
        } else {
            0.0
        };
        Rect {
            left: MARGIN_LEFT,
            top: MARGIN_TOP,
            right: WIDTH - MARGIN_RIGHT - legend_space,
            bottom: HEIGHT - MARGIN_BOTTOM,
        }
    }

    fn width(&self) -> f64 {
        self.right - self.left
    }

    fn height(&self) -> f64 {
        self.bottom - self.top
    }
}

/// Width of the legend box for these curves (0 when there are none).
fn legend_width(curves: &[Curve]) -> f64 {
    if curves.is_empty() {
        return 0.0;
    }
    let longest = curves
        .iter()
        .map(|c| legend_label(&c.label).chars().count())
        .max()
        .unwrap_or(0);
    let text = longest as f64 * CHAR_EM * LEGEND_FONT;
    (legend_text_offset() + text + 12.0).clamp(LEGEND_MIN_WIDTH, LEGEND_MAX_WIDTH)
}

/// Distance from the legend box's left edge to the start of the label text.
fn legend_text_offset() -> f64 {
    12.0 + LEGEND_SAMPLE + 10.0
}

/// The label as shown in the legend: shortened with an ellipsis if it would not fit.
fn legend_label(label: &str) -> String {
    let room = LEGEND_MAX_WIDTH - legend_text_offset() - 12.0;
    let max_chars = (room / (CHAR_EM * LEGEND_FONT)).floor() as usize;
    if label.chars().count() <= max_chars {
        label.to_string()
    } else {
        let mut short: String = label.chars().take(max_chars - 1).collect();
        short.push('…');
        short
    }
}

/// Escapes the five XML special characters.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// The `<svg>` root element and a white background.
fn svg_open(svg: &mut String) {
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT_FAMILY}">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
}

/// The title, centred at the top.
fn svg_title(svg: &mut String, title: &str) {
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="34" font-size="20" text-anchor="middle" fill="#222">{}</text>"##,
        WIDTH / 2.0,
        escape_xml(title)
    );
}

/// Grid lines, tick marks, tick labels and the frame of the plot area.
fn svg_grid_and_ticks(svg: &mut String, plot: &Rect, x_axis: &Axis, y_axis: &Axis) {
    svg.push_str(r##"<g stroke="#e3e3e3" stroke-width="1">"##);
    svg.push('\n');
    for x in x_axis.ticks().into_iter().map(|v| x_axis.x_pixel(v, plot)) {
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{:.2}"/>"#,
            plot.top, plot.bottom
        );
    }
    for y in y_axis.ticks().into_iter().map(|v| y_axis.y_pixel(v, plot)) {
        let _ = writeln!(
            svg,
            r#"<line x1="{:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}"/>"#,
            plot.left, plot.right
        );
    }
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="none" stroke="#333" stroke-width="1"/>"##,
        plot.left,
        plot.top,
        plot.width(),
        plot.height()
    );
    svg_x_ticks(svg, plot, x_axis);
    svg_y_ticks(svg, plot, y_axis);
}

/// Tick marks and labels below the plot area.
fn svg_x_ticks(svg: &mut String, plot: &Rect, axis: &Axis) {
    let decimals = axis.decimals();
    svg.push_str(r##"<g font-size="12" fill="#333" text-anchor="middle">"##);
    svg.push('\n');
    for v in axis.ticks() {
        let x = axis.x_pixel(v, plot);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.2}" y1="{:.2}" x2="{x:.2}" y2="{:.2}" stroke="#333"/><text x="{x:.2}" y="{:.2}">{v:.decimals$}</text>"##,
            plot.bottom,
            plot.bottom + 5.0,
            plot.bottom + 19.0
        );
    }
    svg.push_str("</g>\n");
}

/// Tick marks and labels left of the plot area.
fn svg_y_ticks(svg: &mut String, plot: &Rect, axis: &Axis) {
    let decimals = axis.decimals();
    svg.push_str(r##"<g font-size="12" fill="#333" text-anchor="end">"##);
    svg.push('\n');
    for v in axis.ticks() {
        let y = axis.y_pixel(v, plot);
        let _ = writeln!(
            svg,
            r##"<line x1="{:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#333"/><text x="{:.2}" y="{:.2}">{v:.decimals$}</text>"##,
            plot.left - 5.0,
            plot.left,
            plot.left - 8.0,
            y + 4.0
        );
    }
    svg.push_str("</g>\n");
}

/// The axis labels: below the x axis, and rotated left of the y axis.
fn svg_axis_labels(svg: &mut String, plot: &Rect) {
    let cx = (plot.left + plot.right) / 2.0;
    let cy = (plot.top + plot.bottom) / 2.0;
    let _ = writeln!(
        svg,
        r##"<text x="{cx:.2}" y="{:.2}" font-size="14" text-anchor="middle" fill="#222">mean decision step</text>"##,
        HEIGHT - 16.0
    );
    let _ = writeln!(
        svg,
        r##"<text transform="translate(24 {cy:.2}) rotate(-90)" font-size="14" text-anchor="middle" fill="#222">accuracy (%)</text>"##
    );
}

/// Curve `index`: its line through `pixels` (already in SVG units, sorted by x) and a
/// marker on every point. The full label is attached as a `<title>` tooltip.
fn svg_curve(svg: &mut String, index: usize, curve: &Curve, pixels: &[(f64, f64)]) {
    let colour = PALETTE[index % PALETTE.len()];
    let _ = writeln!(svg, "<g><title>{}</title>", escape_xml(&curve.label));
    if pixels.len() >= 2 && curve.draw != Draw::Markers {
        let points: Vec<String> = pixels
            .iter()
            .map(|(x, y)| format!("{x:.2},{y:.2}"))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>"#,
            points.join(" ")
        );
    }
    if curve.draw != Draw::Line {
        for &(x, y) in pixels {
            svg.push_str(&marker(index, x, y));
        }
    }
    svg.push_str("</g>\n");
}

/// Reference `index`: a dashed line from `left` to `right` at height `y`, with the
/// full label as a `<title>` tooltip.
fn svg_reference(svg: &mut String, index: usize, label: &str, left: f64, right: f64, y: f64) {
    let _ = writeln!(
        svg,
        r#"<g><title>{}</title>{}</g>"#,
        escape_xml(label),
        dashed_line(index, left, right, y)
    );
}

/// The dashed line of reference `index`.
fn dashed_line(index: usize, left: f64, right: f64, y: f64) -> String {
    let colour = PALETTE[index % PALETTE.len()];
    format!(
        r#"<line x1="{left:.2}" y1="{y:.2}" x2="{right:.2}" y2="{y:.2}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/>"#
    )
}

/// A point marker for curve `index` centred on (x, y). The shape cycles through
/// circle, square, diamond and triangle so curves differ even without colour.
fn marker(index: usize, x: f64, y: f64) -> String {
    let colour = PALETTE[index % PALETTE.len()];
    let style = format!(r#"fill="{colour}" stroke="white" stroke-width="1""#);
    match index % 4 {
        0 => format!(r#"<circle cx="{x:.2}" cy="{y:.2}" r="4.5" {style}/>"#),
        1 => format!(
            r#"<rect x="{:.2}" y="{:.2}" width="8" height="8" {style}/>"#,
            x - 4.0,
            y - 4.0
        ),
        2 => format!(
            r#"<path d="M{x:.2} {:.2}L{:.2} {y:.2}L{x:.2} {:.2}L{:.2} {y:.2}Z" {style}/>"#,
            y - 5.5,
            x + 5.5,
            y + 5.5,
            x - 5.5
        ),
        _ => format!(
            r#"<path d="M{x:.2} {:.2}L{:.2} {:.2}L{:.2} {:.2}Z" {style}/>"#,
            y - 5.5,
            x + 5.0,
            y + 3.5,
            x - 5.0,
            y + 3.5
        ),
    }
}

/// A "no data" note in the middle of an empty plot.
fn svg_no_data(svg: &mut String, plot: &Rect) {
    let _ = writeln!(
        svg,
        r##"<text x="{:.2}" y="{:.2}" font-size="16" text-anchor="middle" fill="#888">no data</text>"##,
        (plot.left + plot.right) / 2.0,
        (plot.top + plot.bottom) / 2.0
    );
}

/// The legend box right of the plot: a line sample, marker and label per curve.
fn svg_legend(svg: &mut String, plot: &Rect, width: f64, curves: &[Curve]) {
    if curves.is_empty() {
        return;
    }
    let row = LEGEND_ROW.min((plot.height() - 12.0) / curves.len() as f64);
    let left = plot.right + 20.0;
    let height = 12.0 + row * curves.len() as f64;
    let _ = writeln!(
        svg,
        r##"<rect x="{left:.2}" y="{:.2}" width="{width:.2}" height="{height:.2}" fill="white" stroke="#bbb"/>"##,
        plot.top
    );
    for (i, curve) in curves.iter().enumerate() {
        let y = plot.top + 6.0 + row * (i as f64 + 0.5);
        let x0 = left + 12.0;
        let colour = PALETTE[i % PALETTE.len()];
        let line = format!(
            r#"<line x1="{x0:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="{colour}" stroke-width="2"/>"#,
            x0 + LEGEND_SAMPLE
        );
        let mark = marker(i, x0 + LEGEND_SAMPLE / 2.0, y);
        let sample = match (curve.reference, curve.draw) {
            (true, _) => dashed_line(i, x0, x0 + LEGEND_SAMPLE, y),
            (false, Draw::LineAndMarkers) => format!("{line}{mark}"),
            (false, Draw::Markers) => mark,
            (false, Draw::Line) => line,
        };
        let _ = writeln!(
            svg,
            r##"<g><title>{}</title>{sample}<text x="{:.2}" y="{:.2}" font-size="{LEGEND_FONT}" fill="#222">{}</text></g>"##,
            escape_xml(&curve.label),
            left + legend_text_offset(),
            y + 4.5,
            escape_xml(&legend_label(&curve.label))
        );
    }
}

/// `stem` with `suffix` appended to its last component (so `a/run.v2` + `.svg` is
/// `a/run.v2.svg`, not `a/run.svg`).
fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The font database holding only the embedded DejaVu Sans, built once.
fn font_database() -> Arc<usvg::fontdb::Database> {
    static DATABASE: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    let database = DATABASE.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(FONT_BYTES)));
        db.set_sans_serif_family(FONT_FAMILY);
        Arc::new(db)
    });
    Arc::clone(database)
}

/// Parse options that resolve all text to the embedded font.
fn usvg_options() -> usvg::Options<'static> {
    usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        fontdb: font_database(),
        ..usvg::Options::default()
    }
}

/// Rasterises `svg` at its own size (one pixel per user unit) and encodes it as PNG.
fn render_png(svg: &str) -> std::result::Result<Vec<u8>, String> {
    let tree = usvg::Tree::from_str(svg, &usvg_options())
        .map_err(|e| format!("cannot parse the generated SVG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("cannot allocate a {size:?} image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| format!("cannot encode PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;

    /// Two made-up curves shaped like a threshold sweep.
    fn example_curves() -> Vec<Curve> {
        vec![
            Curve::new(
                "rank-coded h=64",
                vec![
                    (3.1, 0.62),
                    (5.4, 0.78),
                    (8.0, 0.88),
                    (12.5, 0.93),
                    (18.0, 0.95),
                ],
            ),
            Curve::new(
                "dense baseline",
                vec![(20.0, 0.955), (6.0, 0.70), (10.0, 0.84), (14.0, 0.91)],
            ),
        ]
    }

    fn parse(svg: &str) -> usvg::Tree {
        usvg::Tree::from_str(svg, &usvg_options()).expect("generated SVG must parse")
    }

    /// Pixels with all channels below 100 inside the given box of the image.
    fn dark_pixels(png: &[u8], x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> usize {
        let pixmap = tiny_skia::Pixmap::decode_png(png).unwrap();
        y.flat_map(|row| x.clone().map(move |col| (col, row)))
            .filter(|&(col, row)| {
                let p = pixmap.pixel(col, row).unwrap();
                p.red() < 100 && p.green() < 100 && p.blue() < 100
            })
            .count()
    }

    /// The x coordinates of every vertex of every polyline in `svg`.
    fn polyline_xs(svg: &str) -> Vec<Vec<f64>> {
        svg.split(r#"<polyline points=""#)
            .skip(1)
            .map(|rest| {
                rest.split('"')
                    .next()
                    .unwrap()
                    .split(' ')
                    .map(|xy| xy.split(',').next().unwrap().parse().unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn svg_parses_back_with_usvg_at_full_size() {
        let svg = accuracy_vs_decision_svg("Speed/accuracy", StepAxis::Task(20), &example_curves());
        let tree = parse(&svg);
        assert_eq!(tree.size().to_int_size().width(), 900);
        assert_eq!(tree.size().to_int_size().height(), 600);
        assert!(svg.contains(r#"fill="white""#));
        assert!(svg.contains("DejaVu Sans"));
    }

    #[test]
    fn svg_contains_each_label_title_and_axis_labels() {
        let svg = accuracy_vs_decision_svg("Speed/accuracy", StepAxis::Task(20), &example_curves());
        for needle in [
            "rank-coded h=64",
            "dense baseline",
            "Speed/accuracy",
            "mean decision step",
            "accuracy (%)",
        ] {
            assert!(svg.contains(needle), "missing {needle}");
        }
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(PALETTE[..2].iter().all(|c| svg.contains(c)));
    }

    #[test]
    fn special_characters_are_escaped() {
        let curves = [Curve::new(r#"a<b & "c" 'd'>"#, vec![(1.0, 0.5)])];
        let svg = accuracy_vs_decision_svg("x < y & z", StepAxis::Task(4), &curves);
        parse(&svg);
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"));
        assert!(svg.contains("x &lt; y &amp; z"));
        assert!(!svg.contains("a<b"));
    }

    #[test]
    fn empty_and_single_point_curves_do_not_panic() {
        let cases: Vec<(usize, Vec<Curve>)> = vec![
            (0, vec![]),
            (10, vec![]),
            (0, vec![Curve::new("empty", vec![])]),
            (0, vec![Curve::new("one", vec![(0.0, 1.0)])]),
            (
                5,
                vec![
                    Curve::new("one", vec![(2.0, 0.4)]),
                    Curve::new("none", vec![]),
                ],
            ),
            (
                5,
                vec![Curve::new(
                    "bad",
                    vec![(f64::NAN, 0.5), (1.0, f64::INFINITY)],
                )],
            ),
        ];
        for (max_steps, curves) in cases {
            let svg = accuracy_vs_decision_svg("t", StepAxis::Task(max_steps), &curves);
            parse(&svg);
            for bad in ["NaN", "inf"] {
                assert!(!svg.contains(bad), "{bad} in SVG for {curves:?}");
            }
            assert!(svg.matches("<polyline").count() == 0);
            for c in &curves {
                assert!(svg.contains(&c.label));
            }
        }
    }

    #[test]
    fn points_are_sorted_by_x_before_drawing() {
        let svg = accuracy_vs_decision_svg("t", StepAxis::Task(20), &example_curves());
        for xs in polyline_xs(&svg) {
            assert!(xs.windows(2).all(|w| w[0] <= w[1]), "unsorted: {xs:?}");
        }
    }

    #[test]
    fn y_axis_runs_from_below_the_minimum_to_100_in_nice_steps() {
        let axis = Axis::for_accuracy([62.0, 95.5].into_iter());
        assert!(axis.min < 62.0 && axis.min >= 50.0, "{axis:?}");
        assert_eq!(axis.max, 100.0);
        assert!([1.0, 2.0, 5.0, 10.0].contains(&axis.step), "{axis:?}");
        assert_eq!(*axis.ticks().last().unwrap(), 100.0);

        let perfect = Axis::for_accuracy([100.0].into_iter());
        assert_eq!((perfect.min, perfect.max), (99.0, 100.0));

        let close = Axis::for_accuracy([99.5, 99.85].into_iter());
        assert!(close.min >= 99.0 && close.min < 99.5, "{close:?}");
        assert!(perfect.ticks().len() >= 2);

        let none = Axis::for_accuracy(std::iter::empty());
        assert_eq!((none.min, none.max), (0.0, 100.0));
    }

    #[test]
    fn x_axis_spans_zero_to_max_steps_with_integer_ticks() {
        let axis = Axis::for_steps(20, [3.0, 18.0].into_iter());
        assert_eq!((axis.min, axis.max), (0.0, 20.0));
        assert!(axis.step >= 1.0 && axis.step.fract() == 0.0);
        let zero = Axis::for_steps(0, std::iter::empty());
        assert_eq!(zero.max, 1.0);
        let beyond = Axis::for_steps(10, [12.5].into_iter());
        assert_eq!(beyond.max, 13.0);
    }

    #[test]
    fn a_close_view_leaves_out_later_points_and_ticks_between_steps() {
        let curves = [Curve::new(
            "c",
            vec![(1.05, 0.97), (1.4, 0.98), (2.9, 0.99), (6.0, 0.5)],
        )];
        let svg = accuracy_vs_decision_svg("t", StepAxis::UpTo(3.0), &curves);
        parse(&svg);
        assert_eq!(
            polyline_xs(&svg)[0].len(),
            3,
            "the point at 6 steps is left out"
        );
        assert!(svg.contains(">1.5</text>") && svg.contains(">3.0</text>"));
        assert!(!svg.contains(">0.5</text>"), "the axis starts at step 1");
        let axis = Axis::for_steps_up_to(3.0, [1.05, 2.9].into_iter());
        assert_eq!((axis.min, axis.max, axis.step), (1.0, 3.0, 0.5));
        // The y axis follows the points shown: none as low as 50%.
        assert!(!svg.contains(">50</text>") && !svg.contains(">50.0</text>"));
        for (max, xs) in [(3.0, vec![]), (0.0, vec![]), (2.0, vec![2.5])] {
            let axis = Axis::for_steps_up_to(max, xs.into_iter());
            assert!(axis.min < axis.max && axis.step > 0.0, "{axis:?}");
        }
    }

    #[test]
    fn a_reference_is_a_dashed_line_across_the_plot_that_leaves_the_x_axis_alone() {
        let curves = [
            Curve::new("c", vec![(1.05, 0.97), (1.4, 0.98), (2.9, 0.99)]),
            Curve::reference("S4NN (SNN)", 0.974),
        ];
        let svg = accuracy_vs_decision_svg("t", StepAxis::UpTo(3.0), &curves);
        parse(&svg);
        assert!(
            !svg.contains(">0.5</text>"),
            "the axis still starts at step 1"
        );
        assert_eq!(polyline_xs(&svg).len(), 1, "no polyline for the reference");
        // One dashed line in the plot and one in the legend, none for the curve.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "{svg}");
        assert!(svg.contains("<title>S4NN (SNN)</title>"));
        let plot = Rect::plot_area(legend_width(&curves));
        let x = |v: f64| format!(r#"x1="{:.2}""#, v);
        let line = svg.split("<title>S4NN (SNN)</title>").nth(1).unwrap();
        assert!(
            line.starts_with(&format!("<line {}", x(plot.left))),
            "{line}"
        );
        // The y axis reaches down to a reference below every point.
        let low = Curve::reference("low", 0.9);
        let svg = accuracy_vs_decision_svg("t", StepAxis::Task(20), &[curves[0].clone(), low]);
        assert!(
            svg.contains(">90</text>") || svg.contains(">90.0</text>"),
            "{svg}"
        );
    }

    #[test]
    fn a_scatter_has_markers_without_a_line_and_a_front_a_line_without_markers() {
        let points = vec![(1.0, 0.9), (2.0, 0.95), (3.0, 0.97)];
        let scatter = Curve::new("runs", points.clone()).drawn(Draw::Markers);
        let front = Curve::new("front", points).drawn(Draw::Line);
        let svg = accuracy_vs_decision_svg("t", StepAxis::Task(4), &[scatter, front]);
        parse(&svg);
        assert_eq!(svg.matches("<polyline").count(), 1, "the front's line only");
        // Three markers in the plot and one in the legend, all of the scatter (circles).
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
        assert!(
            !svg.contains(r#"width="8""#),
            "no marker of the front (squares): {svg}"
        );
    }

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(100.0, 10.0), 10.0);
        assert_eq!(nice_step(45.0, 6.0), 10.0);
        assert_eq!(nice_step(12.0, 6.0), 2.0);
        assert_eq!(nice_step(1.0, 6.0), 0.2);
        assert_eq!(nice_step(0.0, 6.0), 1.0);
        assert_eq!(nice_step(f64::NAN, 6.0), 1.0);
    }

    #[test]
    fn long_labels_are_shortened_in_the_legend_only() {
        let long = "a very long label that would never fit in the legend box";
        let svg = accuracy_vs_decision_svg(
            "t",
            StepAxis::Task(10),
            &[Curve::new(long, vec![(1.0, 0.9)])],
        );
        assert!(svg.contains(&format!("<title>{long}</title>")));
        assert!(svg.contains('…'));
        assert!(legend_width(&[Curve::new(long, vec![])]) <= LEGEND_MAX_WIDTH);
    }

    #[test]
    fn write_figure_writes_svg_and_png_of_the_requested_size() {
        let dir = test_dir("plot-write");
        let stem = dir.join("sweep.v2");
        let (svg_path, png_path) = write_figure(
            &stem,
            "Speed/accuracy",
            StepAxis::Task(20),
            &example_curves(),
        )
        .expect("write_figure");
        assert_eq!(svg_path, dir.join("sweep.v2.svg"));
        assert_eq!(png_path, dir.join("sweep.v2.png"));
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert_eq!(
            svg,
            accuracy_vs_decision_svg("Speed/accuracy", StepAxis::Task(20), &example_curves())
        );
        let png = std::fs::read(&png_path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let pixmap = tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (900, 600));
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn png_text_is_drawn_with_the_embedded_font() {
        // Two figures identical except for the text: the second has no title and its
        // labels are blanks of the same length (so the layout does not move).
        let dir = test_dir("plot-text");
        let curves = example_curves();
        let blanked: Vec<Curve> = curves
            .iter()
            .map(|c| Curve::new(" ".repeat(c.label.chars().count()), c.points.clone()))
            .collect();
        let (_, with_text) = write_figure(
            &dir.join("with"),
            "Speed/accuracy",
            StepAxis::Task(20),
            &curves,
        )
        .unwrap();
        let (_, without_text) =
            write_figure(&dir.join("without"), "", StepAxis::Task(20), &blanked).unwrap();
        let with_text = std::fs::read(with_text).unwrap();
        let without_text = std::fs::read(without_text).unwrap();

        let title = (300..600, 10..45);
        assert!(dark_pixels(&with_text, title.0.clone(), title.1.clone()) > 100);
        assert_eq!(dark_pixels(&without_text, title.0, title.1), 0);

        let plot = Rect::plot_area(legend_width(&curves));
        let text_left = (plot.right + 20.0 + legend_text_offset()) as u32;
        let legend = (text_left..895, plot.top as u32 + 2..plot.top as u32 + 50);
        assert!(dark_pixels(&with_text, legend.0.clone(), legend.1.clone()) > 100);
        assert_eq!(dark_pixels(&without_text, legend.0, legend.1), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writing_into_a_missing_directory_names_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "rankcode-plot-{}-missing/nested",
            std::process::id()
        ));
        let err =
            write_figure(&dir.join("fig"), "t", StepAxis::Task(10), &example_curves()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&*dir.to_string_lossy()), "{message}");
        assert!(message.contains("fig.svg"), "{message}");
        assert!(matches!(err, Error::File { .. }));
    }

    /// Manual check: writes `plot_example.{svg,png}` into the system temp dir.
    #[test]
    #[ignore = "writes an example figure for eyeballing"]
    fn render_example_figure() {
        let stem = std::env::temp_dir().join("plot_example");
        let mut curves = example_curves();
        curves.push(Curve::new("single point", vec![(15.0, 0.8)]));
        curves.push(Curve::new("empty <curve> & co", vec![]));
        let (svg, png) = write_figure(
            &stem,
            "Speed/accuracy trade-off (toy task)",
            StepAxis::Task(20),
            &curves,
        )
        .unwrap();
        println!("{} {}", svg.display(), png.display());
    }
}
