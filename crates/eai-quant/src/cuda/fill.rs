//! Random device-side fills, for benchmarks and tests (no host round trip for large inputs).

use cudarc::driver::PushKernelArg;

use super::device::{CudaDevice, DeviceBuffer};
use super::error::Result;
use super::gemm::grid_stride_config;

impl CudaDevice {
    /// Fills `y` with values uniform in `[lo, hi)` (24 random bits each); element `i` depends
    /// only on `(seed, i)`.
    ///
    /// # Errors
    /// [`CudaError::Driver`](super::CudaError::Driver) on launch failure.
    pub fn fill_uniform(
        &self,
        y: &mut DeviceBuffer<f32>,
        seed: u64,
        lo: f32,
        hi: f32,
    ) -> Result<()> {
        if y.is_empty() {
            return Ok(());
        }
        let kernels = self.kernels()?;
        let func = kernels.get("fill_uniform_f32")?;
        let n = y.len() as u64;
        let cfg = grid_stride_config(n, self.info().multiprocessors);
        let mut launch = self.stream.launch_builder(func);
        launch.arg(&mut y.slice).arg(&n).arg(&seed).arg(&lo).arg(&hi);
        // SAFETY: signature (float*, u64 n, u64 seed, float lo, float hi) matches the pushed
        // arguments; the grid-stride loop writes indices < n = y.len() only.
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(fill_uniform)"))?;
        Ok(())
    }

    /// Fills `y` with uniformly random bytes (int8 values over −128..=127). The whole 4-byte
    /// words are random; a trailing partial word is filled from the host.
    ///
    /// # Errors
    /// [`CudaError::Driver`](super::CudaError::Driver) on launch failure.
    pub fn fill_random_i8(&self, y: &mut DeviceBuffer<i8>, seed: u64) -> Result<()> {
        let words = y.len() / 4;
        if words > 0 {
            let kernels = self.kernels()?;
            let func = kernels.get("fill_random_u32")?;
            let n = words as u64;
            let cfg = grid_stride_config(n, self.info().multiprocessors);
            let mut launch = self.stream.launch_builder(func);
            launch.arg(&mut y.slice).arg(&n).arg(&seed);
            // SAFETY: the kernel writes u32 words 0..n with n = len/4, i.e. bytes 0..4n ≤ len of
            // a 256-byte-aligned allocation; reinterpreting i8 storage as u32 is fine for
            // plain bytes.
            unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(fill_random)"))?;
        }
        let tail = y.len() - words * 4;
        if tail > 0 {
            let bytes: Vec<i8> =
                (0..tail).map(|i| (seed as u8).wrapping_add(i as u8 * 37) as i8).collect();
            let mut view = y.slice.slice_mut(words * 4..);
            self.stream.memcpy_htod(&bytes, &mut view).map_err(self.err("cuMemcpyHtoD"))?;
        }
        Ok(())
    }

    /// Traffic probe for benchmarks: reads `read` bytes and writes `write` bytes per item
    /// (`(read, write)` one of (16, 4), (16, 8), (16, 16), (8, 16), (4, 16)), lanes on
    /// consecutive items, with no arithmetic beyond an xor: the speed of a memory-bound kernel's
    /// read:write mix and access pattern without its instructions. Items: as many as both
    /// buffers hold. (16, 0) reads all of `src` and writes one word per thread (`dst` ≥ 4 KiB
    /// per multiprocessor): the first pass of a two-pass quantizer. Returns the bytes moved
    /// (read + written).
    ///
    /// # Errors
    /// [`CudaError::Shape`](super::CudaError::Shape) for another `(read, write)` pair, or a
    /// `dst` too small for the read-only probe's words;
    /// [`CudaError::Driver`](super::CudaError::Driver) on launch failure.
    pub fn traffic_probe(
        &self,
        src: &DeviceBuffer<u8>,
        dst: &mut DeviceBuffer<u8>,
        read: usize,
        write: usize,
    ) -> Result<u64> {
        self.probe(src, dst, read, write, false)
    }

