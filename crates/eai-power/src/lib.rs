//! eai-power: Power and energy measurement: NVML GPUs, Linux RAPL, background sampling, measurement windows.
//!
//! (Under construction: see the open issue for this layer.)
//!
//! ```
//! assert_eq!(2 + 2, 4);
//! ```
#![forbid(unsafe_code)]
