//! The autodiff side of the memory-bound kernels (LayerNorm, RMS norm, GELU), written once: like
//! burn's own elementwise ops, the output is not kept but recomputed from the inputs under
//! activation checkpointing (a retro forward), and the backward reads the inputs back.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::retro_forward::RetroForward;
use burn::backend::autodiff::checkpoint::state::BackwardStates;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;

/// A kernel over `N` float inputs and a setting `P` (eps, the GELU form).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernel<const N: usize, P> {
    /// `inputs -> output`
    pub forward: fn([&FlexTensor; N], P) -> FlexTensor,
    /// `inputs, d output -> d input` for each input.
    pub backward: fn([&FlexTensor; N], &FlexTensor, P) -> [FlexTensor; N],
    pub setting: P,
}

impl<const N: usize, P: Copy + std::fmt::Debug + Send + Sync + 'static> Backward<Flex, N> for Kernel<N, P> {
    /// The inputs' nodes (kept, or recomputed under activation checkpointing).
    type State = [NodeId; N];

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let inputs: [FlexTensor; N] = ops.state.map(|id| checkpointer.retrieve_node_output(id));
        let dx = (self.backward)(inputs.each_ref(), &dy, self.setting);
        crate::plumbing::register(grads, ops.parents, dx, |n| n.id);
    }
}

/// Recomputes the output from the inputs, for activation checkpointing.
#[derive(Debug)]
struct Retro<const N: usize, P> {
    kernel: Kernel<N, P>,
    inputs: [NodeId; N],
}

impl<const N: usize, P: Copy + std::fmt::Debug + Send + Sync + 'static> RetroForward for Retro<N, P> {
    fn forward(&self, states: &mut BackwardStates, out: NodeId) {
        let inputs: [FlexTensor; N] = self.inputs.map(|id| states.get_state(&id));
        states.save(out, (self.kernel.forward)(inputs.each_ref(), self.kernel.setting));
    }
}

/// `kernel` on `inputs` under autodiff, as a memory-bound op.
pub(crate) fn autodiff<C: CheckpointStrategy, const N: usize, P: Copy + std::fmt::Debug + Send + Sync + 'static>(
    kernel: Kernel<N, P>,
    inputs: [FloatTensor<Autodiff<Flex, C>>; N],
) -> FloatTensor<Autodiff<Flex, C>> {
    let retro = Retro { kernel, inputs: inputs.each_ref().map(|t| t.id()) };
    let prep = kernel.prepare::<C>(inputs.each_ref().map(|t| t.node())).memory_bound().retro_forward(retro);
    let output = || (kernel.forward)(inputs.each_ref().map(|t| t.primitive()), kernel.setting);
    match prep.parents(inputs.iter()).stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = std::array::from_fn(|i| prep.checkpoint(&inputs[i]));
            prep.finish(state, output())
        }
        OpsKind::UnTracked(prep) => prep.finish(output()),
    }
}
