//! [`Collective`] on MPI (rsmpi over MPICH or Open MPI): the engine clusters already run, with
//! their transports (InfiniBand, RoCE, shared memory) and launchers (`mpiexec`, `srun`). Ranks come
//! from MPI itself; the local rank (which GPU) from a split of the world by shared memory.
//!
//! The sum is a reduce-scatter then an all-gather, so each element is added up in one place and
//! every rank ends with the same bits, as the TCP ring guarantees (an MPI all-reduce may add in a
//! different order on each rank, and replicas would drift apart). MPI's default error handler
//! ends the whole job when a call fails, and the launcher ends it when a rank dies.

use hearth_core::Error;
use hearth_core::parallel::Collective;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::ranks::Ranks;

pub struct MpiCollective {
    world: SimpleCommunicator,
    /// Kept until the collective goes (MPI_Finalize on drop), after `world`.
    _universe: Universe,
}

/// MPI initialized, this process's ranks, and the collective when there is more than one.
pub fn join() -> Result<(Ranks, Option<Box<dyn Collective>>), Error> {
    let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
        .ok_or_else(|| Error::Distributed("MPI was initialized twice".into()))?;
    let world = universe.world();
    let local = world.split_shared(world.rank());
    let ranks = Ranks {
        rank: world.rank() as usize,
        world: world.size() as usize,
        local_rank: local.rank() as usize,
        local_world: local.size() as usize,
    };
    if ranks.world == 1 {
        return Ok((ranks, None));
    }
    Ok((ranks, Some(Box::new(MpiCollective { world, _universe: universe }))))
}

fn counts(lengths: impl Iterator<Item = usize>) -> Result<Vec<mpi::Count>, Error> {
    lengths
        .map(|n| {
            mpi::Count::try_from(n).map_err(|_| Error::Distributed(format!("{n} elements exceed one MPI message")))
        })
        .collect()
}

fn displacements(counts: &[mpi::Count]) -> Vec<mpi::Count> {
    counts.iter().scan(0, |at, &n| Some(std::mem::replace(at, *at + n))).collect()
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn world(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), Error> {
        let world = self.world();
        let block = data.len().div_ceil(world).max(1);
        let mut send = data.to_vec();
        send.resize(block * world, 0.0);
        let mut mine = vec![0f32; block];
        self.world.reduce_scatter_block_into(&send[..], &mut mine[..], SystemOperation::sum());
        self.world.all_gather_into(&mine[..], &mut send[..]);
        data.copy_from_slice(&send[..data.len()]);
        Ok(())
    }

    fn all_gather(&mut self, data: &mut [f32], bounds: &[usize]) -> Result<(), Error> {
        let rank = self.rank();
        let mine = data[bounds[rank]..bounds[rank + 1]].to_vec();
        let counts = counts(bounds.windows(2).map(|w| w[1] - w[0]))?;
        let displs = displacements(&counts);
        let mut partition = PartitionMut::new(&mut data[..bounds[bounds.len() - 1]], counts, displs);
        self.world.all_gather_varcount_into(&mine[..], &mut partition);
        Ok(())
    }

    fn gather_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, Error> {
        let root = self.world.process_at_rank(0);
        let len = bytes.len() as u64;
        if self.rank() != 0 {
            root.gather_into(&len);
            root.gather_varcount_into(bytes);
            return Ok(None);
        }
        let mut lens = vec![0u64; self.world()];
        root.gather_into_root(&len, &mut lens[..]);
        let counts = counts(lens.iter().map(|&n| n as usize))?;
        let displs = displacements(&counts);
        let mut all = vec![0u8; lens.iter().sum::<u64>() as usize];
        root.gather_varcount_into_root(bytes, &mut PartitionMut::new(&mut all[..], counts, &displs[..]));
        let mut at = 0;
        Ok(Some(
            lens.iter()
                .map(|&n| {
                    at += n as usize;
                    all[at - n as usize..at].to_vec()
                })
                .collect(),
        ))
    }

    fn broadcast_bytes(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        let mut buf = if self.rank() == 0 { bytes } else { vec![0u8; len as usize] };
        root.broadcast_into(&mut buf[..]);
        Ok(buf)
    }

    fn barrier(&mut self) -> Result<(), Error> {
        self.world.barrier();
        Ok(())
    }
}
