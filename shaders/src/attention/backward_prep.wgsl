// Fused attention backward, step 1: per query row, `delta = rowsum(dO ∘ O)` (FlashAttention-2's D).
// It also gathers what the two gradient kernels read into one `aux` buffer, which keeps those at
// eight storage bindings (WebGPU's default limit): aux = [lse (bh·tq), delta (bh·tq), key padding
// as f32 (b·tk)].
@group(0) @binding(0) var<storage, read_write> o: array<vec4<{{ elem }}>>;
@group(0) @binding(1) var<storage, read_write> dout: array<vec4<{{ elem }}>>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> pad: array<i32>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ rows }}, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let B = info[0];
    let H = info[1];
    let TQ = info[2];
    let TK = info[3];
    let has_pad = info[5] != 0u;
    let bh = wid.y;
    let bi = bh / H;
    let hi = bh % H;
    let n = B * H * TQ;
    let i = wid.x * ROWS + lid;
    if i < TQ {
        let ob = (bh * TQ + i) * C;
        let db = bi * info[17] + hi * info[18] + i * info[19];
        var acc = 0.0;
        //@unroll acc += dot(vec4<f32>(o[ob + #]), vec4<f32>(dout[db + #]));
        aux[bh * TQ + i] = lse[bh * TQ + i];
        aux[n + bh * TQ + i] = acc;
    }
    if hi == 0u {
        for (var j = wid.x * ROWS + lid; j < TK; j += ROWS * nwg.x) {
            var p = 0.0;
            if has_pad && pad[bi * TK + j] != 0 {
                p = 1.0;
            }
            aux[2u * n + bi * TK + j] = p;
        }
    }
}
