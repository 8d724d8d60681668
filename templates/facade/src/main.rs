//! A study of SmolLM2-135M of your own through the `eai` facade (default features: the pipeline,
//! the CUDA engine and NVML loaded at run time, no command-line parser): FP32 against INT8
//! weights on 20 ARC-Easy questions, energy from this machine's sensors, the report written to
//! `my-study/`. The model file comes from the repository's quickstart (`.cache/models/`), or from
//! `eai::model::fetch_smollm2` with eai's `fetch` feature.
use eai::{Device, GgufLoader, Scheme, Study, StudyTask};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gguf = eai::model::find_smollm2(&eai::model::cache_dir(".cache"))?
        .ok_or("no SmolLM2 under .cache/models (run eai's quickstart once, or set EAI_CACHE)")?;
    let study = Study::new(GgufLoader::new(gguf).device(Device::auto().device))
        .schemes([Scheme::Fp32, Scheme::Int8WeightOnly])
        .task(StudyTask::new(eai::eval::bundled::arc_easy()?).limit(20));
    let report = study.run()?.write("my-study")?;
    println!("{}", report.table());
    Ok(())
}
