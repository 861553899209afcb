//! Scaled dot-product attention on the CPU, `softmax(q·kᵀ·scale, masked)·v`, with HF eager
//! semantics (masked scores at `f32::MIN`: a row whose keys are all masked is uniform over all
//! keys, and its scores get no gradient), as the WGSL kernel beside it (`wgsl.rs`).
//!
//! One rayon task per (batch, head); inside it, blocks of [`BLOCK`] queries: the block's scores
//! (`BLOCK × tk`) live in a scratch buffer, so memory grows linearly with the sequence length. The
//! forward keeps O and the log-sum-exp per query; the backward recomputes each block's
//! probabilities from them and accumulates dK and dV per head. The products are `gemm` calls on
//! the strided views of q, k, v (no copies); O and the gradients are written as `[b, t, h, dh]`,
//! so merging or splitting the heads around the call is a view. Grouped-query attention: k and v
//! may hold fewer heads than q (`h / kv` query heads share each); the shared head is read in
//! place, never repeated, and its gradient is the sum over its group.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};

use crate::multiversion;
use crate::plumbing::par::*;
use crate::plumbing::simd::{exp, max, sum_map, sum_zip};
use crate::plumbing::{SharedMut, ints, tensor};

/// The kernel as a burn op: flex runs the forward alone, Autodiff<flex> keeps what backward reads.
#[backend_extension(Autodiff, Flex)]
pub trait CpuAttentionOps: Backend {
    /// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]`, `key_padding [b, tk]` (non-zero = masked; read
    /// only when `has_padding`) -> `[b, h, tq, dh]` (stored as `[b, tq, h, dh]`, so that merging the
    /// heads afterwards is a view).
    fn cpu_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self>;
}

impl CpuAttentionOps for Flex {
    fn cpu_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        key_padding: FlexTensor,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FlexTensor {
        let params = Params::of(&q, &k, scale, causal);
        let pad = has_padding.then(|| padding(&key_padding));
        forward(&params, &q, &k, &v, pad.as_deref()).0
    }
}

impl<C: CheckpointStrategy> CpuAttentionOps for Autodiff<Flex, C> {
    fn cpu_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self> {
        autodiff::<C>(q, k, v, key_padding, scale, causal, has_padding)
    }
}

/// Queries per block.
const BLOCK: usize = 64;
/// The log-sum-exp kept for a row that sees no key (uniform over all keys, no score gradient).
const UNIFORM: f32 = f32::INFINITY;

/// The call's sizes and flags (shared with the WGSL kernel).
pub(crate) type Params = super::Sizes;

impl Params {
    fn of(q: &FlexTensor, k: &FlexTensor, scale: f32, causal: bool) -> Self {
        Params::new(q.layout().shape(), k.layout().shape(), scale, causal)
    }

    /// `[b, t, h, dh]` buffers: the offset of (batch, head) and the row stride.
    fn bthd(&self, bi: usize, hi: usize, t: usize) -> (usize, usize) {
        ((bi * t * self.h + hi) * self.dh, self.h * self.dh)
    }
}

/// A `[b, h, t, dh]` tensor's storage with unit stride along `dh`.
struct View {
    tensor: FlexTensor,
    offset: usize,
    strides: [usize; 3],
}

impl View {
    fn of(t: &FlexTensor) -> View {
        let layout = t.layout();
        let s = layout.strides();
        let tensor = if s[3] == 1 && s[..3].iter().all(|&s| s >= 0) { t.clone() } else { t.to_contiguous() };
        let (offset, s) = (tensor.layout().start_offset(), tensor.layout().strides());
        let strides = [s[0] as usize, s[1] as usize, s[2] as usize];
        View { tensor, offset, strides }
    }

    /// Pointer to row 0 of (batch, head) and the row stride.
    fn head(&self, bi: usize, hi: usize) -> (*const f32, usize) {
        let data = self.tensor.storage::<f32>();
        let start = self.offset + bi * self.strides[0] + hi * self.strides[1];
        (data[start..].as_ptr(), self.strides[2])
    }
}