    /// [`traffic_probe`](Self::traffic_probe) with the blocked pattern: a warp's 4 items per
    /// step are consecutive runs of 32 (one contiguous span per warp), as in the blocked
    /// dequantize (`dequant_4b`), instead of 4 items a grid apart.
    ///
    /// # Errors
    /// As [`traffic_probe`](Self::traffic_probe).
    pub fn traffic_probe_blocked(
        &self,
        src: &DeviceBuffer<u8>,
        dst: &mut DeviceBuffer<u8>,
        read: usize,
        write: usize,
    ) -> Result<u64> {
        self.probe(src, dst, read, write, true)
    }

    fn probe(
        &self,
        src: &DeviceBuffer<u8>,
        dst: &mut DeviceBuffer<u8>,
        read: usize,
        write: usize,
        blocked: bool,
    ) -> Result<u64> {
        if (read, write, blocked) == (16, 0, false) {
            return self.probe_read(src, dst);
        }
        let name = match (read, write, blocked) {
            (16, 4, false) => "probe_16_4",
            (16, 8, false) => "probe_16_8",
            (16, 16, false) => "probe_16_16",
            (8, 16, false) => "probe_8_16",
            (4, 16, false) => "probe_4_16",
            (16, 4, true) => "probeb_16_4",
            (16, 8, true) => "probeb_16_8",
            (16, 16, true) => "probeb_16_16",
            (8, 16, true) => "probeb_8_16",
            (4, 16, true) => "probeb_4_16",
            _ => {
                return Err(super::CudaError::shape(
                    "traffic_probe",
                    format!("no probe reads {read} and writes {write} bytes per item"),
                ));
            }
        };
        let items = (src.len() / read).min(dst.len() / write) as u64;
        if items == 0 {
            return Ok(0);
        }
        let kernels = self.kernels()?;
        let func = kernels.get(name)?;
        let sms = u64::from(self.info().multiprocessors.max(1));
        let blocks = items.div_ceil(256).clamp(1, sms * 4) as u32;
        let cfg = cudarc::driver::LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(func);
        launch.arg(&src.slice).arg(&mut dst.slice).arg(&items);
        // SAFETY: signature (const u8*, u8*, u64 items); item i reads bytes [i·read, (i+1)·read)
        // of src and writes [i·write, (i+1)·write) of dst, both in bounds for i < items; the
        // accesses are read- and write-aligned because allocations are 256-byte aligned and
        // the offsets are multiples of the access width.
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(traffic_probe)"))?;
        Ok(items * (read + write) as u64)
    }

    /// The read-only probe (`read = 16, write = 0`): reads all of `src` in 16-byte items and
    /// writes one word per thread into `dst`, which must hold 4 bytes per thread of the grid
    /// (at most 4 blocks of 256 per multiprocessor: 4 KiB per multiprocessor).
    fn probe_read(&self, src: &DeviceBuffer<u8>, dst: &mut DeviceBuffer<u8>) -> Result<u64> {
        let items = (src.len() / 16) as u64;
        if items == 0 {
            return Ok(0);
        }
        let sms = u64::from(self.info().multiprocessors.max(1));
        let blocks = items.div_ceil(256).clamp(1, sms * 4);
        let words = blocks * 256;
        if (dst.len() as u64) < 4 * words {
            return Err(super::CudaError::shape(
                "traffic_probe",
                format!(
                    "the read-only probe writes {} bytes (one word per thread), dst holds {}",
                    4 * words,
                    dst.len()
                ),
            ));
        }
        let kernels = self.kernels()?;
        let func = kernels.get("probe_16_0")?;
        let cfg = cudarc::driver::LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(func);
        launch.arg(&src.slice).arg(&mut dst.slice).arg(&items);
        // SAFETY: signature (const u8*, u8*, u64 items); item i reads bytes [16 i, 16 i + 16)
        // of src, in bounds for i < items = len / 16 and 16-byte aligned (allocations are
        // 256-byte aligned); thread t writes bytes [4 t, 4 t + 4) of dst, in bounds as dst
        // holds 4 bytes per thread of the grid (checked above).
        unsafe { launch.launch(cfg) }.map_err(self.err("cuLaunchKernel(probe_16_0)"))?;
        Ok(items * 16 + 4 * words)
    }
}
