//! The WGSL kernels of fused attention (FlashAttention-2 style), forward and backward, registered
//! as a burn custom operation on the wgpu (Cube) backend; the Autodiff backward is in
//! `wgsl_backward.rs`.

use std::cell::Cell;

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::wgpu::{CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous};
use burn::backend::{Backend, Cube, backend_extension};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};
use burn::tensor::{DType, IntDType, Shape};

/// Query (or key) rows per workgroup (the prep kernel: one invocation each; the others: see
/// [`rows_per_invocation`]).
const ROWS: usize = 64;
/// Rows (queries, or keys in the dK/dV kernel) each invocation of the forward and the gradient
/// kernels owns: a value staged in workgroup memory is loaded once for all of them (see
/// [`repeat_rows`]). Four up to head dim 64; two above, where four rows' private arrays make lavapipe's first
/// compile of a pipeline much slower. In a browser the dK/dV kernel takes two: it keeps four
/// accumulator arrays per row, and with four rows creating its pipeline kills the GPU process of
/// Chromium's software WebGPU (SwiftShader). Natively four stay (two cost ~20% of the fused
/// forward + backward on lavapipe).
fn rows_per_invocation(stage: Stage, head_dim: usize) -> usize {
    match stage {
        Stage::DkDv if cfg!(target_family = "wasm") => 2,
        _ if head_dim <= 64 => 4,
        _ => 2,
    }
}
/// Rows of a staged tile at most. The tile's loop is unrolled on the host (see [`repeat_tiles`]),
/// and lavapipe's compile time grows with that body: 8 rows (two groups) keep a pipeline's first
/// compile to seconds while the staging (one barrier pair per tile) stays cheap.
const TILE_MAX: usize = 8;
/// Keys (or query rows) the inner loops take at once; tiles are multiples of it.
const GROUP: usize = 4;
/// Elements of one staged tile (`tile · head_dim`): two such f32 tiles take 16 KiB of workgroup
/// memory, half of WebGPU's guaranteed 32 KiB.
const TILE_ELEMS: usize = 2048;

thread_local! {
    static LAUNCHES: Cell<u64> = const { Cell::new(0) };
}

/// How many fused attention forwards this thread has issued (a test hook: the parity tests assert
/// the fused path really ran). Counted where the op is called, so it holds under kernel fusion too
/// (which runs the kernel later, when its stream is flushed).
pub fn fused_launches() -> u64 {
    LAUNCHES.with(|c| c.get())
}

pub(super) fn count_launch() {
    LAUNCHES.with(|c| c.set(c.get() + 1));
}

/// The fused attention op, as models call it (with a real backward under `Autodiff`).
/// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]` (same b, h; the last dim contiguous or not, any
/// strides), `key_padding [b, tk]` (non-zero = masked; read only when `has_padding`) ->
/// `[b, h, tq, dh]` in q's dtype (f32 or f16; the kernels accumulate in f32).
#[backend_extension(Autodiff, Cube)]
pub trait FusedAttentionOps: Backend {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self>;
}

