//! Reading tensors back to the host. In a browser a WebGPU readback cannot block the page, so every
//! read that a training step, an evaluation or a generation makes is awaited here; native code
//! drives the same futures with [`block_on`]. One code path for both.

use std::future::Future;

use burn::tensor::{Element, Tensor, TensorData};

use crate::error::{Error, Result};

/// Runs `future` to completion on this thread (native only: a browser must `.await` instead).
pub fn block_on<F: Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

fn device_error(e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("reading a tensor back failed ({e:?}); the device may be lost or out of memory"))
}

/// A float tensor's data.
pub async fn data<const D: usize>(tensor: Tensor<D>) -> Result<TensorData> {
    tensor.into_data_async().await.map_err(device_error)
}

/// A float tensor's values, in row-major order.
pub async fn f32s<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    data(tensor).await?.convert::<f32>().try_into_vec::<f32>().map_err(device_error)
}

/// The one value of a single-element float tensor.
pub async fn scalar<const D: usize, E: Element>(tensor: Tensor<D>) -> Result<E> {
    tensor.into_scalar_async::<E>().await.map_err(device_error)
}
