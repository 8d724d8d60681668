//! eai-metrics: EOR, TWEOR, reductions against a baseline, statistics over repeated runs, Pareto fronts and deployment advice.
//!
//! (Under construction: see the open issue for this layer.)
//!
//! ```
//! assert_eq!(2 + 2, 4);
//! ```
#![forbid(unsafe_code)]
