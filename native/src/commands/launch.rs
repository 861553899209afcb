//! `hearth launch`: a small torchrun. Starts one training process per local device with the torchrun environment
//! (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) that `TcpCollective::from_env` reads,
//! waits for all of them, and stops the rest as soon as one fails so that a crash never leaves ranks hanging.
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchPlan {
    pub nproc_per_node: usize,
    pub nnodes: usize,
    pub node_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// Arguments passed to every process.
    pub args: Vec<String>,
}

/// Spawns `plan.nproc_per_node` copies of `program` with `plan.args` and the torchrun environment; stdout and stderr
/// are inherited, and ranks other than 0 get HEARTH_QUIET=1 (no progress bars). Waits for all of them; if one exits
/// unsuccessfully the others are killed and the error names it.
pub fn launch(program: &Path, plan: &LaunchPlan) -> Result<(), String> {
    let LaunchPlan { nproc_per_node: nproc, nnodes, node_rank, .. } = *plan;
    if nproc == 0 {
        return Err("--nproc-per-node must be at least 1".into());
    }
    if nnodes == 0 || node_rank >= nnodes {
        return Err(format!("--node-rank {node_rank} is out of range for --nnodes {nnodes}: use 0..{nnodes}"));
    }
    let loopback = matches!(plan.master_addr.as_str(), "localhost" | "::1") || plan.master_addr.starts_with("127.");
    if nnodes > 1 && loopback {
        return Err(format!(
            "--master-addr {} is a loopback address but --nnodes is {nnodes}: pass the address of node 0 that the \
                other nodes can reach",
            plan.master_addr
        ));
    }
    let world = nproc * nnodes;
    // The CPU backend's threads: the machine's cores shared among this node's ranks (as torchrun
    // sets OMP_NUM_THREADS), unless the user chose them.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).div_ceil(nproc).max(1);
    let mut children: Vec<(usize, Child)> = Vec::with_capacity(nproc);
    for local in 0..nproc {
        let rank = node_rank * nproc + local;
        let mut cmd = Command::new(program);
        cmd.args(&plan.args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", &plan.master_addr)
            .env("MASTER_PORT", plan.master_port.to_string());
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            cmd.env("RAYON_NUM_THREADS", threads.to_string());
        }
        if rank != 0 {
            cmd.env("HEARTH_QUIET", "1");
        }
        match cmd.spawn() {
            Ok(child) => children.push((rank, child)),
            Err(e) => {
                stop_all(&mut children);
                return Err(format!("could not start rank {rank} ({}): {e}", program.display()));
            }
        }
    }
    signals::install();
    let mut interrupted = false;
    loop {
        if signals::take_terminate() {
            signals::forward_terminate(&children);
        }
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait() {
                Ok(None) => i += 1,
                Ok(Some(status)) if status.success() => drop(children.swap_remove(i)),
                // Ctrl-C / SIGTERM: every rank stops at the same step once rank 0 has written its
                // checkpoint, and exits 130; wait for the others rather than killing them.
                Ok(Some(status)) if status.code() == Some(INTERRUPTED) => {
                    interrupted = true;
                    drop(children.swap_remove(i));
                }
                Ok(Some(status)) => {
                    let (rank, _) = children.swap_remove(i);
                    let others = if children.is_empty() { "" } else { "; the others were stopped" };
                    stop_all(&mut children);
                    return Err(format!("rank {rank} exited with {}{others}", describe(status)));
                }
                Err(e) => {
                    let rank = children[i].0;
                    stop_all(&mut children);
                    return Err(format!("could not wait for rank {rank} ({e}); the others were stopped"));
                }
            }
        }
        if children.is_empty() {
            return match interrupted {
                false => Ok(()),
                true => Err("interrupted: the ranks stopped after the step in flight and its checkpoint; continue with the same command and --resume".into()),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The exit status of a `hearth` process stopped by Ctrl-C or SIGTERM after its checkpoint.
const INTERRUPTED: i32 = 130;

/// The launcher's own signals. Ctrl-C in a terminal reaches every process of the foreground group,
/// so the ranks see it themselves and the launcher only keeps waiting for them; a SIGTERM sent to
/// the launcher alone (`kill`, a scheduler) is forwarded once, so that the ranks stop as Ctrl-C
/// stops them instead of being orphaned.
#[cfg(unix)]
mod signals {
    use std::process::Child;
    use std::sync::atomic::{AtomicBool, Ordering};

    static TERMINATE: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_interrupt(_: libc::c_int) {}

    extern "C" fn on_terminate(_: libc::c_int) {
        TERMINATE.store(true, Ordering::SeqCst);
    }

    pub fn install() {
        // SAFETY: the handlers only touch an atomic, which is async-signal-safe. A handler (unlike
        // SIG_IGN) is reset to the default in the children at exec.
        unsafe {
            libc::signal(libc::SIGINT, on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }

    pub fn take_terminate() -> bool {
        TERMINATE.swap(false, Ordering::SeqCst)
    }

    pub fn forward_terminate(children: &[(usize, Child)]) {
        for (_, child) in children {
            // SAFETY: plain kill(2) on a child this process started and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
}

#[cfg(not(unix))]
mod signals {
    pub fn install() {}
    pub fn take_terminate() -> bool {
        false
    }
    pub fn forward_terminate(_: &[(usize, std::process::Child)]) {}
}

fn stop_all(children: &mut Vec<(usize, Child)>) {
    for (_, child) in children.iter_mut() {
        let _ = child.kill();
    }
    for (_, mut child) in children.drain(..) {
        let _ = child.wait(); // reap, so no zombies are left behind
    }
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("status {code}");
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        if signal == 9 {
            // What the kernel's out-of-memory killer sends (nothing in the process can say so).
            return "signal 9 (killed: often the kernel's out-of-memory killer, see `dmesg`; if so, make the run \
                    smaller: gradient_checkpointing, precision = \"bf16\", a smaller batch_size)"
                .to_string();
        }
        return format!("signal {signal}");
    }
    status.to_string()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Instant;

    fn plan(nproc: usize, script: &str) -> LaunchPlan {
        LaunchPlan {
            nproc_per_node: nproc,
            nnodes: 1,
            node_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: 29500,
            args: vec!["-c".into(), script.into()],
        }
    }

    #[test]
    fn success_and_env() {
        let dir = std::env::temp_dir().join(format!("hearth-launch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vars = "$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT ${HEARTH_QUIET:-0}";
        let script = format!(r#"echo "{vars}" > "{}/$RANK""#, dir.display());
        let p = LaunchPlan {
            nnodes: 2,
            node_rank: 1,
            master_addr: "10.1.2.3".into(),
            master_port: 1234,
            ..plan(3, &script)
        };
        launch(Path::new("/bin/sh"), &p).unwrap();
        for (local, rank) in (3..6).enumerate() {
            let got = std::fs::read_to_string(dir.join(rank.to_string())).unwrap();
            assert_eq!(got.trim(), format!("{rank} {local} 6 3 10.1.2.3 1234 1"));
        }
        launch(
            Path::new("/bin/sh"),
            &plan(1, &format!(r#"echo "$RANK ${{HEARTH_QUIET:-0}}" > "{}/solo""#, dir.display())),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("solo")).unwrap().trim(), "0 0");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_stops_the_others() {
        let start = Instant::now();
        let err = launch(Path::new("/bin/sh"), &plan(3, "if [ $RANK = 1 ]; then exit 3; fi; sleep 30")).unwrap_err();
        assert_eq!(err, "rank 1 exited with status 3; the others were stopped");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(
            launch(Path::new("/bin/sh"), &plan(1, "exit $((RANK + 2))")).unwrap_err(),
            "rank 0 exited with status 2"
        );
        let err = launch(Path::new("/bin/sh"), &plan(2, "[ $RANK = 1 ] && kill -9 $$; sleep 30")).unwrap_err();
        assert!(
            err.starts_with("rank 1 exited with signal 9 (killed: often the kernel's out-of-memory killer"),
            "{err}"
        );
        assert!(err.ends_with("a smaller batch_size); the others were stopped"), "{err}");
    }

    #[test]
    fn validation() {
        let sh = Path::new("/bin/sh");
        assert!(launch(sh, &plan(0, "true")).unwrap_err().contains("--nproc-per-node"));
        assert!(
            launch(sh, &LaunchPlan { nnodes: 2, node_rank: 2, ..plan(1, "true") }).unwrap_err().contains("--node-rank")
        );
        assert!(launch(sh, &LaunchPlan { nnodes: 2, ..plan(1, "true") }).unwrap_err().contains("loopback"));
        assert!(
            launch(Path::new("/nonexistent/hearth"), &plan(2, "true")).unwrap_err().contains("could not start rank 0")
        );
    }
}
