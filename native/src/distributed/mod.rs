//! Which process of a data-parallel run this is, and the collective that joins the processes: MPI
//! when `mpiexec`, `mpirun` or Slurm's `srun` started them (the `mpi` feature), Hearth's TCP ring
//! when `hearth launch` or any launcher with torchrun's variables did, none when it runs alone.

use hearth_core::Error;
use hearth_core::parallel::Collective;

#[cfg(feature = "mpi")]
mod mpi;
mod ranks;
pub mod tcp;

pub use self::ranks::Ranks;
use self::tcp::TcpCollective;

/// Whether an MPI launcher started this process (MPICH's Hydra, Open MPI, PMIx under Slurm) and
/// `hearth launch` did not.
fn mpi_launched() -> bool {
    let mpi = ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"].iter().any(|k| std::env::var_os(k).is_some());
    mpi && std::env::var_os("RANK").is_none()
}

/// This process's ranks and, with more than one, the collective between them.
pub fn join() -> Result<(Ranks, Option<Box<dyn Collective>>), Error> {
    if mpi_launched() {
        #[cfg(feature = "mpi")]
        return self::mpi::join();
        #[cfg(not(feature = "mpi"))]
        return Err(Error::Distributed(
            "an MPI launcher started this process, but this hearth was built without MPI; build it with `cargo build --release -p hearth --features mpi` (an MPI and libclang installed, see the README), or start the ranks with `hearth launch`".into(),
        ));
    }
    let var = |key: &str, default: usize| std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let Some(tcp) = TcpCollective::from_env()? else { return Ok((Ranks::ALONE, None)) };
    let ranks = Ranks {
        rank: tcp.rank(),
        world: tcp.world(),
        local_rank: var("LOCAL_RANK", 0),
        local_world: var("LOCAL_WORLD_SIZE", 1).max(1),
    };
    Ok((ranks, Some(Box::new(tcp))))
}
