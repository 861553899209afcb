//! Pretraining, as components apart from the loop that uses them (torchtitan's split): the run's
//! configuration, the learning-rate schedule, the data cursor, the optimizer (AdamW with decay on
//! matrices only, global-norm clipping), and the `Trainer` that steps them. Nothing here touches the
//! terminal or the file system: checkpoints are bytes in and bytes out.

pub mod config;
pub mod corpus;
pub mod data;
pub mod footprint;
pub mod keys;
pub mod optim;
pub mod precision;
pub mod run;
pub mod schedule;
pub mod state;
pub mod trainer;

pub use config::{Objective, TrainConfig};
pub use data::{Cursor, TokenSource};
pub use precision::Precision;
pub use schedule::Schedule;
pub use state::{Checkpoint, StepStats, TrainState};
pub use trainer::Trainer;
