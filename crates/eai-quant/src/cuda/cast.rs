//! FP32 / FP16 / BF16 conversions on the device.

use super::device::{CudaDevice, DeviceBuffer};
use super::error::{CudaError, Result};
use super::gemm::{FloatElem, grid_stride_config};
use cudarc::driver::PushKernelArg;

impl CudaDevice {
    /// Converts `x` into `y` element by element: widening is exact, narrowing rounds to
    /// nearest-even (overflow to ±inf, NaN stays NaN), bit-identical to `half`'s
    /// `from_f32`/`to_f32` except for NaN payloads (the device writes the canonical NaN).
    ///
    /// # Errors
    /// [`CudaError::Shape`] if the lengths differ, [`CudaError::Unsupported`] for a same-type
    /// "cast" (use [`CudaDevice::copy`]), [`CudaError::Driver`] on launch failure.
    pub fn cast<I: FloatElem, O: FloatElem>(
        &self,
        x: &DeviceBuffer<I>,
        y: &mut DeviceBuffer<O>,
    ) -> Result<()> {
        if x.len() != y.len() {
            return Err(CudaError::shape(
                "cast",
                format!("input holds {} elements, output {}", x.len(), y.len()),
            ));
        }
        let name: &'static str = match (I::SUFFIX, O::SUFFIX) {
            ("f32", "f16") => "cast_f32_f16",
            ("f32", "bf16") => "cast_f32_bf16",
            ("f16", "f32") => "cast_f16_f32",
            ("bf16", "f32") => "cast_bf16_f32",
            ("f16", "bf16") => "cast_f16_bf16",
            ("bf16", "f16") => "cast_bf16_f16",
            (a, b) => {
                return Err(CudaError::Unsupported {
                    op: "cast",
                    detail: format!("{a} -> {b} is not a conversion; copy the buffer instead"),
                });
            }
        };
        if x.is_empty() {
            return Ok(());
        }
        let kernels = self.kernels()?;
        let func = kernels.get(name)?;
        let n = x.len() as u64;
        let cfg = grid_stride_config(n.div_ceil(8), self.info().multiprocessors);
        let mut launch = self.stream.launch_builder(func);
        launch.arg(&x.slice).arg(&mut y.slice).arg(&n);
        // SAFETY: the kernel's signature is (const I*, O*, u64 n) matching the arguments; both
        // buffers hold n elements (checked), 8-element vector accesses start at multiples of 8
        // elements of 256-byte-aligned allocations, and the scalar tail loop is bounded by n.
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(cast)"))?;
        Ok(())
    }
}