/// `dst (m × n) = beta·lhs (m × k)·rhs (k × n)`, plus `dst` when `accumulate`; each matrix a
/// pointer with its row and column strides, in elements.
///
/// # Safety
/// Every pointer must be valid for the elements its strides reach, and `dst` not alias the others.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, usize, usize),
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    beta: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the caller's contract; gemm reads and writes only within the given strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            dst.2 as isize,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
            rhs.2 as isize,
            rhs.1 as isize,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The key padding as one flag per key (`[b·tk]`), converted once per call and kept for backward.
pub(crate) fn padding(key_padding: &FlexTensor) -> Vec<bool> {
    ints(key_padding).iter().map(|&m| m != 0).collect()
}

/// O (`[b, h, tq, dh]`, stored `[b, tq, h, dh]`) and the log-sum-exp per query (`[b·h·tq]`).
pub(crate) fn forward(
    p: &Params,
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    pad: Option<&[bool]>,
) -> (FlexTensor, Vec<f32>) {
    let (q, k, v) = (View::of(q), View::of(k), View::of(v));
    let mut o = vec![0.0f32; p.b * p.tq * p.h * p.dh];
    let mut lse = vec![0.0f32; p.b * p.h * p.tq];
    let out = SharedMut(o.as_mut_ptr());
    lse.par_chunks_mut(p.tq.max(1)).enumerate().for_each(|(bh, lse)| {
        let (bi, hi) = (bh / p.h, bh % p.h);
        let pad = pad.map(|m| &m[bi * p.tk..(bi + 1) * p.tk]);
        // SAFETY: task (bi, hi) writes only the rows of head hi of batch bi in `o`.
        unsafe { forward_head(p, &q, &k, &v, pad, bi, hi, out, lse) };
    });
    (tensor(o, [p.b, p.tq, p.h, p.dh]).permute(&[0, 2, 1, 3]), lse)
}

#[allow(clippy::too_many_arguments)]
unsafe fn forward_head(
    p: &Params,
    q: &View,
    k: &View,
    v: &View,
    pad: Option<&[bool]>,
    bi: usize,
    hi: usize,
    out: SharedMut,
    lse: &mut [f32],
) {
    let kvh = p.kv_head(hi);
    let ((q, qs), (k, ks), (v, vs)) = (q.head(bi, hi), k.head(bi, kvh), v.head(bi, kvh));
    let (o_off, os) = p.bthd(bi, hi, p.tq);
    let mut scores = vec![0.0f32; BLOCK * p.tk];
    for i0 in (0..p.tq).step_by(BLOCK) {
        let m = BLOCK.min(p.tq - i0);
        let kend = p.key_end(i0 + m - 1);
        let s = &mut scores[..m * kend];
        // SAFETY (all blocks): q, k, v rows within their heads; `o` rows of this head only.
        unsafe {
            // S = scale · Q Kᵀ   [m, kend]
            matmul([m, kend, p.dh], (s.as_mut_ptr(), kend, 1), false, (q.add(i0 * qs), qs, 1), (k, 1, ks), p.scale);
        }
        if kend == 0 {
            // No row of the block sees a key (causal with tq > tk): all uniform.
            lse[i0..i0 + m].fill(UNIFORM);
        }
        for (r, row) in s.chunks_exact_mut(kend.max(1)).take(m).enumerate() {
            lse[i0 + r] = softmax_row(row, p.key_end(i0 + r), pad);
        }
        let o = unsafe { out.0.add(o_off + i0 * os) };
        unsafe {
            // O = P V   [m, dh]
            matmul([m, p.dh, kend], (o, os, 1), false, (s.as_ptr(), kend, 1), (v, vs, 1), 1.0);
        }
        for r in (0..m).filter(|&r| lse[i0 + r] == UNIFORM) {
            // No visible key: the mean of every value row.
            let o = unsafe { std::slice::from_raw_parts_mut(out.0.add(o_off + (i0 + r) * os), p.dh) };
            o.fill(0.0);
            for j in 0..p.tk {
                let vj = unsafe { std::slice::from_raw_parts(v.add(j * vs), p.dh) };
                o.iter_mut().zip(vj).for_each(|(o, &x)| *o += x / p.tk as f32);
            }
        }
    }
}

