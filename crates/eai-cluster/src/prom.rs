//! Prometheus text exposition format, version 0.0.4 (`text/plain; version=0.0.4`): a parser
//! for what dcgm-exporter and Prometheus federation serve, and the writer the agent uses.
//!
//! Written from the format's description (prometheus.io, "Exposition formats", text format
//! details): line oriented, `\n` separated; `# HELP name docstring` (`\\` and `\n` escaped) and
//! `# TYPE name counter|gauge|histogram|summary|untyped` (at most one each per name, TYPE
//! before the name's first sample); other `#` lines are comments; a sample is
//! `name{label="value",...} value [timestamp_ms]` with label values escaping `\\`, `\"` and
//! `\n`, and values as Go's `ParseFloat` reads them (`NaN`, `+Inf`, `-Inf` included).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A metric type from a `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetricType {
    /// Monotone counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram.
    Histogram,
    /// Summary.
    Summary,
    /// Untyped.
    Untyped,
}

impl MetricType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" => Self::Untyped,
            _ => return None,
        })
    }

    /// The keyword written on a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }
}

/// One sample line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PromSample {
    /// Metric name.
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Optional timestamp, ms since the Unix epoch (Prometheus federation writes one).
    pub timestamp_ms: Option<i64>,
}

impl PromSample {
    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition: samples in order, with the HELP and TYPE metadata seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Exposition {
    /// Every sample line.
    pub samples: Vec<PromSample>,
    /// `# HELP` docstrings by metric name.
    pub help: HashMap<String, String>,
    /// `# TYPE` by metric name.
    pub types: HashMap<String, MetricType>,
}

impl Exposition {
    /// The samples of one metric.
    pub fn metric<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a PromSample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Parses text exposition format 0.0.4. `what` names the source in errors.
    ///
    /// # Errors
    ///
    /// [`Error::Exposition`] naming the line: bad metric or label names, unterminated label
    /// values, bad escapes, duplicate labels, unparseable values or timestamps, a second HELP
    /// or TYPE for one name, an unknown type, or a TYPE after the name's first sample.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let mut out = Exposition::default();
        let mut seen: HashSet<String> = HashSet::new();
        for (i, raw) in text.split('\n').enumerate() {
            let err =
                |reason: String| Error::Exposition { what: what.to_string(), line: i + 1, reason };
            let line = raw.trim_end_matches('\r').trim_matches([' ', '\t']);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                let rest = rest.trim_start_matches([' ', '\t']);
                let (kw, tail) = split_token(rest);
                match kw {
                    "HELP" => {
                        let (name, doc) = split_token(tail);
                        if !valid_metric_name(name) {
                            return Err(err(format!("HELP for invalid metric name `{name}`")));
                        }
                        let doc = unescape(doc, false).map_err(err)?;
                        if out.help.insert(name.to_string(), doc).is_some() {
                            return Err(err(format!("second HELP line for `{name}`")));
                        }
                    }
                    "TYPE" => {
                        let (name, tail) = split_token(tail);
                        let (ty, extra) = split_token(tail);
                        if !valid_metric_name(name) {
                            return Err(err(format!("TYPE for invalid metric name `{name}`")));
                        }
                        if !extra.is_empty() {
                            return Err(err(format!("trailing text after TYPE: `{extra}`")));
                        }
                        let t = MetricType::parse(ty)
                            .ok_or_else(|| err(format!("unknown metric type `{ty}`")))?;
                        if seen.contains(name) {
                            return Err(err(format!("TYPE for `{name}` after its first sample")));
                        }
                        if out.types.insert(name.to_string(), t).is_some() {
                            return Err(err(format!("second TYPE line for `{name}`")));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let s = parse_sample(line).map_err(err)?;
            seen.insert(s.name.clone());
            out.samples.push(s);
        }
        Ok(out)
    }
}

fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Unescapes `\\`, `\n` and (in label values) `\"`.
fn unescape(s: &str, quotes: bool) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            // HELP text: an unknown escape is kept as written (Prometheus is lenient here).
            Some(o) if !quotes => {
                out.push('\\');
                out.push(o);
            }
            Some(o) => return Err(format!("invalid escape `\\{o}` in a label value")),
            None => return Err("dangling backslash".into()),
        }
    }
    Ok(out)
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

fn parse_sample(line: &str) -> std::result::Result<PromSample, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("invalid metric name `{name}`"));
    }
    let mut rest = &line[name_end..];
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(r)?;
        labels = parsed;
        rest = after;
    }
    let (value, tail) = split_token(rest);
    if value.is_empty() {
        return Err(format!("`{name}` has no value"));
    }
    let value = parse_value(value).ok_or_else(|| format!("`{value}` is not a number"))?;
    let (ts, extra) = split_token(tail);
    if !extra.is_empty() {
        return Err(format!("trailing text `{extra}`"));
    }
    let timestamp_ms = if ts.is_empty() {
        None
    } else {
        Some(ts.parse::<i64>().map_err(|_| format!("timestamp `{ts}` is not an integer (ms)"))?)
    };
    Ok(PromSample { name: name.to_string(), labels, value, timestamp_ms })
}

