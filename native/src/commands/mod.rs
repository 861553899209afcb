//! One module per subcommand of `hearth`: each parses its arguments and drives core, reading and
//! writing through `storage`, joining ranks through `distributed`.

pub mod attention;
pub mod bench;
pub mod eval;
pub mod finetune;
pub mod infer;
pub mod launch;
pub mod parity;
pub mod prepare;
pub mod suites;
pub mod tokenizer;
pub mod train;