multiversion! {
    /// A row of scores to probabilities in place (keys `end..` and padded keys to 0); returns
    /// the log-sum-exp, or [`UNIFORM`] (and a zero row) when no key is visible.
    fn softmax_row(row: &mut [f32], end: usize, pad: Option<&[bool]>) -> f32 {
        let end = end.min(row.len());
        row[end..].fill(f32::NEG_INFINITY);
        if let Some(pad) = pad {
            row.iter_mut().zip(pad).filter(|(_, m)| **m).for_each(|(s, _)| *s = f32::NEG_INFINITY);
        }
        let m = max(row);
        if m == f32::NEG_INFINITY {
            row.fill(0.0);
            return UNIFORM;
        }
        for s in row.iter_mut() {
            *s = exp(*s - m);
        }
        let sum = sum_map(row, |x| x);
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|s| *s *= inv);
        m + sum.ln()
    }
}

/// dQ, dK, dV (`[b, h, t, dh]` each, stored `[b, t, h, dh]`) from dO.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    p: &Params,
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    pad: Option<&[bool]>,
    o: &FlexTensor,
    lse: &[f32],
    dout: &FlexTensor,
) -> [FlexTensor; 3] {
    let (q, k, v, o, dout) = (View::of(q), View::of(k), View::of(v), View::of(o), View::of(dout));
    let mut dq = vec![0.0f32; p.b * p.tq * p.h * p.dh];
    let mut dk = vec![0.0f32; p.b * p.tk * p.h * p.dh];
    let mut dv = vec![0.0f32; p.b * p.tk * p.h * p.dh];
    let grads = [SharedMut(dq.as_mut_ptr()), SharedMut(dk.as_mut_ptr()), SharedMut(dv.as_mut_ptr())];
    lse.par_chunks(p.tq.max(1)).enumerate().for_each(|(bh, lse)| {
        let (bi, hi) = (bh / p.h, bh % p.h);
        let pad = pad.map(|m| &m[bi * p.tk..(bi + 1) * p.tk]);
        // SAFETY: task (bi, hi) writes only the rows of head hi of batch bi in dq, dk, dv.
        unsafe { backward_head(p, [&q, &k, &v, &o, &dout], pad, lse, bi, hi, grads) };
    });
    let perm = |g: Vec<f32>, t: usize, h: usize| tensor(g, [p.b, t, h, p.dh]).permute(&[0, 2, 1, 3]);
    let (dk, dv) = (sum_groups(p, dk), sum_groups(p, dv));
    [perm(dq, p.tq, p.h), perm(dk, p.tk, p.kv), perm(dv, p.tk, p.kv)]
}

/// A per-query-head key/value gradient `[b, tk, h, dh]` summed over each group into its shared
/// head, `[b, tk, kv, dh]` (in a fixed order: the same bits whatever thread ran what).
fn sum_groups(p: &Params, g: Vec<f32>) -> Vec<f32> {
    if p.kv == p.h {
        return g;
    }
    let group = p.h / p.kv;
    let mut out = vec![0.0f32; p.b * p.tk * p.kv * p.dh];
    out.par_chunks_mut(p.kv * p.dh).zip(g.par_chunks(p.h * p.dh)).for_each(|(out, row)| {
        for (kvh, out) in out.chunks_exact_mut(p.dh).enumerate() {
            for member in row[kvh * group * p.dh..(kvh + 1) * group * p.dh].chunks_exact(p.dh) {
                out.iter_mut().zip(member).for_each(|(o, &x)| *o += x);
            }
        }
    });
    out
}

