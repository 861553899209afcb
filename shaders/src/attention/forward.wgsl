// Fused scaled-dot-product attention, forward (FlashAttention-2 style).
//
// One workgroup per (tile of ROWS queries, batch·head); one invocation per query row. The row's
// query (pre-multiplied by `scale`) and its output accumulator live in private memory as C = dh/4
// vec4s; tiles of TILE keys and values are staged in workgroup memory, and an online softmax
// (running max `m`, running sum `l`) folds each key in. The [tq, tk] score matrix is never written.
// Besides the output, the per-row log-sum-exp (in scaled-score units) is stored for the backward.
//
// Lines starting with `//@unroll` are expanded by the host, once per vec4 chunk with `#` replaced by
// its index: constant indices keep the private arrays in registers (a loop over them would index
// them dynamically, which software rasterisers such as lavapipe lower to scratch memory).
//
// Masked scores follow HF eager attention (scores set to f32::MIN before the softmax): a masked key
// contributes exactly 0 to a row that sees at least one key, and a row that sees no key at all gets
// the UNIFORM distribution over all tk keys. Such "fully masked" rows are finished by a second pass
// (mean of V) and get the sentinel LSE `MASKED_ROW`, which the backward kernels recognise.
@group(0) @binding(0) var<storage, read_write> q: array<vec4<{{ elem }}>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<{{ elem }}>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<{{ elem }}>>;
@group(0) @binding(3) var<storage, read_write> pad: array<i32>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<{{ elem }}>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

var<workgroup> ks: array<vec4<f32>, {{ tile_chunks }}>;
var<workgroup> vs: array<vec4<f32>, {{ tile_chunks }}>;
var<workgroup> fm_any: atomic<u32>;
var<workgroup> fm_flag: u32;
var<workgroup> ntiles_wg: u32;
var<workgroup> nt2_wg: u32;

