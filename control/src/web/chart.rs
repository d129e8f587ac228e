//! Charts as inline SVG made on the server: no script, no image request, and nothing
//! the Content-Security-Policy has to allow (SVG presentation attributes such as
//! `stroke` are not CSS). Each chart carries its numbers in words for screen readers and
//! for anyone who cannot see the line.

use maud::{html, Markup};

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 48.0;
const PAD: f64 = 4.0;

/// A line through `values` (oldest first), scaled from zero to the largest, with the
/// newest point marked; `describe` says in words what it shows.
pub fn sparkline(values: &[f64], describe: &str) -> Markup {
    let top = values
        .iter()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let step = if values.len() > 1 {
        (WIDTH - 2.0 * PAD) / (values.len() - 1) as f64
    } else {
        0.0
    };
    let point = |i: usize, v: f64| {
        let x = PAD + step * i as f64;
        let y = HEIGHT - PAD - (v / top) * (HEIGHT - 2.0 * PAD);
        (x, y)
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = point(i, *v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let last = values.last().map(|v| point(values.len() - 1, *v));
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            width=(WIDTH) height=(HEIGHT) role="img" aria-label=(describe) {
            title { (describe) }
            line x1=(PAD) y1=(HEIGHT - PAD) x2=(WIDTH - PAD) y2=(HEIGHT - PAD) stroke="currentColor" stroke-opacity="0.3" stroke-width="1" {}
            @if points.len() > 1 {
                polyline points=(points.join(" ")) fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" {}
            }
            @if let Some((x, y)) = last {
                circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" fill="currentColor" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn a_line_is_scaled_into_the_box_and_described() {
        let svg = sparkline(&[1.0, 2.0, 4.0], "sizes from 1 to 4").into_string();
        assert!(
            svg.contains("points=\"4.0,34.0 120.0,24.0 236.0,4.0\""),
            "{svg}"
        );
        assert!(svg.contains("aria-label=\"sizes from 1 to 4\""));
        assert!(svg.contains("<title>sizes from 1 to 4</title>"));
        assert!(!svg.contains("style"), "no inline CSS for the CSP to block");
        // Inside <svg> the HTML parser nests an unclosed <line> around what follows.
        assert!(
            svg.contains("></line>") && svg.contains("></polyline>"),
            "{svg}"
        );
        let empty = sparkline(&[], "nothing yet").into_string();
        assert!(!empty.contains("polyline") && !empty.contains("circle"));
    }
}