unsafe fn backward_head(
    p: &Params,
    views: [&View; 5],
    pad: Option<&[bool]>,
    lse: &[f32],
    bi: usize,
    hi: usize,
    grads: [SharedMut; 3],
) {
    let kvh = p.kv_head(hi);
    let [(q, qs), (k, ks), (v, vs), (o, os), (d_o, dos)] =
        [(views[0], hi), (views[1], kvh), (views[2], kvh), (views[3], hi), (views[4], hi)].map(|(x, h)| x.head(bi, h));
    let (dq_off, dqs) = p.bthd(bi, hi, p.tq);
    let (dkv_off, dkvs) = p.bthd(bi, hi, p.tk);
    let (dq, dk, dv) = unsafe { (grads[0].0.add(dq_off), grads[1].0.add(dkv_off), grads[2].0.add(dkv_off)) };
    let mut probs = vec![0.0f32; BLOCK * p.tk];
    let mut dscores = vec![0.0f32; BLOCK * p.tk];
    for i0 in (0..p.tq).step_by(BLOCK) {
        let m = BLOCK.min(p.tq - i0);
        let lse = &lse[i0..i0 + m];
        let kend = if lse.contains(&UNIFORM) { p.tk } else { p.key_end(i0 + m - 1) };
        if kend == 0 {
            continue;
        }
        let (pr, ds) = (&mut probs[..m * kend], &mut dscores[..m * kend]);
        let (qb, dob) = unsafe { (q.add(i0 * qs), d_o.add(i0 * dos)) };
        // SAFETY (all blocks): reads within this head's rows; writes to this head's gradient rows.
        unsafe {
            // S = scale · Q Kᵀ, then P = exp(S − lse) where visible   [m, kend]
            matmul([m, kend, p.dh], (pr.as_mut_ptr(), kend, 1), false, (qb, qs, 1), (k, 1, ks), p.scale);
        }
        for (r, row) in pr.chunks_exact_mut(kend).enumerate() {
            probabilities_row(row, p.key_end(i0 + r), pad, lse[r], p.tk);
        }
        unsafe {
            // dV += Pᵀ dO   [kend, dh]
            matmul([kend, p.dh, m], (dv, dkvs, 1), true, (pr.as_ptr(), 1, kend), (dob, dos, 1), 1.0);
            // dP = dO Vᵀ   [m, kend]
            matmul([m, kend, p.dh], (ds.as_mut_ptr(), kend, 1), false, (dob, dos, 1), (v, 1, vs), 1.0);
        }
        for (r, (ds, pr)) in ds.chunks_exact_mut(kend).zip(pr.chunks_exact(kend)).enumerate() {
            let (o_row, do_row) = unsafe {
                (
                    std::slice::from_raw_parts(o.add((i0 + r) * os), p.dh),
                    std::slice::from_raw_parts(dob.add(r * dos), p.dh),
                )
            };
            score_gradient_row(ds, pr, sum_zip(o_row, do_row, |a, b| a * b), lse[r] == UNIFORM);
        }
        unsafe {
            // dQ = scale · dS K   [m, dh]
            matmul([m, p.dh, kend], (dq.add(i0 * dqs), dqs, 1), false, (ds.as_ptr(), kend, 1), (k, ks, 1), p.scale);
            // dK += scale · dSᵀ Q   [kend, dh]
            matmul([kend, p.dh, m], (dk, dkvs, 1), true, (ds.as_ptr(), 1, kend), (qb, qs, 1), p.scale);
        }
    }
}

multiversion! {
    /// Scores to the forward's probabilities from its log-sum-exp (uniform `1/tk` for a row that
    /// saw no key).
    fn probabilities_row(row: &mut [f32], end: usize, pad: Option<&[bool]>, lse: f32, tk: usize) {
        if lse == UNIFORM {
            row.fill(1.0 / tk as f32);
            return;
        }
        for s in row.iter_mut() {
            *s = exp(*s - lse);
        }
        let end = end.min(row.len());
        row[end..].fill(0.0);
        if let Some(pad) = pad {
            row.iter_mut().zip(pad).filter(|(_, m)| **m).for_each(|(s, _)| *s = 0.0);
        }
    }
}

multiversion! {
    /// `dP` to `dS = P ∘ (dP − rowsum(dO ∘ O))` in place; zero for a row that saw no key (its
    /// scores were all masked, and a masked score has no gradient).
    fn score_gradient_row(ds: &mut [f32], probs: &[f32], delta: f32, uniform: bool) {
        if uniform {
            ds.fill(0.0);
            return;
        }
        for (d, &pr) in ds.iter_mut().zip(probs) {
            *d = pr * (*d - delta);
        }
    }
}

