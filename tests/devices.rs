//! Several GPUs in a study: only the GPUs the model runs on are charged (the others measured and
//! shown apart), the charged sources add up to the task's energy, a GPU that another process
//! uses is flagged `shared`; scaling over device sets.

use std::time::{Duration, Instant};

use eai::core::{Joules, LanguageModel, ModelError, Watts};
use eai::devices::{DeviceSet, device_energy, scaling};
use eai::eval::bundled;
use eai::power::{
    DeviceStatus, Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError,
    SourceInfo,
};
use eai::{ModelLoader, PowerSetup, Scheme, Study, StudyResults, StudyTask};

use crate::common::LengthModel;

/// A GPU of constant power with a CUDA ordinal and a process list.
struct FakeGpu {
    ordinal: usize,
    power: f64,
    processes: Vec<u32>,
    start: Instant,
}

impl PowerSource for FakeGpu {
    fn info(&self) -> SourceInfo {
        let mut i = SourceInfo::new(
            format!("nvml/{}", self.ordinal),
            format!("fake GPU {} ({} W)", self.ordinal, self.power),
            Domain::Gpu,
            Provenance::Synthetic,
        )
        .with_signal(SignalSpec::new(Signal::InstantPower))
        .with_signal(SignalSpec::new(Signal::EnergyCounter));
        i.meta.push(("cuda_ordinal".into(), self.ordinal.to_string()));
        i
    }
    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        match signal {
            Signal::EnergyCounter => {
                Ok(Reading::Energy(Joules(self.power * self.start.elapsed().as_secs_f64())))
            }
            _ => Ok(Reading::Power(Watts(self.power))),
        }
    }
    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        let mut s = DeviceStatus::default();
        s.processes = Some(self.processes.clone());
        Ok(Some(s))
    }
}

/// The length model, said to run on `ordinals`.
struct OnGpus(Option<Vec<usize>>);

impl ModelLoader for OnGpus {
    fn name(&self) -> String {
        "length-model".into()
    }
    fn load(&mut self, _: Scheme) -> Result<Box<dyn LanguageModel>, ModelError> {
        Ok(Box::new(LengthModel { scale: 1.0, per_request: Duration::from_millis(40) }))
    }
    fn cuda_ordinals(&self) -> Option<Vec<usize>> {
        self.0.clone()
    }
}

fn run(ordinals: Option<Vec<usize>>) -> StudyResults {
    let now = Instant::now();
    // GPU 1 runs a process that is not this one (PID 1): its windows are shared.
    let gpus: Vec<Box<dyn PowerSource>> = vec![
        Box::new(FakeGpu {
            ordinal: 0,
            power: 200.0,
            processes: vec![std::process::id()],
            start: now,
        }),
        Box::new(FakeGpu { ordinal: 1, power: 60.0, processes: vec![1], start: now }),
    ];
    Study::new(OnGpus(ordinals))
        .schemes([Scheme::Fp32])
        .task(StudyTask::new(bundled::arc_easy().unwrap()).limit(10))
        .repeats(1)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .min_window(Duration::from_millis(1500))
        .power(PowerSetup::Sources(gpus))
        .progress(false)
        .run()
        .unwrap()
}

#[test]
fn unused_gpus_are_shown_apart_and_shared_is_flagged() {
    let r = run(Some(vec![0]));
    let t = &r.tasks[0];
    let gpu = |id: &str| t.devices.iter().find(|d| d.source == id).unwrap();
    assert!(gpu("nvml/0").charged && !gpu("nvml/1").charged);
    assert_eq!(t.energy, gpu("nvml/0").energy, "only the used GPU is charged");
    assert!(gpu("nvml/1").flags.iter().any(|f| f == "shared"), "{:?}", gpu("nvml/1").flags);
    assert!(!gpu("nvml/0").flags.iter().any(|f| f == "shared"), "{:?}", gpu("nvml/0").flags);
    let e = t.energy.unwrap().0;
    assert!((e - 200.0 * t.wall.0).abs() < 0.02 * e, "{e} J in {} s", t.wall.0);
    let de = device_energy(&r);
    assert_eq!(de.len(), 1);
    assert!(de[0].max_sum_error.unwrap() < 1e-12);
    assert_eq!(de[0].sources.iter().filter(|s| s.charged).count(), 1);
    assert_eq!(de[0].sources.iter().find(|s| s.source == "nvml/1").unwrap().flags["shared"], 1);
    let md = r.analyze().unwrap().markdown(&r);
    assert!(md.contains("## Energy per device"), "{md}");
    assert!(md.contains("| nvml/1 |") && md.contains("no (not used by the model)"), "{md}");
    assert!(md.contains("shared (1/1)"), "{md}");

    // Both GPUs used: both charged, the total is their sum.
    let r = run(Some(vec![0, 1]));
    let t = &r.tasks[0];
    assert!(t.devices.iter().all(|d| d.charged));
    let sum: f64 = t.devices.iter().map(|d| d.energy.unwrap().0).sum();
    assert!((t.energy.unwrap().0 - sum).abs() <= 1e-9 * sum);
    // A loader that does not say (e.g. your own engine): every source is charged, as before.
    let r = run(None);
    assert!(r.tasks[0].devices.iter().all(|d| d.charged));

    // Scaling: the one-device set is the reference.
    let one = run(Some(vec![0]));
    let two = run(Some(vec![0, 1]));
    let rows = scaling(&[
        DeviceSet { label: "cuda0", devices: 1, results: &one },
        DeviceSet { label: "cuda0-1", devices: 2, results: &two },
    ]);
    assert_eq!(rows.len(), 2);
    let (a, b) = (&rows[0], &rows[1]);
    assert_eq!((a.efficiency, a.same_score), (Some(1.0), Some(true)));
    let want = b.requests_per_s / (2.0 * a.requests_per_s);
    assert!((b.efficiency.unwrap() - want).abs() < 1e-12);
    assert_eq!(b.same_score, Some(true));
    assert_eq!(b.gpu_j.len(), 2, "{:?}", b.gpu_j);
    assert_eq!(a.gpu_j.len(), 1);
    assert!(
        b.j_per_request_ratio.unwrap() > 1.0,
        "two GPUs of the same speed draw more per request"
    );
}
