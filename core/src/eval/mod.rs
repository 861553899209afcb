//! Judging a pretrained model: perplexity (sliding window, bits per byte, pseudo-perplexity,
//! objective loss), zero-shot tasks (lm-evaluation-harness style) and classification metrics for
//! downstream fine-tuning.

pub mod downstream;
pub mod metrics;
pub mod perplexity;
pub mod score;
pub mod zero_shot;

pub use metrics::{ClassificationMetrics, answer_f1_em, majority_class, multirc, normalize_answer, pearson, spearman};
pub use perplexity::{
    LabelledNll, Nll, ObjectiveEval, causal_nll, causal_rows_nll, labelled_nll, objective_eval, pseudo_nll,
    sliding_windows,
};
pub use score::{LogLikelihood, Request, Scorer, causal_token_logprobs};
pub use zero_shot::{Draw, Example, Shots, Task, TaskResult, argmax, encode_pair, run_suite, run_task};
