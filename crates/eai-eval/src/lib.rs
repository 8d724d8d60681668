//! eai-eval: MMLU, ARC, HellaSwag, TruthfulQA and GSM8K scored exactly as lm-evaluation-harness scores them.
//!
//! (Under construction: see the open issue for this layer.)
//!
//! ```
//! assert_eq!(2 + 2, 4);
//! ```
#![forbid(unsafe_code)]
