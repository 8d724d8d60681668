//! Served models in the pipeline: an OpenAI-compatible server as a study "scheme" (one per
//! endpoint or deployment label), `eai-model`'s tokenizer on the client side, and energy per
//! response under load ([`LoadStudy`](crate::serve::LoadStudy)): `eai-serve`'s load generator with `eai-power`'s meter
//! windows on the steady state, counting only the GPUs the server uses, the idle power shown
//! apart.

use std::path::Path;
use std::time::Duration;

use eai_core::{LanguageModel, ModelError};
use eai_power::{Baseline, Meter, PowerSource};
pub use eai_serve::{
    Arrival, Attempts, Client, ClockMarker, EdgeMarker, Endpoint, GenerationRoute, GpuProcesses,
    GpuSelection, LoadConfig, LoadRun, OpenAiModel, PairTokenizer, Percentiles, RequestRecord,
    SelectionBasis, ServeError, ServeOptions, SteadyState, TokenLogprobs, Tokenization,
    cut_at_stop, proc_is_descendant, run_load, select_gpus,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scheme::Scheme;
use crate::study::ModelLoader;

/// `eai-model`'s tokenizer as the client-side tokenizer of a served model.
#[cfg(feature = "model")]
#[derive(Debug, Clone)]
pub struct ModelTokenizer(pub eai_model::Tokenizer);

#[cfg(feature = "model")]
impl eai_serve::PairTokenizer for ModelTokenizer {
    fn encode_pair(
        &self,
        context: &str,
        continuation: &str,
    ) -> std::result::Result<(Vec<u32>, Vec<u32>), String> {
        eai_model::encode_pair(&self.0, context, continuation).map_err(|e| e.to_string())
    }

    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, String> {
        self.0.encode(text).map_err(|e| e.to_string())
    }

    fn adds_bos(&self) -> Option<bool> {
        Some(self.0.adds_bos())
    }
}

/// Loads the tokenizer the server runs: from a GGUF file (its vocabulary and merges), or from a
/// `tokenizer.json` (BOS/EOS ids from a `config.json` beside it, when there is one).
///
/// # Errors
/// [`Error::Config`] naming the file when it cannot be read as either.
#[cfg(feature = "model")]
pub fn load_tokenizer(path: &Path) -> Result<ModelTokenizer> {
    let bad = |reason: String| Error::Config {
        field: "--tokenizer",
        reason: format!("{}: {reason}", path.display()),
    };
    let is_gguf = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    let file = if path.is_dir() { path.join("tokenizer.json") } else { path.to_path_buf() };
    if is_gguf {
        let g = eai_model::GgufFile::open(path).map_err(|e| bad(e.to_string()))?;
        return eai_model::Tokenizer::from_gguf(&g)
            .map(ModelTokenizer)
            .map_err(|e| bad(e.to_string()));
    }
    let (mut bos, mut eos) = (None, Vec::new());
    if let Some(cfg) = file.parent().map(|d| d.join("config.json")).filter(|p| p.is_file()) {
        let text = std::fs::read_to_string(&cfg).map_err(|e| Error::io(&cfg, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::format(cfg.display().to_string(), e))?;
        bos = v.get("bos_token_id").and_then(serde_json::Value::as_u64).map(|x| x as u32);
        match v.get("eos_token_id") {
            Some(serde_json::Value::Array(a)) => {
                eos = a.iter().filter_map(serde_json::Value::as_u64).map(|x| x as u32).collect()
            }
            Some(x) => eos.extend(x.as_u64().map(|x| x as u32)),
            None => {}
        }
    }
    eai_model::Tokenizer::from_file(&file, bos, &eos)
        .map(ModelTokenizer)
        .map_err(|e| bad(e.to_string()))
}

/// A [`ModelLoader`] whose schemes are deployments: each scheme label names the endpoint that
/// serves the model that way (e.g. `fp16` → the vLLM server of the FP16 checkpoint, `int8` →
/// the one of its W8A8 checkpoint). A study then compares what the operator deployed.
#[derive(Debug, Clone)]
pub struct EndpointLoader {
    name: String,
    endpoints: Vec<(Scheme, Endpoint)>,
    opts: ServeOptions,
}

impl EndpointLoader {
    /// Deployments by scheme; `opts` applies to each (its label is set to the scheme's).
    pub fn new(
        name: impl Into<String>,
        endpoints: Vec<(Scheme, Endpoint)>,
        opts: ServeOptions,
    ) -> Self {
        Self { name: name.into(), endpoints, opts }
    }

    /// The schemes, in the order given.
    pub fn schemes(&self) -> Vec<Scheme> {
        self.endpoints.iter().map(|(s, _)| *s).collect()
    }
}

impl ModelLoader for EndpointLoader {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, scheme: Scheme) -> std::result::Result<Box<dyn LanguageModel>, ModelError> {
        let ep =
            self.endpoints.iter().find(|(s, _)| *s == scheme).map(|(_, e)| e.clone()).ok_or_else(
                || ModelError::Unsupported {
                    model: self.name.clone(),
                    what: format!("scheme {} (no endpoint is labelled with it)", scheme.label()),
                },
            )?;
        let mut o = self.opts.clone();
        o.label = Some(scheme.label().to_string());
        let m = OpenAiModel::new(ep, o).map_err(|e| ModelError::backend("endpoint", e))?;
        Ok(Box::new(m))
    }
}

/// Which power sources count for the server.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerGpus {
    /// The server's process ids (its GPUs are those running one of them or a child).
    pub pids: Vec<u32>,
    /// The server's `CUDA_VISIBLE_DEVICES` as GPU UUIDs (or prefixes).
    pub visible_uuids: Vec<String>,
}

