//! This process's place in a data-parallel run.

/// This process's place: its rank among `world`, and among the `local_world` ranks on its machine.
#[derive(Clone, Copy, Debug)]
pub struct Ranks {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub local_world: usize,
}

impl Ranks {
    pub const ALONE: Ranks = Ranks { rank: 0, world: 1, local_rank: 0, local_world: 1 };
}
