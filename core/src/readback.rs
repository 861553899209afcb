//! Reading tensors back to the host. In a browser a WebGPU readback cannot block the page, so every
//! read that a training step, an evaluation or a generation makes is awaited here; native code
//! drives the same futures with [`block_on`]. One code path for both.
//!
//! Every read is counted ([`reads`]), and so are the bytes the trainer uploads ([`note_upload`]):
//! a read makes the host wait for the device, so a training step makes none except where its
//! numbers are wanted (a logging or evaluation step), and a test holds it to that.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{Element, Tensor, TensorData};

use crate::error::{Error, Result};

/// Runs `future` to completion on this thread (native only: a browser must `.await` instead).
pub fn block_on<F: Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

fn device_error(e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("reading a tensor back failed ({e:?}); the device may be lost or out of memory"))
}

static READS: AtomicU64 = AtomicU64::new(0);
static UPLOADED: AtomicU64 = AtomicU64::new(0);

/// Device-to-host reads made through this module so far, by this process.
pub fn reads() -> u64 {
    READS.load(Ordering::Relaxed)
}

/// Bytes uploaded to a device through [`note_upload`] so far (batches, kernel parameters).
pub fn uploaded_bytes() -> u64 {
    UPLOADED.load(Ordering::Relaxed)
}

/// Counts `bytes` sent from the host to a device.
pub fn note_upload(bytes: usize) {
    UPLOADED.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// A float tensor's data.
pub async fn data<const D: usize>(tensor: Tensor<D>) -> Result<TensorData> {
    READS.fetch_add(1, Ordering::Relaxed);
    tensor.into_data_async().await.map_err(device_error)
}

/// A float tensor's values, in row-major order.
pub async fn f32s<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    data(tensor).await?.convert::<f32>().try_into_vec::<f32>().map_err(device_error)
}

/// The one value of a single-element float tensor.
pub async fn scalar<const D: usize, E: Element>(tensor: Tensor<D>) -> Result<E> {
    READS.fetch_add(1, Ordering::Relaxed);
    tensor.into_scalar_async::<E>().await.map_err(device_error)
}