/// Chooses the server's sources among `sources`: GPUs by process, then by UUID; non-GPU
/// sources (replayed, constant, CPU) always count, as the user asked for them.
pub fn choose_sources(sources: &[Box<dyn PowerSource>], server: &ServerGpus) -> GpuSelection {
    let mut gpus = Vec::new();
    let mut always = Vec::new();
    for s in sources {
        let info = s.info();
        if matches!(info.domain, eai_power::Domain::Gpu | eai_power::Domain::GpuModule)
            && info.provenance == eai_power::Provenance::Measured
        {
            let uuid = info.meta.iter().find(|(k, _)| k == "uuid").map(|(_, v)| v.clone());
            let pids = s.status().ok().flatten().and_then(|st| st.processes);
            gpus.push(GpuProcesses::new(info.id, uuid, pids));
        } else {
            always.push(info.id);
        }
    }
    let mut sel = if gpus.is_empty() {
        select_gpus(&[], &[], &[], &|_, _| false)
    } else {
        select_gpus(&gpus, &server.pids, &server.visible_uuids, &eai_serve::proc_is_descendant)
    };
    if gpus.is_empty() {
        sel.notes.clear();
    }
    sel.server.extend(always);
    sel
}

/// The energy view of one steady window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadLevel {
    /// Client-side figures with the energy of the server's sources.
    pub steady: SteadyState,
    /// Energy of the sources shown apart (other GPUs), joules.
    pub others_energy_j: Option<f64>,
    /// The window's measurement (every source, every method and flag).
    pub measurement: Option<eai_power::Measurement>,
    /// Every request of the run.
    pub run: LoadRun,
}

/// A load study: one [`LoadLevel`] per load setting against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadReport {
    /// The server.
    pub endpoint: String,
    /// The served model.
    pub model: String,
    /// Which sources count for the server.
    pub selection: Option<GpuSelection>,
    /// The idle baseline of every source, measured before the load.
    pub idle: Option<Baseline>,
    /// Idle power of the server's sources, watts.
    pub idle_w: Option<f64>,
    /// One entry per load setting.
    pub levels: Vec<LoadLevel>,
    /// Where the power figures come from (e.g. `measured`, `replayed`).
    pub provenance: Vec<String>,
}

struct MeterMarker<'a>(&'a Meter);

impl EdgeMarker for MeterMarker<'_> {
    fn mark(&self) -> std::time::Instant {
        self.0.mark()
    }
}

/// Energy per response under load: runs each setting against the server, measuring the steady
/// window with `eai-power`.
#[derive(Debug)]
pub struct LoadStudy {
    endpoint: Endpoint,
    prompts: Vec<String>,
    levels: Vec<LoadConfig>,
    idle: Duration,
    pause: Duration,
}

impl LoadStudy {
    /// A study of `endpoint` with `prompts` (cycled) at each of `levels`. Defaults: a 10 s
    /// idle baseline before the load, 5 s pause between levels.
    pub fn new(endpoint: Endpoint, prompts: Vec<String>, levels: Vec<LoadConfig>) -> Self {
        Self {
            endpoint,
            prompts,
            levels,
            idle: Duration::from_secs(10),
            pause: Duration::from_secs(5),
        }
    }

