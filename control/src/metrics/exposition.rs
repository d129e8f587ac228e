//! The Prometheus text exposition format (version 0.0.4): one `# HELP` and `# TYPE`
//! line per family, then its samples, label values escaped. Written by hand: a
//! handful of families does not need a metrics crate and its global registry.

use std::fmt::Write as _;

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only grows (its name ends in `_total`).
    Counter,
}

/// One metric family and its samples.
#[derive(Debug, Clone)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample with `labels`.
    pub fn push(&mut self, labels: &[(&'static str, &str)], value: f64) {
        let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.samples.push((labels, value));
    }

    /// Appends the family to `out`.
    pub fn write(&self, out: &mut String) {
        let kind = match self.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (key, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{key}=\"{}\"", escape_label(value));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Help text with `\` and newlines escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// A sample value: whole numbers without a fraction, others as Rust prints them.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Family, Kind};

    #[test]
    fn families_render_with_escaped_labels() {
        let mut f = Family::new(
            "dbcrate_example_total",
            Kind::Counter,
            "Things\\counted\nhere.",
        );
        f.push(&[("org", "org_1"), ("name", "a \"quoted\"\\name\nx")], 3.0);
        f.push(&[], 0.25);
        let mut out = String::new();
        f.write(&mut out);
        assert_eq!(
            out,
            "# HELP dbcrate_example_total Things\\\\counted\\nhere.\n\
             # TYPE dbcrate_example_total counter\n\
             dbcrate_example_total{org=\"org_1\",name=\"a \\\"quoted\\\"\\\\name\\nx\"} 3\n\
             dbcrate_example_total 0.25\n"
        );
    }

    #[test]
    fn values_print_as_prometheus_reads_them() {
        let mut f = Family::new("g", Kind::Gauge, "h");
        for v in [1_764_000_000.0, -2.0, f64::NAN, f64::INFINITY, 1.5e20] {
            f.push(&[], v);
        }
        let mut out = String::new();
        f.write(&mut out);
        let values: Vec<&str> = out
            .lines()
            .skip(2)
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            values,
            ["1764000000", "-2", "NaN", "+Inf", "150000000000000000000"]
        );
    }
}
