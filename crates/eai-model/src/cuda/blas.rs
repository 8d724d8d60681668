//! cuBLAS for the float linear layers: `Y[M, N] (row stride ldy) = X[M, K] · W[N, K]ᵀ
//! (+ Y when accumulating)`, inputs f32, f16 or bf16, f32 accumulation; output f32, or the
//! inputs' 16-bit type (the gate/up projection, `GpuOptions::half_gate_up`).
//!
//! Row-major `Y = X·Wᵀ` is column-major `Yᵀ = op(W)·Xᵀ` with `op = T` ("TN"), `lda = ldb = K`.
//! Accumulating into the residual stream uses `beta = 1`, which fuses the residual add into the
//! GEMM. FP32 uses `CUBLAS_COMPUTE_32F` with the default math mode (no TF32), so it is a true
//! f32 product.

use std::ffi::c_void;

use cudarc::cublas::sys as bs;
use cudarc::driver::CudaStream;

use super::error::{GpuError, Result};

/// Element type of a GEMM input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InType {
    F32,
    F16,
    Bf16,
}

impl InType {
    fn cuda(self) -> bs::cudaDataType {
        match self {
            InType::F32 => bs::cudaDataType::CUDA_R_32F,
            InType::F16 => bs::cudaDataType::CUDA_R_16F,
            InType::Bf16 => bs::cudaDataType::CUDA_R_16BF,
        }
    }
}

/// One cuBLAS handle bound to the model's stream.
#[derive(Debug)]
pub(crate) struct Blas {
    handle: bs::cublasHandle_t,
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: the handle was created in `Blas::new`, is owned by this value alone and is
        // destroyed exactly once; teardown errors cannot be reported and are ignored.
        unsafe {
            let _ = cudarc::cublas::result::destroy_handle(self.handle);
        }
    }
}

impl Blas {
    /// Creates a handle on `stream` (the caller has checked that libcublas loads).
    pub(crate) fn new(stream: &CudaStream, ordinal: usize) -> Result<Self> {
        stream
            .context()
            .bind_to_thread()
            .map_err(|e| GpuError::driver("cuCtxSetCurrent", ordinal, "cuBLAS handle", e))?;
        let handle = cudarc::cublas::result::create_handle().map_err(|e| GpuError::Blas {
            call: "cublasCreate",
            layer: "-".into(),
            shape: String::new(),
            source: Box::new(e),
        })?;
        let blas = Blas { handle };
        // SAFETY: the handle is live (just created); the stream belongs to the context bound
        // above and outlives the handle (the model owns both and drops the handle first).
        unsafe { cudarc::cublas::result::set_stream(blas.handle, stream.cu_stream() as _) }
            .map_err(|e| GpuError::Blas {
                call: "cublasSetStream",
                layer: "-".into(),
                shape: String::new(),
                source: Box::new(e),
            })?;
        Ok(blas)
    }

    /// `Y = X · Wᵀ (+ Y if accumulate)`, `Y` of element type `out_ty` (f32, or `ty` itself).
    ///
    /// # Safety
    /// `w` points to `n·k` elements of `ty`, `x` to `m·k` elements of `ty` (row-major), and `y`
    /// to a matrix of `out_ty` with `m` rows of row stride `ldy ≥ n`; all are live device
    /// allocations of this handle's context, not freed before the enqueued GEMM has run (the
    /// stream orders later frees after it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn gemm(
        &self,
        layer: &str,
        ty: InType,
        (w, x): (u64, u64),
        (y, out_ty): (u64, InType),
        (m, n, k): (usize, usize, usize),
        ldy: usize,
        accumulate: bool,
    ) -> Result<()> {
        let shape = || format!("M={m} N={n} K={k}");
        let c = |v: usize| {
            i32::try_from(v)
                .map_err(|_| GpuError::invalid(format!("{layer}: {} exceeds i32", shape())))
        };
        let (mi, ni, ki, ldi) = (c(m)?, c(n)?, c(k)?, c(ldy)?);
        if out_ty != InType::F32 && out_ty != ty {
            return Err(GpuError::invalid(format!(
                "{layer}: {ty:?} inputs cannot write {out_ty:?} output ({})",
                shape()
            )));
        }
        if m == 0 {
            return Ok(());
        }
        let alpha: f32 = 1.0;
        let beta: f32 = if accumulate { 1.0 } else { 0.0 };
        // SAFETY: forwarded from this function's contract: A = W (K×N col-major, lda K, op T),
        // B = X (K×M, ldb K), C = Y (N×M, ldc = ldy, of out_ty: f32, or 16-bit beside 16-bit
        // inputs, both supported with CUBLAS_COMPUTE_32F); alpha/beta are host f32 as
        // CUBLAS_COMPUTE_32F requires and live for the call.
        unsafe {
            cudarc::cublas::result::gemm_ex(
                self.handle,
                bs::cublasOperation_t::CUBLAS_OP_T,
                bs::cublasOperation_t::CUBLAS_OP_N,
                ni,
                mi,
                ki,
                (&alpha as *const f32).cast::<c_void>(),
                w as *const c_void,
                ty.cuda(),
                ki,
                x as *const c_void,
                ty.cuda(),
                ki,
                (&beta as *const f32).cast::<c_void>(),
                y as *mut c_void,
                out_ty.cuda(),
                ldi,
                bs::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                bs::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| GpuError::Blas {
            call: "cublasGemmEx",
            layer: layer.to_string(),
            shape: shape(),
            source: Box::new(e),
        })
    }
}
