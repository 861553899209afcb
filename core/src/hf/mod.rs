//! The Hugging Face formats: parameters by HF name, `model.safetensors` in and out.

pub mod params;
pub mod weights;
