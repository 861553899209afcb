//! What Hearth keeps on disk and reads back: checkpoints, prepared shards, the documents of a
//! corpus in any format, labelled examples, evaluation task files, and trained models opened for
//! use.

pub mod checkpoint;
pub mod documents;
pub mod labeled;
pub mod model;
pub mod shards;
pub mod tasks;
