//! Training, as components apart from the loop that uses them (torchtitan's split): the run's
//! configuration, the learning-rate schedule, the data cursor, the optimizer (AdamW with decay on
//! matrices only, global-norm clipping), the `Trainer` that steps them, and the `engine` every
//! front end drives (the loop and its periodic jobs; pretraining's in `pretraining`). Nothing here
//! touches the terminal or the file system: checkpoints are bytes in and bytes out, and what a run
//! writes leaves through the engine's `Sink`.

pub mod config;
pub mod corpus;
pub mod data;
pub mod engine;
pub mod footprint;
pub mod keys;
pub mod optim;
pub mod precision;
pub mod pretraining;
pub mod run;
pub mod schedule;
pub mod state;
pub mod trainer;

pub use config::{Objective, TrainConfig};
pub use data::{Cursor, TokenSource};
pub use engine::{Engine, Job, Sink, Steps};
pub use precision::Precision;
pub use schedule::Schedule;
pub use state::{Checkpoint, StepStats, TrainState};
pub use trainer::Trainer;
