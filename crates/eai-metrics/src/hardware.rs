//! Hardware profiles as data: memory, bandwidth, TDP and tensor-core rates per precision, each
//! figure with the document it comes from.

use std::collections::BTreeMap;

use eai_core::Watts;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The profiles shipped with the crate (`data/hardware.json`).
const BUILTIN: &str = include_str!("../data/hardware.json");

/// A numeric precision a strategy computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Precision {
    /// 32-bit float on CUDA cores (the paper's unquantized baseline).
    Fp32,
    /// IEEE half precision.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 8-bit integer (INT8 GEMM, INT32 accumulate).
    Int8,
    /// 8-bit float (E4M3/E5M2).
    Fp8,
}

impl Precision {
    /// Bytes per weight when weights are stored in this precision.
    pub fn weight_bytes(self) -> f64 {
        match self {
            Self::Fp32 => 4.0,
            Self::Fp16 | Self::Bf16 => 2.0,
            Self::Int8 | Self::Fp8 => 1.0,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "FP32",
            Self::Fp16 => "FP16",
            Self::Bf16 => "BF16",
            Self::Int8 => "INT8",
            Self::Fp8 => "FP8",
        })
    }
}

/// GPU micro-architecture.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Architecture {
    /// Volta (V100): first tensor cores, FP16 only.
    Volta,
    /// Ampere (A100, RTX 30): FP16/BF16/TF32/INT8 tensor cores.
    Ampere,
    /// Ada Lovelace (RTX 40, L40S): adds FP8.
    AdaLovelace,
    /// Hopper (H100, H200): FP8 with the transformer engine.
    Hopper,
    /// Anything else, by name.
    Other(String),
}

/// A figure with the key of the document it is taken from (see [`ProfileSet::sources`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sourced {
    /// The figure, in the unit its field names.
    pub value: f64,
    /// Key into the profile set's source table.
    pub source: String,
    /// How it was read or derived, when not verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Dense (no sparsity) tensor-core throughput per precision, in TFLOPS (TOPS for INT8);
/// `None` where the tensor cores do not support the precision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorRates {
    /// FP16 inputs (with FP32 accumulate where the vendor distinguishes).
    pub fp16: Option<Sourced>,
    /// BF16 inputs.
    pub bf16: Option<Sourced>,
    /// INT8 inputs, INT32 accumulate (TOPS).
    pub int8: Option<Sourced>,
    /// FP8 inputs.
    pub fp8: Option<Sourced>,
}

/// One GPU's datasheet figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareProfile {
    /// Identifier used in [`crate::Config::hardware`] (e.g. `A100-PCIe-40GB`).
    pub id: String,
    /// Marketing name.
    pub name: String,
    /// Micro-architecture.
    pub architecture: Architecture,
    /// Tensor-core generation (1 = Volta, 3 = Ampere, 4 = Ada/Hopper).
    pub tensor_core_generation: u8,
    /// Memory capacity, GB (10⁹ bytes, as vendors state it).
    pub memory_gb: Sourced,
    /// Memory technology.
    pub memory_type: String,
    /// Peak memory bandwidth, GB/s.
    pub memory_bandwidth_gbs: Sourced,
    /// Board power limit (TDP/TGP), W.
    pub tdp_w: Sourced,
    /// Non-tensor FP32 throughput, TFLOPS.
    pub fp32_tflops: Sourced,
    /// Tensor-core throughput per precision.
    pub tensor: TensorRates,
}

impl HardwareProfile {
    /// Dense tensor-core rate for `p` in FLOP/s (OP/s for INT8), or `None` if unsupported.
    /// FP32 always returns `None`: the baseline runs on CUDA cores.
    pub fn tensor_rate(&self, p: Precision) -> Option<f64> {
        let s = match p {
            Precision::Fp32 => None,
            Precision::Fp16 => self.tensor.fp16.as_ref(),
            Precision::Bf16 => self.tensor.bf16.as_ref(),
            Precision::Int8 => self.tensor.int8.as_ref(),
            Precision::Fp8 => self.tensor.fp8.as_ref(),
        };
        s.map(|s| s.value * 1e12)
    }

