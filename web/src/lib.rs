//! The browser's side of Hearth: `hearth-core` compiled to wasm32 behind a small async API that the
//! page in `www/` drives one call at a time (every call returns a `Promise`, so the page never
//! blocks while a WebGPU readback is in flight).
//!
//! ```js
//! const s = await Session.create(JSON.stringify({ preset: "gpt-tiny", batch_size: 8, block_size: 64 }), text, "auto");
//! const stats = await s.train(5);            // {step, loss, lr, grad_norm, tokens_per_s, …}
//! const top = await s.next_tokens("It is a", 10);
//! const files = await s.export();            // {config_json, tokenizer_json, model_safetensors: Uint8Array}
//! ```
//!
//! Native builds see an empty crate (the bindings are wasm32-only).

#![cfg(target_arch = "wasm32")]

mod backend;
mod session;

pub use session::Session;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn error(message: &str);
}

/// A Rust panic aborts the module with "unreachable"; its message goes to the console first.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| error(&format!("hearth panicked: {info}"))));
}

/// The families this build holds and the objectives each trains with (its own first), from core's
/// registry: `[{model_type, objectives: ["causal"]}, …]`. The page asks rather than keeping a list.
#[wasm_bindgen]
pub fn families() -> Result<JsValue, JsValue> {
    use hearth_core::models::presets::preset;
    let mut seen = Vec::new();
    for (name, model_type, _) in hearth_core::ModelConfig::presets() {
        if seen.iter().any(|(t, _): &(&str, Vec<&str>)| *t == model_type) {
            continue;
        }
        let config = preset(name, &Default::default()).map_err(|e| JsValue::from_str(&e.to_string()))?;
        seen.push((model_type, config.family().objectives().iter().map(|o| o.name()).collect()));
    }
    let list: Vec<serde_json::Value> =
        seen.into_iter().map(|(t, o)| serde_json::json!({"model_type": t, "objectives": o})).collect();
    js_sys::JSON::parse(&serde_json::Value::Array(list).to_string())
}