/// The kernels behind [`FusedAttentionOps`], one op per pass so that burn's kernel fusion (where
/// it is on) records each as one opaque operation between the fused blocks around it: the forward
/// `(O, LSE)` and the backward `(dQ, dK, dV)`. The LSE is `[b, h, tq, 1]` f32; the gradients come
/// back in q's dtype, contiguous.
#[backend_extension(Cube, Fusion: cfg(not(target_family = "wasm")))]
pub trait AttentionKernels: Backend {
    #[fusion(meta = forward_meta)]
    fn attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    #[allow(clippy::too_many_arguments)]
    #[fusion(meta = backward_meta)]
    fn attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        o: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        dout: FloatTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// What [`AttentionKernels::attention_forward`] returns, known before it runs (for fusion).
#[cfg(not(target_family = "wasm"))]
fn forward_meta(
    q: &burn::backend::fusion::custom::TensorSpec,
    _k: &burn::backend::fusion::custom::TensorSpec,
    _v: &burn::backend::fusion::custom::TensorSpec,
    _pad: &burn::backend::fusion::custom::TensorSpec,
    _scale: &f32,
    _causal: &bool,
    _has_padding: &bool,
) -> (burn::backend::fusion::custom::TensorSpec, burn::backend::fusion::custom::TensorSpec) {
    use burn::backend::fusion::custom::TensorSpec;
    let mut lse = q.shape.clone();
    let last = lse.num_dims() - 1;
    lse[last] = 1;
    (TensorSpec::new(q.shape.clone(), q.dtype), TensorSpec::new(lse, DType::F32))
}

/// What [`AttentionKernels::attention_backward`] returns: dQ, dK, dV shaped as q, k, v.
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
fn backward_meta(
    q: &burn::backend::fusion::custom::TensorSpec,
    k: &burn::backend::fusion::custom::TensorSpec,
    v: &burn::backend::fusion::custom::TensorSpec,
    _pad: &burn::backend::fusion::custom::TensorSpec,
    _o: &burn::backend::fusion::custom::TensorSpec,
    _lse: &burn::backend::fusion::custom::TensorSpec,
    _dout: &burn::backend::fusion::custom::TensorSpec,
    _scale: &f32,
    _causal: &bool,
    _has_padding: &bool,
) -> (
    burn::backend::fusion::custom::TensorSpec,
    burn::backend::fusion::custom::TensorSpec,
    burn::backend::fusion::custom::TensorSpec,
) {
    use burn::backend::fusion::custom::TensorSpec;
    let spec = |t: &TensorSpec| TensorSpec::new(t.shape.clone(), q.dtype);
    (spec(q), spec(k), spec(v))
}

impl AttentionKernels for CubeBackend {
    fn attention_forward(
        q: CubeTensor,
        k: CubeTensor,
        v: CubeTensor,
        key_padding: CubeTensor,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> (CubeTensor, CubeTensor) {
        let params = Params::new(&q, &k, scale, causal, has_padding);
        forward(&params, q, k, v, key_padding)
    }

    fn attention_backward(
        q: CubeTensor,
        k: CubeTensor,
        v: CubeTensor,
        key_padding: CubeTensor,
        o: CubeTensor,
        lse: CubeTensor,
        dout: CubeTensor,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let params = Params::new(&q, &k, scale, causal, has_padding);
        backward(&params, q, k, v, key_padding, o, lse, dout)
    }
}

/// Inference (no autodiff): the forward kernel alone.
impl FusedAttentionOps for Cube {
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
        Self::attention_forward(q, k, v, key_padding, scale, causal, has_padding).0
    }
}

/// Whether the fused kernels take these shapes: equal batch for q, k and v, k's heads dividing
/// q's (grouped-query attention: each key/value head serves `h / kv` query heads, read in place),
/// equal head dims that are a multiple of 4 (the kernels work on vec4s) up to 256, k and v of equal
/// shape.
pub fn supports(q: [usize; 4], k: [usize; 4], v: [usize; 4]) -> bool {
    q[0] == k[0]
        && k[1] > 0
        && q[1] % k[1] == 0
        && k == v
        && q[3] == k[3]
        && q[3] > 0
        && q[3] % 4 == 0
        && q[3] <= 256
        && q[2] > 0
        && k[2] > 0
}

/// The call's sizes and flags (shared with the CPU kernel, read through `Deref`), the padding
/// flag and the dtype.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    sizes: super::Sizes,
    has_padding: bool,
    dtype: DType,
}

impl std::ops::Deref for Params {
    type Target = super::Sizes;
    fn deref(&self) -> &super::Sizes {
        &self.sizes
    }
}

impl Params {
    fn new(q: &CubeTensor, k: &CubeTensor, scale: f32, causal: bool, has_padding: bool) -> Self {
        Params { sizes: super::Sizes::new(q.meta.shape(), k.meta.shape(), scale, causal), has_padding, dtype: q.dtype }
    }

    fn f16(&self) -> bool {
        self.dtype == DType::F16
    }

