//! The Autodiff side of the fused attention: the forward keeps q, k, v, the key padding, O and the
//! LSE; the backward runs the backward kernels (no T×T matrix on either side). Generic over the
//! backend that runs the kernels: burn's cubecl backend, or the same wrapped in kernel fusion.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};

use super::wgsl::{AttentionKernels, FusedAttentionOps, count_launch};

#[derive(Debug)]
struct FusedAttentionBackward;

/// What the backward reads: the inputs, the output and its log-sum-exp, the flags.
struct State<B: AttentionKernels> {
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    pad: IntTensor<B>,
    o: FloatTensor<B>,
    lse: FloatTensor<B>,
    scale: f32,
    causal: bool,
    has_padding: bool,
}

impl<B: AttentionKernels> Clone for State<B> {
    fn clone(&self) -> Self {
        Self {
            q: self.q.clone(),
            k: self.k.clone(),
            v: self.v.clone(),
            pad: self.pad.clone(),
            o: self.o.clone(),
            lse: self.lse.clone(),
            scale: self.scale,
            causal: self.causal,
            has_padding: self.has_padding,
        }
    }
}

impl<B: AttentionKernels> std::fmt::Debug for State<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("scale", &self.scale).field("causal", &self.causal).finish()
    }
}

impl<B: AttentionKernels> Backward<B, 3> for FusedAttentionBackward {
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let (dq, dk, dv) =
            B::attention_backward(s.q, s.k, s.v, s.pad, s.o, s.lse, grad, s.scale, s.causal, s.has_padding);
        if let Some(node) = node_q {
            grads.register::<B>(node.id, dq);
        }
        if let Some(node) = node_k {
            grads.register::<B>(node.id, dk);
        }
        if let Some(node) = node_v {
            grads.register::<B>(node.id, dv);
        }
    }
}

impl<B: AttentionKernels, C: CheckpointStrategy> FusedAttentionOps for Autodiff<B, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self> {
        count_launch();
        let nodes = [q.node(), k.node(), v.node()];
        let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
        match FusedAttentionBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (o, lse) = B::attention_forward(
                    q.clone(),
                    k.clone(),
                    v.clone(),
                    key_padding.clone(),
                    scale,
                    causal,
                    has_padding,
                );
                let state = State::<B> { q, k, v, pad: key_padding, o: o.clone(), lse, scale, causal, has_padding };
                prep.finish(state, o)
            }
            OpsKind::UnTracked(prep) => {
                let (o, _) = B::attention_forward(q, k, v, key_padding, scale, causal, has_padding);
                prep.finish(o)
            }
        }
    }
}