    /// Idle baseline length (0: none).
    pub fn idle(mut self, d: Duration) -> Self {
        self.idle = d;
        self
    }

    /// Pause between levels (lets the server drain and the GPUs settle).
    pub fn pause(mut self, d: Duration) -> Self {
        self.pause = d;
        self
    }

    /// Runs every level. With `sources`, the sources the server uses (by `server`) are metered;
    /// without, only client-side figures are reported.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad endpoint or settings, [`Error::Power`] for meter failures.
    pub fn run(
        &self,
        sources: Option<Vec<Box<dyn PowerSource>>>,
        server: &ServerGpus,
        progress: bool,
    ) -> Result<LoadReport> {
        let cfg_err =
            |e: eai_serve::ServeError| Error::Config { field: "endpoint", reason: e.to_string() };
        let concurrency = self
            .levels
            .iter()
            .map(|l| match l.arrival {
                eai_serve::Arrival::Closed { clients } => clients,
                _ => l.max_in_flight.min(64),
            })
            .max()
            .unwrap_or(1);
        let client = eai_serve::Client::new(self.endpoint.clone(), concurrency).map_err(cfg_err)?;
        let mut report = LoadReport {
            endpoint: self.endpoint.base_url.clone(),
            model: self.endpoint.model.clone(),
            selection: None,
            idle: None,
            idle_w: None,
            levels: Vec::new(),
            provenance: Vec::new(),
        };
        let meter = match sources {
            Some(s) if !s.is_empty() => {
                let sel = choose_sources(&s, server);
                report.provenance = s
                    .iter()
                    .map(|x| format!("{} ({:?})", x.info().id, x.info().provenance))
                    .collect();
                report.selection = Some(sel);
                let m = Meter::start(s, eai_power::MeterConfig::new())
                    .map_err(|e| Error::power("starting the meter", e))?;
                // The server is the measured work: its processes (and their children) on a GPU
                // do not make the window `Shared`; anyone else's do.
                for &pid in &server.pids {
                    m.add_own_pid(pid);
                }
                Some(m)
            }
            _ => None,
        };
        let server_ids: Vec<String> =
            report.selection.as_ref().map(|s| s.server.clone()).unwrap_or_default();
        if let Some(m) = &meter
            && self.idle >= Duration::from_secs(1)
        {
            if progress {
                eprintln!("idle baseline: {:.0} s", self.idle.as_secs_f64());
            }
            let b = m.measure_baseline(self.idle).map_err(|e| Error::power("idle baseline", e))?;
            report.idle_w = Some(
                b.devices.iter().filter(|d| server_ids.contains(&d.source)).map(|d| d.mean.0).sum(),
            );
            report.idle = Some(b);
        }
        for (i, cfg) in self.levels.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(self.pause);
            }
            let (lv, unit) = cfg.arrival.level();
            if progress {
                eprintln!(
                    "load {}/{}: {lv} {unit}, warm-up {:.0} s, window {:.0} s",
                    i + 1,
                    self.levels.len(),
                    cfg.warmup.as_secs_f64(),
                    cfg.measure.as_secs_f64()
                );
            }
            let clock = eai_serve::ClockMarker;
            let mm;
            let marker: &dyn EdgeMarker = match &meter {
                Some(m) => {
                    mm = MeterMarker(m);
                    &mm
                }
                None => &clock,
            };
            let run = run_load(&client, &self.prompts, cfg, marker).map_err(cfg_err)?;
            let mut steady = run.steady();
            let (mut others, mut measurement) = (None, None);
            if let (Some(m), Some((b, e))) = (&meter, run.edges) {
                let w = m
                    .window_between(&format!("load {lv} {unit}"), b, e)
                    .map_err(|x| Error::power("steady window", x))?;
                let sum = |keep: &dyn Fn(&str) -> bool| -> Option<f64> {
                    let v: Vec<f64> = w
                        .devices
                        .iter()
                        .filter(|d| keep(&d.source))
                        .filter_map(|d| d.energy.map(|j| j.0))
                        .collect();
                    (!v.is_empty()).then(|| v.iter().sum())
                };
                if let Some(e) = sum(&|s| server_ids.iter().any(|x| x == s)) {
                    steady = steady.with_energy(e, report.idle_w);
                } else {
                    steady.warnings.push("no energy for the server's sources in the window".into());
                }
                others = sum(&|s| !server_ids.iter().any(|x| x == s));
                for d in &w.devices {
                    for f in &d.flags {
                        steady.warnings.push(format!("{}: {f:?}", d.source));
                    }
                }
                measurement = Some(w);
            }
            if progress {
                eprintln!("  {}", level_line(&steady));
            }
            report.levels.push(LoadLevel { steady, others_energy_j: others, measurement, run });
        }
        if let Some(m) = meter {
            m.stop().map_err(|e| Error::power("stopping the meter", e))?;
        }
        Ok(report)
    }
}

