//! Costs the pipeline adds around a model: a `Metered` call (two window timestamps) against the
//! bare call, and analysing plus writing a study folder.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use eai::core::{
    GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest, ModelError,
    ModelInfo, Watts,
};
use eai::power::{ConstantSource, Meter, MeterConfig};
use eai::{Metered, PowerSetup, Scheme, Study, StudyTask, loader_fn};

struct Instant;

impl LanguageModel for Instant {
    fn info(&self) -> ModelInfo {
        ModelInfo::new("instant")
    }
    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        Ok(reqs.iter().map(|r| Loglikelihood::new(-(r.continuation.len() as f64), false)).collect())
    }
    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        Ok(reqs.iter().map(|_| Generation::new("")).collect())
    }
}

fn metered_call(c: &mut Criterion) {
    let reqs = vec![LoglikelihoodRequest::new("The capital of France is", " Paris"); 4];
    let mut bare = Instant;
    c.bench_function("bare loglikelihood (4 requests)", |b| {
        b.iter(|| bare.loglikelihood(&reqs).unwrap())
    });
    let meter = Meter::start(vec![Box::new(ConstantSource::new(Watts(100.0)))], MeterConfig::new())
        .unwrap();
    let mut m = Metered::new(Instant, &meter);
    c.bench_function("metered loglikelihood (4 requests)", |b| {
        b.iter(|| m.loglikelihood(&reqs).unwrap())
    });
    drop(m);
    meter.stop().unwrap();
}

fn write_folder(c: &mut Criterion) {
    let loader = loader_fn("instant", |_s: Scheme| -> Result<Box<dyn LanguageModel>, ModelError> {
        Ok(Box::new(Instant))
    });
    let results = Study::new(loader)
        .schemes([Scheme::Fp32, Scheme::Fp16, Scheme::Dynamic])
        .task(StudyTask::new(eai::eval::bundled::arc_easy().unwrap()))
        .task(StudyTask::new(eai::eval::bundled::hellaswag().unwrap()))
        .repeats(3)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(100.0)))]))
        .progress(false)
        .run()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("analyze + write (3 schemes x 2 tasks x 3 repeats)", |b| {
        b.iter(|| results.write(dir.path()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, metered_call, write_folder);
criterion_main!(benches);