#[derive(Debug)]
struct AttentionBackward;

#[derive(Clone, Debug)]
struct State {
    params: Params,
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    /// The key padding, one flag per key, when there is one.
    pad: Option<Vec<bool>>,
    o: FlexTensor,
    lse: Vec<f32>,
}

impl Backward<Flex, 3> for AttentionBackward {
    type State = State;

    fn backward(self, ops: Ops<State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dout = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let dqkv = backward(&s.params, &s.q, &s.k, &s.v, s.pad.as_deref(), &s.o, &s.lse, &dout);
        crate::plumbing::register(grads, ops.parents, dqkv, |n| n.id);
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn autodiff<C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<Flex, C>>,
    k: FloatTensor<Autodiff<Flex, C>>,
    v: FloatTensor<Autodiff<Flex, C>>,
    key_padding: IntTensor<Autodiff<Flex, C>>,
    scale: f32,
    causal: bool,
    has_padding: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = [q.node(), k.node(), v.node()];
    let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
    let params = Params::of(&q, &k, scale, causal);
    let pad = has_padding.then(|| padding(&key_padding));
    match AttentionBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (o, lse) = forward(&params, &q, &k, &v, pad.as_deref());
            prep.finish(State { params, q, k, v, pad, o: o.clone(), lse }, o)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&params, &q, &k, &v, pad.as_deref()).0),
    }
}

/// Whether the kernel takes these shapes: q, k, v of equal batch, k and v of equal shape, equal
/// head dims, and k's heads dividing q's (grouped-query attention).
pub fn supports(q: [usize; 4], k: [usize; 4], v: [usize; 4]) -> bool {
    q[0] == k[0] && k[1] > 0 && q[1] % k[1] == 0 && k == v && q[3] == k[3]
}

/// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]`, `key_padding [b, tk]` (`true` = masked) -> `[b, h,
/// tq, dh]` through the kernel (see [`crate::cpu::applies`] and [`supports`]).
pub fn attention(
    q: burn::tensor::Tensor<4>,
    k: burn::tensor::Tensor<4>,
    v: burn::tensor::Tensor<4>,
    causal: bool,
    key_padding: Option<burn::tensor::Tensor<2, burn::tensor::Bool>>,
    scale: f32,
) -> burn::tensor::Tensor<4> {
    use burn::backend::Dispatch;
    let has_padding = key_padding.is_some();
    let padding = match key_padding {
        Some(p) => p.int(),
        None => burn::tensor::Tensor::<2, burn::tensor::Int>::zeros([1, 1], &q.device()),
    };
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        padding.into_dispatch(),
        scale,
        causal,
        has_padding,
    ))
}

#[cfg(test)]
mod tests {
    use crate::plumbing::testing::{assert_close, device, random};
    use burn::tensor::{Bool, Tensor, TensorData, activation::softmax};

    /// burn's composition with HF eager semantics, as `hearth_core::nn::attention` writes it.
    fn composed(
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        causal: bool,
        pad: Option<Tensor<2, Bool>>,
        scale: f32,
    ) -> Tensor<4> {
        let [b, h, tq, _] = q.dims();
        let tk = k.dims()[2];
        let mut scores = (q * scale).matmul(k.swap_dims(2, 3));
        let mut mask =
            Tensor::<4, Bool>::from_data(TensorData::new(vec![false; b * h * tq * tk], [b, h, tq, tk]), &device());
        if causal {
            let c = Tensor::<2, Bool>::tril_mask([tq, tk], tk as i64 - tq as i64, &device()).unsqueeze::<4>();
            mask = mask.bool_or(c.expand([b, h, tq, tk]));
        }
        if let Some(p) = pad {
            mask = mask.bool_or(p.unsqueeze_dims::<4>(&[1, 2]).expand([b, h, tq, tk]));
        }
        scores = scores.mask_fill(mask, f32::MIN);
        softmax(scores, 3).matmul(v)
    }