fn level_line(s: &SteadyState) -> String {
    let f = |x: Option<f64>, d: usize| x.map_or("-".to_string(), |v| format!("{v:.d$}"));
    format!(
        "{:.4} J/token, {} J/response, {:.1} tokens/s, TTFT p50 {} s, TPOT p50 {} s",
        s.j_per_token.unwrap_or(f64::NAN),
        f(s.j_per_response, 3),
        s.tokens_per_s,
        f(s.ttft.map(|p| p.p50), 3),
        f(s.tpot.map(|p| p.p50), 4)
    )
}

impl LoadReport {
    /// A Markdown table: one row per load level.
    pub fn table(&self) -> String {
        let f = |x: Option<f64>, d: usize| x.map_or("–".to_string(), |v| format!("{v:.d$}"));
        let mut t = String::from(
            "| load | window s | tokens/s | responses/s | J/token | J/response (ML.ENERGY) | J/response (completed) | dyn. J/token | W | TTFT p50/p90/p99 s | TPOT p50/p90/p99 ms | in flight |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for l in &self.levels {
            let s = &l.steady;
            let p = |x: Option<eai_serve::Percentiles>, k: f64, d: usize| {
                x.map_or("–".into(), |p| {
                    format!("{:.d$} / {:.d$} / {:.d$}", p.p50 * k, p.p90 * k, p.p99 * k)
                })
            };
            t.push_str(&format!(
                "| {} {} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.1} |\n",
                s.level,
                s.level_unit,
                s.window_s,
                s.tokens_per_s,
                s.responses_per_s,
                f(s.j_per_token, 4),
                f(s.j_per_response, 2),
                f(s.j_per_completed_response, 2),
                f(s.dynamic_j_per_token, 4),
                f(s.mean_power_w, 1),
                p(s.ttft, 1.0, 3),
                p(s.tpot, 1000.0, 1),
                s.mean_in_flight
            ));
        }
        if let Some(w) = self.idle_w {
            t.push_str(&format!("\nidle power of the server's sources (measured apart, not subtracted from J/token): {w:.1} W\n"));
        }
        if let Some(sel) = &self.selection {
            t.push_str(&format!("server sources ({:?}): {}\n", sel.basis, sel.server.join(", ")));
            if !sel.others.is_empty() {
                t.push_str(&format!("shown apart: {}\n", sel.others.join(", ")));
            }
            for n in &sel.notes {
                t.push_str(&format!("note: {n}\n"));
            }
        }
        t.push_str(&self.per_source_table());
        for l in &self.levels {
            for w in &l.steady.warnings {
                t.push_str(&format!("warning ({} {}): {w}\n", l.steady.level, l.steady.level_unit));
            }
        }
        t
    }

    /// Every source's energy in each steady window: the server's GPUs (whose sum is the
    /// J/token above) and, apart, the node's other GPUs; with each window's flags (`Shared`: a
    /// process that is not the server's used that GPU). Empty without measurements.
    pub fn per_source_table(&self) -> String {
        let server = self.selection.as_ref().map(|s| s.server.clone()).unwrap_or_default();
        let mut t = String::new();
        for l in &self.levels {
            let Some(m) = &l.measurement else { continue };
            if t.is_empty() {
                t.push_str(
                    "\n| load | source | counted | energy J | mean W | flags |\n\
                     |---|---|---|---|---|---|\n",
                );
            }
            for d in &m.devices {
                let counted = if server.contains(&d.source) { "server" } else { "apart" };
                let flags: Vec<String> = d.flags.iter().map(|f| format!("{f:?}")).collect();
                t.push_str(&format!(
                    "| {} {} | {} | {counted} | {} | {} | {} |\n",
                    l.steady.level,
                    l.steady.level_unit,
                    d.source,
                    d.energy.map_or("–".into(), |e| format!("{:.1}", e.0)),
                    d.mean_power.map_or("–".into(), |w| format!("{:.1}", w.0)),
                    flags.join(", ")
                ));
            }
        }
        t
    }