    /// `true` when the tensor cores accelerate `p`. FP32 is reported as supported (it needs no
    /// tensor cores).
    pub fn supports(&self, p: Precision) -> bool {
        p == Precision::Fp32 || self.tensor_rate(p).is_some()
    }

    /// The compute rate a GEMM in `p` gets: the tensor rate, or the FP32 CUDA-core rate when
    /// the tensor cores do not support `p` (a conservative fallback).
    pub fn compute_rate(&self, p: Precision) -> f64 {
        self.tensor_rate(p).unwrap_or(self.fp32_tflops.value * 1e12)
    }

    /// Memory bandwidth in bytes per second.
    pub fn bandwidth_bytes_per_s(&self) -> f64 {
        self.memory_bandwidth_gbs.value * 1e9
    }

    /// Memory capacity in bytes.
    pub fn memory_bytes(&self) -> f64 {
        self.memory_gb.value * 1e9
    }

    /// Board power limit.
    pub fn tdp(&self) -> Watts {
        Watts(self.tdp_w.value)
    }

    fn figures(&self) -> Vec<(&'static str, &Sourced)> {
        let mut v = vec![
            ("memory_gb", &self.memory_gb),
            ("memory_bandwidth_gbs", &self.memory_bandwidth_gbs),
            ("tdp_w", &self.tdp_w),
            ("fp32_tflops", &self.fp32_tflops),
        ];
        for (k, s) in [
            ("tensor.fp16", &self.tensor.fp16),
            ("tensor.bf16", &self.tensor.bf16),
            ("tensor.int8", &self.tensor.int8),
            ("tensor.fp8", &self.tensor.fp8),
        ] {
            if let Some(s) = s {
                v.push((k, s));
            }
        }
        v
    }
}

/// A set of profiles with the table of documents their figures cite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSet {
    /// Source key → document name and URL.
    pub sources: BTreeMap<String, String>,
    /// The profiles.
    pub profiles: Vec<HardwareProfile>,
}

impl ProfileSet {
    /// The shipped profiles: the paper's six platforms (A100 PCIe 40GB, RTX 4090, RTX 3090 Ti,
    /// RTX 4060 Ti 16GB, V100 SXM2 32GB, L40S) plus H100 SXM, H200 SXM, and the RTX 3090 and
    /// H100 PCIe used to validate the predictor.
    ///
    /// ```
    /// use eai_metrics::{Precision, ProfileSet};
    /// let set = ProfileSet::builtin()?;
    /// let v100 = set.get("V100-SXM2-32GB")?;
    /// assert!(!v100.supports(Precision::Int8)); // Volta tensor cores are FP16-only
    /// assert_eq!(set.get("A100-PCIe-40GB")?.memory_bandwidth_gbs.value, 1555.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Never in a released build (the data is checked by the tests); the `Result` is there
    /// because the same validation runs on user files.
    pub fn builtin() -> Result<Self> {
        Self::from_json(BUILTIN, "data/hardware.json (built in)")
    }

    /// Parses and validates a profile set from JSON (`origin` names it in errors).
    ///
    /// # Errors
    /// [`Error::Format`] for malformed JSON; [`Error::Invalid`] for a non-positive or non-finite
    /// figure; [`Error::Label`] for an unknown source key or a duplicate id.
    pub fn from_json(json: &str, origin: &str) -> Result<Self> {
        let set: ProfileSet = serde_json::from_str(json)
            .map_err(|e| Error::format(format!("reading hardware profiles from {origin}"), e))?;
        set.validate()?;
        Ok(set)
    }