@compute @workgroup_size({{ threads }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // info: b, h, tq, tk, causal, has_pad, scale bits, causal offset (i32 bits), then the
    // (batch, head, time) strides of q, k, v, dO in vec4 units (the last dim is contiguous), then
    // the query heads per key/value head (grouped-query attention: k and v hold H / info[20] heads).
    let H = info[1];
    let TQ = info[2];
    let TK = info[3];
    let causal = info[4] != 0u;
    let has_pad = info[5] != 0u;
    let scale = bitcast<f32>(info[6]);
    let off = bitcast<i32>(info[7]);
    let bh = wid.y;
    let bi = bh / H;
    let hi = bh % H;
    let row0 = wid.x * ROWS;
    let kb = bi * info[11] + (hi / info[20]) * info[12];
    let vb = bi * info[14] + (hi / info[20]) * info[15];
    let kst = info[13];
    let vst = info[16];

    if lid == 0u {
        atomicStore(&fm_any, 0u);
    }

    // Each invocation owns PER query rows, THREADS apart: every staged key and value loaded from
    // workgroup memory serves all of them.
    //@rows-begin
    let i~ = row0 + lid + ~u * THREADS;
    let valid~ = i~ < TQ;
    var qr~: array<vec4<f32>, C>;
    var acc~: array<vec4<f32>, C>;
    let qb~ = bi * info[8] + hi * info[9] + i~ * info[10];
    if valid~ {
        //@unroll qr~[#] = vec4<f32>(q[qb~ + #]) * scale;
    }
    var m~ = NEG;
    var l~ = 0.0;
    //@rows-end

    // Keys this tile of queries can see at all (causal: up to the last row's diagonal).
    var kend = TK;
    if causal {
        kend = u32(clamp(i32(row0 + ROWS - 1u) + off + 1, 0, i32(TK)));
    }
    let ntiles_here = (kend + TILE - 1u) / TILE;
    // Every invocation computes the same bounds, but a value read from a storage buffer is not
    // *provably* uniform, and WebGPU (Tint's uniformity analysis) rejects a barrier inside a loop it
    // bounds; lavapipe's naga does not check. Broadcast the bounds through workgroupUniformLoad.
    if lid == 0u {
        ntiles_wg = ntiles_here;
    }
    let ntiles = workgroupUniformLoad(&ntiles_wg);
    //@rows let row_last~ = i32(i~) + off; // last key this row sees under the causal mask
    workgroupBarrier();

    for (var t = 0u; t < ntiles; t++) {
        let k0 = t * TILE;
        workgroupBarrier();
        for (var e = lid; e < TILE * C; e += THREADS) {
            let j = k0 + e / C;
            let c = e % C;
            var kv = vec4<f32>(0.0);
            var vv = vec4<f32>(0.0);
            if j < TK {
                kv = vec4<f32>(k[kb + j * kst + c]);
                vv = vec4<f32>(v[vb + j * vst + c]);
            }
            ks[e] = kv;
            vs[e] = vv;
        }
        workgroupBarrier();
        if valid0 {
            // Keys in groups of 4: q and the accumulator are read once per group, and the running
            // max is rescaled once per group.
            //@tile-begin (the host repeats this block for r = 0, 4, …, TILE - 4: constant
            //@tile-begin workgroup-memory addresses, which lavapipe loads without a per-lane gather)
                //@group let j$ = k0 + r + $u;
                //@group var kvis$ = j$ < TK;
                //@group if kvis$ && has_pad && pad[bi * TK + j$] != 0 { kvis$ = false; }
                //@rows //@group let vis~$ = valid~ && kvis$ && !(causal && i32(j$) > row_last~);
                //@group var any$ = false;
                //@rows //@group any$ = any$ || vis~$;
                if any0 || any1 || any2 || any3 {
                    //@rows //@group var s~$ = 0.0;
                    //@unroll s~$ += dot(qr~[#], ks[(r + $u) * C + #]);
                    //@rows //@group if !vis~$ { s~$ = NEG; }
                    //@rows let m_new~ = max(max(m~, max(s~0, s~1)), max(s~2, s~3));
                    //@rows var cf~ = 0.0;
                    //@rows if m~ > -1.0e38 { cf~ = exp(m~ - m_new~); }
                    //@rows //@group var p~$ = 0.0; if vis~$ { p~$ = exp(s~$ - m_new~); }
                    //@rows l~ = l~ * cf~ + ((p~0 + p~1) + (p~2 + p~3));
                    //@rows m~ = m_new~;
                    //@unroll acc~[#] = acc~[#] * cf~ + p~0 * vs[r * C + #] + p~1 * vs[(r + 1u) * C + #] + p~2 * vs[(r + 2u) * C + #] + p~3 * vs[(r + 3u) * C + #];
                }
            //@tile-end
        }
    }

    // Rows that saw no key: uniform over all tk keys, i.e. the mean of V.
    //@rows let fully_masked~ = valid~ && !(l~ > 0.0);
    var any_masked = false;
    //@rows any_masked = any_masked || fully_masked~;
    if any_masked {
        atomicOr(&fm_any, 1u);
    }
    workgroupBarrier();
    if lid == 0u {
        fm_flag = atomicLoad(&fm_any);
    }
    let any_fm = workgroupUniformLoad(&fm_flag);
    var nt2_here = 0u;
    if any_fm != 0u {
        nt2_here = (TK + TILE - 1u) / TILE;
    }
    if lid == 0u {
        nt2_wg = nt2_here;
    }
    let nt2 = workgroupUniformLoad(&nt2_wg);
    for (var t = 0u; t < nt2; t++) {
        let k0 = t * TILE;
        workgroupBarrier();
        for (var e = lid; e < TILE * C; e += THREADS) {
            let j = k0 + e / C;
            var vv = vec4<f32>(0.0);
            if j < TK {
                vv = vec4<f32>(v[vb + j * vst + e % C]);
            }
            vs[e] = vv;
        }
        workgroupBarrier();
        //@rows-begin
        if fully_masked~ {
            for (var r = 0u; r < TILE; r++) {
                let rb = r * C;
                //@unroll acc~[#] += vs[rb + #];
            }
        }
        //@rows-end
    }

    //@rows-begin
    if valid~ {
        let ob~ = (bh * TQ + i~) * C;
        var inv~ = 0.0;
        if fully_masked~ {
            inv~ = 1.0 / f32(TK);
            lse[bh * TQ + i~] = MASKED_ROW;
        } else {
            inv~ = 1.0 / l~;
            lse[bh * TQ + i~] = m~ + log(l~);
        }
        //@unroll o[ob~ + #] = vec4<{{ elem }}>(acc~[#] * inv~);
    }
    //@rows-end
}
