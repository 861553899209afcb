//! The Autodiff side of the fused attention: the forward keeps q, k, v, the key padding, O and the
//! LSE; the backward runs the three backward kernels (no T×T matrix on either side).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::wgpu::{CubeBackend, CubeTensor};

use super::{FusedAttentionOps, Params, backward, forward};

#[derive(Debug)]
struct FusedAttentionBackward;

#[derive(Clone)]
struct State {
    params: Params,
    q: CubeTensor,
    k: CubeTensor,
    v: CubeTensor,
    pad: CubeTensor,
    o: CubeTensor,
    lse: CubeTensor,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("params", &self.params).finish()
    }
}

impl Backward<CubeBackend, 3> for FusedAttentionBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = grads.consume::<CubeBackend>(&ops.node);
        let s = ops.state;
        let (dq, dk, dv) = backward(&s.params, s.q, s.k, s.v, s.pad, s.o, s.lse, grad);
        if let Some(node) = node_q {
            grads.register::<CubeBackend>(node.id, dq);
        }
        if let Some(node) = node_k {
            grads.register::<CubeBackend>(node.id, dk);
        }
        if let Some(node) = node_v {
            grads.register::<CubeBackend>(node.id, dv);
        }
    }
}

impl<C: CheckpointStrategy> FusedAttentionOps for Autodiff<CubeBackend, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self> {
        let nodes = [q.node(), k.node(), v.node()];
        let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
        let params = Params::new(&q, &k, scale, causal, has_padding);
        match FusedAttentionBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (o, lse) = forward(&params, q.clone(), k.clone(), v.clone(), key_padding.clone());
                let state = State { params, q, k, v, pad: key_padding, o: o.clone(), lse };
                prep.finish(state, o)
            }
            OpsKind::UnTracked(prep) => {
                let (o, _) = forward(&params, q, k, v, key_padding);
                prep.finish(o)
            }
        }
    }
}
