//! Fault injection for the tests that kill a run and resume it, compiled in only with the
//! `fault-injection` feature (the README's test command turns it on); without it these are no-ops
//! and a user's binary reads no test variables.

/// `HEARTH_TEST_STEP_DELAY_MS`: sleeps before each step, so that a test can land a signal or a
/// SIGKILL between checkpoints.
pub fn before_step() {
    #[cfg(feature = "fault-injection")]
    if let Some(ms) = std::env::var("HEARTH_TEST_STEP_DELAY_MS").ok().and_then(|s| s.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// `HEARTH_TEST_KILL_IN_CHECKPOINT=<step>`: the process kills itself (SIGKILL) while writing that
/// step's checkpoint, after its first file.
pub fn while_writing_checkpoint(step: u64) {
    kill_if("HEARTH_TEST_KILL_IN_CHECKPOINT", step);
}

/// `HEARTH_TEST_KILL_IN_PREPARE=<n>`: `hearth prepare` kills itself (SIGKILL) after tokenizing its
/// `n`-th chunk, before committing it.
pub fn before_prepare_commit(chunk: u64) {
    kill_if("HEARTH_TEST_KILL_IN_PREPARE", chunk);
}

/// SIGKILL to this process when the variable `var` says `at`, as an operator's `kill -9` would.
fn kill_if(var: &str, at: u64) {
    #[cfg(feature = "fault-injection")]
    if std::env::var(var).is_ok_and(|s| s == at.to_string()) {
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        std::process::abort();
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = (var, at);
}
