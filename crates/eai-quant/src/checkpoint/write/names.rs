//! The names of the output tensors, decided once and checked for clashes before anything is
//! written (two views of one name would make the safetensors crate index out of bounds).

use std::collections::BTreeMap;

use super::Plan;
use crate::checkpoint::plan::{ActivationScheme, QuantPlan};
use crate::checkpoint::read::Checkpoint;
use crate::error::{QuantError, Result};
use crate::spec::Mapping;

/// The tensors a quantized source tensor becomes (compressed-tensors `int-quantized`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QuantNames {
    /// The module: the tensor's name without `.weight`.
    pub(super) module: String,
    /// `{module}.weight`: the int8 codes.
    pub(super) weight: String,
    /// `{module}.weight_scale`.
    pub(super) scale: String,
    /// `{module}.weight_zero_point` (asymmetric specs only).
    pub(super) zero_point: Option<String>,
    /// `{module}.input_scale` (static activation scales given for this module only).
    pub(super) input_scale: Option<String>,
}

impl QuantNames {
    pub(super) fn of(tensor: &str, plan: &QuantPlan) -> Self {
        let module = tensor.strip_suffix(".weight").unwrap_or(tensor).to_string();
        let zero_point = (plan.weight.mapping == Mapping::Asymmetric)
            .then(|| format!("{module}.weight_zero_point"));
        let input_scale = match &plan.activations {
            ActivationScheme::Static(scales) if scales.contains_key(&module) => {
                Some(format!("{module}.input_scale"))
            }
            _ => None,
        };
        QuantNames {
            weight: format!("{module}.weight"),
            scale: format!("{module}.weight_scale"),
            zero_point,
            input_scale,
            module,
        }
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        [Some(&self.weight), Some(&self.scale), self.zero_point.as_ref(), self.input_scale.as_ref()]
            .into_iter()
            .flatten()
    }
}

/// Every output name with the source tensor it comes from; [`QuantError::NameClash`] when one
/// name would be written twice (a source holding both `a.weight` and `a.weight_scale`, or `a`
/// and `a.weight` when `a` is quantized).
pub(super) fn check_names(
    src: &Checkpoint,
    jobs: &BTreeMap<String, Plan>,
    quant: Option<&QuantPlan>,
) -> Result<()> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |name: &str, tensor: &str| -> Result<()> {
        if let Some(other) = seen.insert(name.to_string(), tensor.to_string()) {
            return Err(QuantError::NameClash {
                name: name.to_string(),
                tensor: tensor.to_string(),
                other,
            });
        }
        Ok(())
    };
    // Plain (copied or cast) tensors keep their names: register them first, so that a clash is
    // reported against the generated name.
    let quantized = |t: &str| quant.is_some() && matches!(jobs.get(t), Some(Plan::Quantize));
    for t in src.tensors().filter(|t| !quantized(&t.name)) {
        add(&t.name, &t.name)?;
    }
    if let Some(qp) = quant {
        for t in src.tensors().filter(|t| quantized(&t.name)) {
            for n in QuantNames::of(&t.name, qp).all() {
                add(n, &t.name)?;
            }
        }
    }
    Ok(())
}