    /// The info buffer every kernel reads (see forward.wgsl). `strided` are q, k, v, dO; their
    /// strides go in vec4 units (see [`vec4_layout`]).
    fn info(&self, strided: [&CubeTensor; 4]) -> Vec<u32> {
        let off = self.tk as i64 - self.tq as i64;
        let mut info = vec![
            self.b as u32,
            self.h as u32,
            self.tq as u32,
            self.tk as u32,
            self.causal as u32,
            self.has_padding as u32,
            self.scale.to_bits(),
            (off as i32) as u32,
        ];
        for t in strided {
            let s = t.meta.strides();
            info.extend([s[0] as u32 / 4, s[1] as u32 / 4, s[2] as u32 / 4]);
        }
        info.push((self.h / self.kv) as u32);
        info
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Stage {
    Forward,
    Prep,
    DkDv,
    Dq,
}

/// One specialisation of one of the four WGSL templates.
struct AttentionKernel {
    stage: Stage,
    head_dim: usize,
    f16: bool,
}

impl KernelSource for AttentionKernel {
    fn source(&self) -> SourceTemplate {
        let kernel = match self.stage {
            Stage::Forward => include_str!("forward.wgsl"),
            Stage::Prep => include_str!("backward_prep.wgsl"),
            Stage::DkDv => include_str!("backward_dkdv.wgsl"),
            Stage::Dq => include_str!("backward_dq.wgsl"),
        };
        // One prologue for all four (the f16 switch, the sizes, the shared sentinels).
        let text = &[include_str!("prologue.wgsl"), kernel].concat();
        let tile = tile_rows(self.head_dim);
        let chunks = self.head_dim / 4;
        let per = rows_per_invocation(self.stage, self.head_dim);
        SourceTemplate::new(unroll(&repeat_rows(text, per), chunks, tile, per))
            .register("chunks", chunks.to_string())
            .register("rows", ROWS.to_string())
            .register("threads", (ROWS / per).to_string())
            .register("tile", tile.to_string())
            .register("tile_chunks", (tile * chunks).to_string())
            .register("elem", if self.f16 { "f16" } else { "f32" })
            .register("enable_f16", if self.f16 { "enable f16;" } else { "" })
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.stage, self.head_dim, self.f16))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Expands the host-unrolled lines of a template: `//@unroll <statement>` once per vec4 chunk of
/// the head dim (`#` replaced by `0`, `1`, …) and `//@group <statement>` once per member of a group
/// of 4 keys (`$`); an `//@unroll` line with `$` expands over both. Constant indices keep the
/// per-invocation vec4 arrays in registers.
fn unroll(text: &str, chunks: usize, tile: usize, per: usize) -> String {
    let text = repeat_tiles(text, tile);
    let mut out = String::with_capacity(text.len() * 4);
    for line in text.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let body = line.trim_start();
        let (statement, chunk_range) = if let Some(s) = body.strip_prefix("//@unroll ") {
            (s, chunks)
        } else if let Some(s) = body.strip_prefix("//@group ") {
            (s, 1)
        } else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let members = if statement.contains('$') { GROUP } else { 1 };
        let rows = if statement.contains('~') { per } else { 1 };
        for c in 0..chunk_range {
            for w in 0..rows {
                for g in 0..members {
                    out.push_str(indent);
                    out.push_str(
                        &statement
                            .replace('#', &c.to_string())
                            .replace('~', &w.to_string())
                            .replace('$', &g.to_string()),
                    );
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Expands the per-row parts of a template (each invocation owns `per` rows, see [`rows_per_invocation`]): a `//@rows <line>`
/// once per row, and every block between `//@rows-begin` and `//@rows-end` lines once per row, with
/// `~` replaced by the row's index. (`//@unroll`/`//@group` lines outside these that contain `~`
/// expand over the rows in [`unroll`].)
fn repeat_rows(text: &str, per: usize) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        if body.starts_with("//@rows-begin") {
            block = Some(Vec::new());
            continue;
        }
        if body.starts_with("//@rows-end") {
            let lines = block.take().expect("//@rows-end after //@rows-begin");
            for w in 0..per {
                for l in &lines {
                    out.push_str(&l.replace('~', &w.to_string()));
                    out.push('\n');
                }
            }
            continue;
        }
        if let Some(b) = &mut block {
            b.push(line);
            continue;
        }
        if let Some(stmt) = body.strip_prefix("//@rows ") {
            for w in 0..per {
                out.push_str(indent);
                out.push_str(&stmt.replace('~', &w.to_string()));
                out.push('\n');
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Repeats every block between `//@tile-begin` and `//@tile-end` lines once per group of 4 rows
/// of a staged tile, in a scope that binds `r` to the group's first row as a literal: the tile's
/// workgroup-memory indices become constants. (lavapipe turns a load from a computed address into
/// a gather across invocations even when the address is the same for all of them; a constant one
/// is a single load. Unrolling the tile loop made the kernels several times faster there.)
fn repeat_tiles(text: &str, tile: usize) -> String {
    let mut out = String::with_capacity(text.len() * 4);
    let mut block: Option<(String, Vec<&str>)> = None;
    for line in text.lines() {
        let body = line.trim_start();
        if body.starts_with("//@tile-begin") {
            if block.is_none() {
                block = Some((line[..line.len() - body.len()].to_string(), Vec::new()));
            }
            continue;
        }
        if body.starts_with("//@tile-end") {
            let (indent, lines) = block.take().expect("//@tile-end after //@tile-begin");
            for r in (0..tile).step_by(GROUP) {
                out.push_str(&format!("{indent}{{\n{indent}    let r = {r}u;\n"));
                for l in &lines {
                    out.push_str(l);
                    out.push('\n');
                }
                out.push_str(&format!("{indent}}}\n"));
            }
            continue;
        }
        match &mut block {
            Some((_, lines)) => lines.push(line),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Rows of a staged tile for a head dim: as many as fit [`TILE_ELEMS`], at most [`ROWS`].
fn tile_rows(head_dim: usize) -> usize {
    (TILE_ELEMS / head_dim).clamp(GROUP, TILE_MAX) / GROUP * GROUP
}

fn launch(stage: Stage, p: &Params, groups_x: usize, tensors: &[&CubeTensor], info: &[u32]) {
    let client = &tensors[0].client;
    let info_bytes: Vec<u8> = info.iter().flat_map(|x| x.to_le_bytes()).collect();
    let info_handle = client.create_from_slice(&info_bytes);
    let mut buffers: Vec<_> = tensors.iter().map(|t| t.handle.clone().binding()).collect();
    buffers.push(info_handle.binding());
    let kernel = AttentionKernel { stage, head_dim: p.dh, f16: p.f16() };
    let threads = if stage == Stage::Prep { ROWS } else { ROWS / rows_per_invocation(stage, p.dh) };
    client.launch(
        Box::new(SourceKernel::new(kernel, CubeDim::new_1d(threads as u32))),
        CubeCount::Static(groups_x as u32, (p.b * p.h) as u32, 1),
        KernelArguments::new().with_buffers(buffers),
    );
}

fn empty(like: &CubeTensor, shape: [usize; 4], dtype: DType) -> CubeTensor {
    let shape = Shape::from(shape.to_vec());
    let handle = like.client.empty(shape.num_elements() * dtype.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, dtype)
}

/// The kernels read rows as vec4s of contiguous tensors (dh % 4 == 0, see [`supports`]). A strided
/// view (split heads) is copied: its binding does not reach every row a stride names, and browsers'
/// WebGPU (Dawn) clamps reads outside a binding, where lavapipe reads the memory there.
fn vec4_layout(t: CubeTensor) -> CubeTensor {
    if t.is_contiguous() { t } else { into_contiguous(t) }
}

fn padding_i32(pad: CubeTensor) -> CubeTensor {
    let pad = match pad.dtype {
        DType::I32 => pad,
        _ => <CubeBackend as burn::backend::ops::IntTensorOps<CubeBackend>>::int_cast(pad, IntDType::I32),
    };
    into_contiguous(pad)
}

/// Forward: `(O [b, h, tq, dh], LSE [b, h, tq] f32)`.
pub(crate) fn forward(
    p: &Params,
    q: CubeTensor,
    k: CubeTensor,
    v: CubeTensor,
    pad: CubeTensor,
) -> (CubeTensor, CubeTensor) {
    let (q, k, v) = (vec4_layout(q), vec4_layout(k), vec4_layout(v));
    let pad = padding_i32(pad);
    let o = empty(&q, [p.b, p.h, p.tq, p.dh], p.dtype);
    let lse = empty(&q, [p.b, p.h, p.tq, 1], DType::F32);
    let info = p.info([&q, &k, &v, &q]);
    launch(Stage::Forward, p, p.tq.div_ceil(ROWS), &[&q, &k, &v, &pad, &o, &lse], &info);
    (o, lse)
}

/// Backward: `(dQ, dK, dV)`, contiguous.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    p: &Params,
    q: CubeTensor,
    k: CubeTensor,
    v: CubeTensor,
    pad: CubeTensor,
    o: CubeTensor,
    lse: CubeTensor,
    dout: CubeTensor,
) -> (CubeTensor, CubeTensor, CubeTensor) {
    let (q, k, v) = (vec4_layout(q), vec4_layout(k), vec4_layout(v));
    let dout = vec4_layout(dout);
    let pad = padding_i32(pad);
    let info = p.info([&q, &k, &v, &dout]);
    let n = p.b * p.h * p.tq;
    let aux = empty(&q, [1, 1, 1, 2 * n + p.b * p.tk], DType::F32);
    launch(Stage::Prep, p, p.tq.div_ceil(ROWS), &[&o, &dout, &lse, &pad, &aux], &info);
    // dK, dV per query head; with grouped-query attention each shared head's is then the sum
    // over its group.
    let dk = empty(&q, [p.b, p.h, p.tk, p.dh], p.dtype);
    let dv = empty(&q, [p.b, p.h, p.tk, p.dh], p.dtype);
    launch(Stage::DkDv, p, p.tk.div_ceil(ROWS), &[&q, &k, &v, &dout, &aux, &dk, &dv], &info);
    let dq = empty(&q, [p.b, p.h, p.tq, p.dh], p.dtype);
    launch(Stage::Dq, p, p.tq.div_ceil(ROWS), &[&q, &k, &v, &dout, &aux, &dq], &info);
    (dq, sum_groups(p, dk), sum_groups(p, dv))
}

/// `[b, h, t, dh]` summed over each group of `h / kv` query heads -> `[b, kv, t, dh]`.
fn sum_groups(p: &Params, g: CubeTensor) -> CubeTensor {
    use burn::backend::ops::FloatTensorOps;
    if p.kv == p.h {
        return g;
    }
    let grouped = CubeBackend::float_reshape(g, Shape::from(vec![p.b, p.kv, p.h / p.kv, p.tk, p.dh]));
    let summed = CubeBackend::float_sum_dim(grouped, 2);
    CubeBackend::float_reshape(summed, Shape::from(vec![p.b, p.kv, p.tk, p.dh]))
}
