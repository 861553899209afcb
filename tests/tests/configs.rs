//! The run files in `configs/` are valid: they parse with unknown keys rejected and name a preset
//! whose config, with their `[model]` overrides, builds.

use hearth_core::models::presets::preset;
use hearth_core::train::TrainConfig;

#[test]
fn shipped_run_files_parse_and_build() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let config = TrainConfig::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        preset(&config.preset, &config.model).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 3);
    // The spelled-out default is the default.
    let default = TrainConfig::from_toml(&std::fs::read_to_string(dir.join("gpt-tiny-austen.toml")).unwrap()).unwrap();
    let builtin = TrainConfig::default();
    assert_eq!(
        (default.lr, default.max_steps, default.batch_size, default.block_size),
        (builtin.lr, builtin.max_steps, builtin.batch_size, builtin.block_size)
    );
}
