//! The accuracy-against-decision-step figure as text, for the terminal: each curve's
//! points drawn with its own letter on a character grid.

use super::Curve;
use std::fmt::Write as _;

/// Columns of the plot area.
const COLUMNS: usize = 61;
/// Rows of the plot area.
const ROWS: usize = 15;
/// Width of the y tick labels ("100%").
const LABEL_WIDTH: usize = 5;

/// A text plot of `curves` (x: mean decision step from 0 to `steps`, y: accuracy),
/// each drawn with its letter from `marks`; a cell that two curves share shows `*`.
/// The y axis runs from the lowest accuracy shown, rounded down to 5%, to 100%. A
/// legend line names the letters. Reference lines are left out.
pub fn accuracy_vs_decision_text(curves: &[Curve], marks: &[char], steps: usize) -> String {
    assert_eq!(curves.len(), marks.len(), "one mark per curve");
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| {
            c.sorted_points()
                .into_iter()
                .filter(|&(x, _)| x <= steps as f64 && !c.reference)
                .collect()
        })
        .collect();
    let lowest = points
        .iter()
        .flatten()
        .map(|p| 100.0 * p.1)
        .fold(100.0, f64::min);
    let y_min = ((lowest / 5.0).floor() * 5.0).min(95.0);
    let mut grid = vec![vec![' '; COLUMNS]; ROWS];
    for (curve, &mark) in points.iter().zip(marks) {
        for &(x, y) in curve {
            let column = (x / steps as f64 * (COLUMNS - 1) as f64).round() as usize;
            let height = (100.0 * y - y_min) / (100.0 - y_min) * (ROWS - 1) as f64;
            let row = ROWS - 1 - height.round().clamp(0.0, (ROWS - 1) as f64) as usize;
            let cell = &mut grid[row][column.min(COLUMNS - 1)];
            *cell = if *cell == ' ' || *cell == mark {
                mark
            } else {
                '*'
            };
        }
    }
    let mut out = String::new();
    for (r, line) in grid.iter().enumerate() {
        // Labels on the top, middle and bottom rows.
        let label = if r % (ROWS / 2) == 0 {
            let value = 100.0 - (100.0 - y_min) * r as f64 / (ROWS - 1) as f64;
            format!("{value:.0}%")
        } else {
            String::new()
        };
        let text: String = line.iter().collect();
        let _ = writeln!(out, "{label:>LABEL_WIDTH$} |{}", text.trim_end());
    }
    let _ = writeln!(out, "{:>LABEL_WIDTH$} +{}", "", "-".repeat(COLUMNS));
    // Tick labels at every quarter of the steps.
    let mut ticks = " ".repeat(LABEL_WIDTH + 2 + COLUMNS + 4);
    for q in 0..=4 {
        let value = (steps * q / 4).to_string();
        let at = LABEL_WIDTH + 2 + q * (COLUMNS - 1) / 4;
        let start = at.saturating_sub(value.len() / 2);
        ticks.replace_range(start..start + value.len(), &value);
    }
    let _ = writeln!(out, "{}", ticks.trim_end());
    let _ = writeln!(
        out,
        "{:>width$}",
        "mean decision step",
        width = LABEL_WIDTH + 2 + (COLUMNS + 18) / 2
    );
    let legend: Vec<String> = curves
        .iter()
        .zip(marks)
        .map(|(c, m)| format!("{m} {}", c.label))
        .collect();
    let _ = writeln!(
        out,
        "{:>LABEL_WIDTH$}  {}   (* where they meet)",
        "",
        legend.join("   ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn points_land_where_their_values_say() {
        let curves = [
            Curve::new("first", vec![(0.0, 1.0), (40.0, 0.8)]),
            Curve::new("second", vec![(20.0, 0.9)]),
        ];
        let text = accuracy_vs_decision_text(&curves, &['A', 'B'], 40);
        let rows = lines(&text);
        let column = |c: usize| LABEL_WIDTH + 2 + c;
        // Top left: 100% at step 0; bottom right: 80% at step 40; middle: 90% at 20.
        assert!(rows[0].starts_with(" 100% |A"), "{text}");
        assert_eq!(rows[ROWS - 1].chars().nth(column(COLUMNS - 1)), Some('A'));
        assert!(rows[ROWS - 1].starts_with("  80% |"), "{text}");
        assert_eq!(rows[ROWS / 2].chars().nth(column(COLUMNS / 2)), Some('B'));
        assert!(rows[ROWS / 2].starts_with("  90% |"), "{text}");
        assert!(rows[ROWS + 1].starts_with("       0"), "{text}");
        assert!(rows[ROWS + 1].trim_end().ends_with("40"), "{text}");
        assert!(text.contains("A first   B second"), "{text}");
    }

    #[test]
    fn shared_cells_and_far_points() {
        let curves = [
            Curve::new("a", vec![(10.0, 0.95), (60.0, 0.99)]),
            Curve::new("b", vec![(10.0, 0.95), (f64::NAN, 0.5)]),
        ];
        let text = accuracy_vs_decision_text(&curves, &['a', 'b'], 40);
        assert_eq!(text.matches('*').count(), 2, "{text}"); // the cell, the legend
        assert!(!text.lines().take(ROWS).any(|l| l.contains('a')), "{text}");
        // Nothing below 95%: the axis still spans 5 points.
        assert!(text.starts_with(" 100% |"), "{text}");
        assert!(lines(&text)[ROWS - 1].starts_with("  95% |"), "{text}");
    }
}
