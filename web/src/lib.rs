//! wasm-bindgen bindings over `hearth-core` for the browser demo (see ../www). Empty until the demo
//! lands.