    #[allow(clippy::too_many_arguments)]
    fn check(b: usize, h: usize, tq: usize, tk: usize, dh: usize, causal: bool, pad: Option<Vec<bool>>, seed: u64) {
        check_groups(b, h, h, tq, tk, dh, causal, pad, seed)
    }

    /// `kv` key/value heads for `h` query heads (grouped-query attention); the composition reads
    /// them repeated (HF's `repeat_kv`), the kernel in place.
    #[allow(clippy::too_many_arguments)]
    fn check_groups(
        b: usize,
        h: usize,
        kv: usize,
        tq: usize,
        tk: usize,
        dh: usize,
        causal: bool,
        pad: Option<Vec<bool>>,
        seed: u64,
    ) {
        // q, k, v as the models make them: heads split from [b, t, heads·dh] (strided views).
        let split =
            |t: usize, heads: usize, s: u64| random([b, t, heads * dh], s).reshape([b, t, heads, dh]).swap_dims(1, 2);
        let (q, k, v) = (split(tq, h, seed), split(tk, kv, seed + 1), split(tk, kv, seed + 2));
        let repeat = |x: Tensor<4>| x.unsqueeze_dim::<5>(2).expand([b, kv, h / kv, tk, dh]).reshape([b, h, tk, dh]);
        let up = random([b, h, tq, dh], seed + 3);
        let pad = pad.map(|p| Tensor::<2, Bool>::from_data(TensorData::new(p, [b, tk]), &device()));
        let scale = 1.0 / (dh as f32).sqrt();
        let run = |fused: bool| {
            let (q, k, v) = (q.clone().require_grad(), k.clone().require_grad(), v.clone().require_grad());
            let o = if fused {
                super::attention(q.clone(), k.clone(), v.clone(), causal, pad.clone(), scale)
            } else {
                composed(q.clone(), repeat(k.clone()), repeat(v.clone()), causal, pad.clone(), scale)
            };
            let grads = (o.clone() * up.clone()).sum().backward();
            (o, q.grad(&grads).unwrap(), k.grad(&grads).unwrap(), v.grad(&grads).unwrap())
        };
        let ((o, dq, dk, dv), (o0, dq0, dk0, dv0)) = (run(true), run(false));
        let what = format!("b{b} h{h} kv{kv} tq{tq} tk{tk} dh{dh} causal {causal}");
        assert_close(o, o0, 1e-5, &format!("{what}: O"));
        assert_close(dq, dq0, 1e-5, &format!("{what}: dQ"));
        assert_close(dk, dk0, 1e-5, &format!("{what}: dK"));
        assert_close(dv, dv0, 1e-5, &format!("{what}: dV"));
    }

    #[test]
    fn causal_matches_the_composition() {
        check(2, 4, 64, 64, 32, true, None, 1);
        check(1, 2, 150, 150, 16, true, None, 2); // ragged last block
        check(1, 1, 5, 9, 8, true, None, 3); // tq < tk: the first query sees tk − tq + 1 keys
        check(1, 2, 70, 5, 8, true, None, 7); // tq > tk: the first 65 queries see no key (uniform)
    }

    #[test]
    fn grouped_query_attention_matches_the_repeated_composition() {
        check_groups(2, 4, 2, 70, 70, 24, true, None, 8); // two query heads per key/value head
        check_groups(1, 6, 1, 33, 33, 16, false, None, 9); // one key/value head for all (MQA)
        let pad: Vec<bool> = (0..2 * 40).map(|i| i % 40 >= 35).collect();
        check_groups(2, 4, 2, 40, 40, 8, true, Some(pad), 10);
    }

    #[test]
    fn padding_and_fully_masked_rows_match_the_composition() {
        let pad: Vec<bool> = (0..2 * 70).map(|i| i % 70 >= 60 || (i >= 70 && i % 70 < 3)).collect();
        check(2, 3, 70, 70, 24, false, Some(pad.clone()), 4);
        // Causal with left padding: batch 1's first three queries see no key (uniform rows).
        check(2, 3, 70, 70, 24, true, Some(pad), 5);
        check(1, 2, 4, 6, 8, false, Some(vec![true; 6]), 6); // every key padded
    }
}