    /// Writes `load.json`, `load.md` and `load.svg` into `dir`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Format`], [`Error::Plot`] naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let j = dir.join("load.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::format("load.json", e))?;
        std::fs::write(&j, text).map_err(|e| Error::io(&j, e))?;
        let md = dir.join("load.md");
        std::fs::write(&md, self.table()).map_err(|e| Error::io(&md, e))?;
        plot_load(self, &dir.join("load.svg"))
    }
}

/// J/output-token against load (total and above idle), and TTFT/TPOT medians, as SVG.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] naming the file.
pub fn plot_load(r: &LoadReport, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let e = |x: String| Error::Plot { path: path.display().to_string(), reason: x };
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|x| Error::io(d, x))?;
    }
    let root = SVGBackend::new(path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let (left, right) = root.split_horizontally(560);
    let unit = r.levels.first().map_or("load".to_string(), |l| l.steady.level_unit.clone());
    let xmax = r.levels.iter().map(|l| l.steady.level).fold(0.0, f64::max) * 1.1 + 1e-9;
    let series = |g: &dyn Fn(&SteadyState) -> Option<f64>| -> Vec<(f64, f64)> {
        r.levels.iter().filter_map(|l| Some((l.steady.level, g(&l.steady)?))).collect()
    };
    let (blue, orange) = (RGBColor(31, 119, 180), RGBColor(255, 127, 14));
    let jt = series(&|s| s.j_per_token);
    // Above idle only where the total is there too.
    let dj = if jt.is_empty() { Vec::new() } else { series(&|s| s.dynamic_j_per_token) };
    let energy = [(jt, blue, "total (server's GPUs)"), (dj, orange, "above idle")];
    let left_panel = Panel {
        caption: "Energy per output token at steady state",
        y_desc: "J / output token",
        empty: Some("no energy measured"),
    };
    left_panel.draw(&left, &unit, xmax, &energy).map_err(|x| e(x.to_string()))?;
    let latency = [
        (series(&|s| s.ttft.map(|p| p.p50)), blue, "TTFT p50"),
        (series(&|s| s.tpot.map(|p| p.p50)), orange, "TPOT p50"),
    ];
    let right_panel =
        Panel { caption: "Latency at steady state (medians)", y_desc: "seconds", empty: None };
    right_panel.draw(&right, &unit, xmax, &latency).map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}

/// A line of a [`Panel`]: its points (load, value), colour and legend label.
type PlotLine = (Vec<(f64, f64)>, plotters::style::RGBColor, &'static str);

/// One panel of [`plot_load`]: lines with points against load, a legend, or a note when every
/// line is empty.
struct Panel {
    caption: &'static str,
    y_desc: &'static str,
    empty: Option<&'static str>,
}

impl Panel {
    fn draw(
        &self,
        area: &plotters::drawing::DrawingArea<
            plotters::backend::SVGBackend<'_>,
            plotters::coord::Shift,
        >,
        unit: &str,
        xmax: f64,
        lines: &[PlotLine],
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        use plotters::prelude::*;
        let ymax = lines.iter().flat_map(|l| &l.0).map(|p| p.1).fold(0.0, f64::max) * 1.15 + 1e-9;
        let mut c = ChartBuilder::on(area)
            .caption(self.caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
        c.configure_mesh().x_desc(format!("load ({unit})")).y_desc(self.y_desc).draw()?;
        if lines.iter().all(|l| l.0.is_empty()) {
            if let Some(note) = self.empty {
                area.draw(&Text::new(note, (150, 200), ("sans-serif", 18)))?;
            }
            return Ok(());
        }
        for (pts, col, name) in lines.iter().filter(|l| !l.0.is_empty()) {
            let col = *col;
            c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col));
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 4, col.filled())))?;
        }
        c.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
        Ok(())
    }
}

/// Client-side tokenization with `eai-model`'s tokenizer (token ids sent, lm-eval's default).
#[cfg(feature = "model")]
pub fn client_tokenization(t: ModelTokenizer) -> eai_serve::Tokenization {
    eai_serve::Tokenization::Client(std::sync::Arc::new(t))
}