    /// Checks every figure is positive and finite and cites a known source; ids are unique.
    ///
    /// # Errors
    /// As [`ProfileSet::from_json`].
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.profiles {
            if p.id.trim().is_empty() || !seen.insert(p.id.as_str()) {
                return Err(Error::Label {
                    run: p.id.clone(),
                    what: "hardware id is empty or repeated".into(),
                });
            }
            for (field, s) in p.figures() {
                if !(s.value.is_finite() && s.value > 0.0) {
                    return Err(Error::Invalid {
                        run: p.id.clone(),
                        field,
                        value: s.value,
                        reason: "datasheet figures are positive",
                    });
                }
                if !self.sources.contains_key(&s.source) {
                    return Err(Error::Label {
                        run: p.id.clone(),
                        what: format!("{field} cites unknown source `{}`", s.source),
                    });
                }
            }
        }
        Ok(())
    }

    /// The profile with this id.
    ///
    /// # Errors
    /// [`Error::UnknownHardware`].
    pub fn get(&self, id: &str) -> Result<&HardwareProfile> {
        self.profiles
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::UnknownHardware { name: id.to_owned() })
    }

    /// The full citation of a figure.
    pub fn citation(&self, s: &Sourced) -> Option<&str> {
        self.sources.get(&s.source).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_are_valid_and_match_the_paper_table_1() {
        let set = ProfileSet::builtin().unwrap();
        // Table 1 of the paper: memory and TDP of its six platforms.
        let table1 = [
            ("A100-PCIe-40GB", 40.0, 250.0),
            ("RTX-4090", 24.0, 450.0),
            ("RTX-3090-Ti", 24.0, 450.0),
            ("RTX-4060-Ti-16GB", 16.0, 165.0),
            ("V100-SXM2-32GB", 32.0, 300.0),
            ("L40S", 48.0, 350.0),
        ];
        for (id, mem, tdp) in table1 {
            let p = set.get(id).unwrap();
            assert_eq!((p.memory_gb.value, p.tdp_w.value), (mem, tdp), "{id}");
        }
        // Bandwidths the paper and slides quote: A100 1,555, RTX 4090 1,008, RTX 4060 Ti 288 GB/s.
        for (id, bw) in
            [("A100-PCIe-40GB", 1555.0), ("RTX-4090", 1008.0), ("RTX-4060-Ti-16GB", 288.0)]
        {
            assert_eq!(set.get(id).unwrap().memory_bandwidth_gbs.value, bw);
        }
        assert!(set.get("H100-SXM-80GB").is_ok() && set.get("H200-SXM-141GB").is_ok());
        // Every figure resolves to a citation.
        for p in &set.profiles {
            for (_, s) in p.figures() {
                assert!(set.citation(s).is_some_and(|c| c.contains("http")), "{} {:?}", p.id, s);
            }
        }
        assert!(matches!(set.get("TPU"), Err(Error::UnknownHardware { .. })));
    }

    #[test]
    fn tensor_support_per_architecture() {
        let set = ProfileSet::builtin().unwrap();
        let has = |id: &str, p| set.get(id).unwrap().supports(p);
        assert!(!has("A100-PCIe-40GB", Precision::Fp8) && has("A100-PCIe-40GB", Precision::Int8));
        assert!(has("RTX-4060-Ti-16GB", Precision::Fp8) && has("L40S", Precision::Fp8));
        assert!(!has("V100-SXM2-32GB", Precision::Bf16) && has("V100-SXM2-32GB", Precision::Fp16));
        // Derived rates agree with the per-SM arithmetic they cite.
        let r = set.get("RTX-4060-Ti-16GB").unwrap().tensor_rate(Precision::Fp16).unwrap();
        assert!((r - 34.0 * 2.535e9 * 512.0).abs() / r < 2e-3);
        let r = set.get("RTX-3090-Ti").unwrap().tensor_rate(Precision::Int8).unwrap();
        assert!((r - 84.0 * 1.86e9 * 2048.0).abs() / r < 2e-3);
    }

    #[test]
    fn user_files_are_validated() {
        let mut set = ProfileSet::builtin().unwrap();
        set.profiles[0].tdp_w.value = -1.0;
        let json = serde_json::to_string(&set).unwrap();
        assert!(matches!(
            ProfileSet::from_json(&json, "x.json"),
            Err(Error::Invalid { field: "tdp_w", .. })
        ));
        let mut set = ProfileSet::builtin().unwrap();
        set.profiles[1].memory_gb.source = "nowhere".into();
        assert!(matches!(set.validate(), Err(Error::Label { .. })));
        let err = ProfileSet::from_json("{", "bad.json").unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
    }
}