type Labels<'a> = (Vec<(String, String)>, &'a str);

fn parse_labels(mut r: &str) -> std::result::Result<Labels<'_>, String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        r = r.trim_start_matches([' ', '\t']);
        if let Some(after) = r.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = r.find('=').ok_or("label without `=`")?;
        let lname = r[..eq].trim_matches([' ', '\t']);
        if !valid_label_name(lname) {
            return Err(format!("invalid label name `{lname}`"));
        }
        r = r[eq + 1..].trim_start_matches([' ', '\t']);
        let body =
            r.strip_prefix('"').ok_or_else(|| format!("label `{lname}`: value not quoted"))?;
        // Find the closing quote, skipping escapes.
        let mut end = None;
        let mut esc = false;
        for (i, c) in body.char_indices() {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("label `{lname}`: unterminated value"))?;
        let value = unescape(&body[..end], true).map_err(|e| format!("label `{lname}`: {e}"))?;
        if labels.iter().any(|(k, _)| k == lname) {
            return Err(format!("label `{lname}` given twice"));
        }
        labels.push((lname.to_string(), value));
        r = body[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = r.strip_prefix(',') {
            r = after;
        } else if !r.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label `{lname}`"));
        }
    }
}

/// Writes metric families in text format 0.0.4.
#[derive(Debug, Default)]
pub struct PromWriter {
    out: String,
}

impl PromWriter {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let v = if value.is_nan() {
            "NaN".to_string()
        } else if value.is_infinite() {
            if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
        } else {
            format!("{value}")
        };
        let _ = writeln!(self.out, " {v}");
        self
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The content type of text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_dcgm_style_lines() {
        let t = "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\", UUID=\"GPU-1\",Hostname=\"n\\\"1\"} 409.692000\nx_total 3 1712345678901\n";
        let e = Exposition::parse(t, "t").unwrap();
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.samples[0].label("Hostname"), Some("n\"1"));
        assert_eq!(e.samples[0].value, 409.692);
        assert_eq!(e.samples[1].timestamp_ms, Some(1_712_345_678_901));
        assert_eq!(e.types["DCGM_FI_DEV_POWER_USAGE"], MetricType::Gauge);
        assert_eq!(e.help["DCGM_FI_DEV_POWER_USAGE"], "Power draw (in W).");
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for (t, line) in [
            ("a 1\nb{x=\"1} 2\n", 2),
            ("a{x=1} 2", 1),
            ("a{x=\"1\",x=\"2\"} 2", 1),
            ("a one", 1),
            ("# TYPE a gauge\n# TYPE a gauge\n", 2),
            ("a 1\n# TYPE a gauge\n", 2),
            ("# TYPE a meter\n", 1),
            ("9a 1", 1),
            ("a{x=\"\\q\"} 1", 1),
            ("a 1 2 3", 1),
            ("a", 1),
        ] {
            match Exposition::parse(t, "fixture") {
                Err(Error::Exposition { line: l, .. }) => assert_eq!(l, line, "{t:?}"),
                other => panic!("{t:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn writer_output_parses_back() {
        let mut w = PromWriter::new();
        w.family("eai_energy_joules_total", MetricType::Counter, "Energy \\ since start\nJ")
            .sample("eai_energy_joules_total", &[("host", "a\"b"), ("source", "x\\y\nz")], 12.5)
            .sample("eai_energy_joules_total", &[], f64::INFINITY);
        let text = w.finish();
        let e = Exposition::parse(&text, "w").unwrap();
        assert_eq!(e.samples[0].label("source"), Some("x\\y\nz"));
        assert_eq!(e.samples[0].value, 12.5);
        assert_eq!(e.samples[1].value, f64::INFINITY);
        assert_eq!(e.help["eai_energy_joules_total"], "Energy \\ since start\nJ");
    }
}
