// Fused attention backward, step 3: dQ (FlashAttention-2 style, no atomics).
//
// One workgroup per (tile of ROWS queries, batch·head); one invocation per query row holding q
// (times `scale`), dO and the dQ accumulator (C = dh/4 vec4s each). Tiles of TILE keys and values
// are staged in workgroup memory and P is recomputed from the stored LSE:
//   dS = exp(s - lse)·(dO·v - delta), dQ += dS·k·scale.
// Fully masked rows (LSE sentinel) have dQ = 0: every score of theirs was replaced by a constant.
// `//@unroll` lines: see forward.wgsl.
@group(0) @binding(0) var<storage, read_write> q: array<vec4<{{ elem }}>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<{{ elem }}>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<{{ elem }}>>;
@group(0) @binding(3) var<storage, read_write> dout: array<vec4<{{ elem }}>>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> dq: array<vec4<{{ elem }}>>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

var<workgroup> ks: array<vec4<f32>, {{ tile_chunks }}>;
var<workgroup> vs: array<vec4<f32>, {{ tile_chunks }}>;
var<workgroup> ntiles_wg: u32;

@compute @workgroup_size({{ threads }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let B = info[0];
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
    let n = B * H * TQ;
    let row0 = wid.x * ROWS;
    let kb = bi * info[11] + (hi / info[20]) * info[12];
    let vb = bi * info[14] + (hi / info[20]) * info[15];
    let kst = info[13];
    let vst = info[16];

    // Each invocation owns PER query rows, THREADS apart (see forward.wgsl).
    //@rows-begin
    let i~ = row0 + lid + ~u * THREADS;
    let valid~ = i~ < TQ;
    var lse~ = MASKED_ROW;
    var dl~ = 0.0;
    if valid~ {
        lse~ = aux[bh * TQ + i~];
        dl~ = aux[n + bh * TQ + i~];
    }
    let row_on~ = valid~ && lse~ < MASKED_ROW_MIN;
    var qr~: array<vec4<f32>, C>;
    var dor~: array<vec4<f32>, C>;
    var gq~: array<vec4<f32>, C>;
    let qb~ = bi * info[8] + hi * info[9] + i~ * info[10];
    let db~ = bi * info[17] + hi * info[18] + i~ * info[19];
    if valid~ {
        //@unroll qr~[#] = vec4<f32>(q[qb~ + #]) * scale;
        //@unroll dor~[#] = vec4<f32>(dout[db~ + #]);
    }
    let row_last~ = i32(i~) + off;
    //@rows-end

    var any_row = false;
    //@rows any_row = any_row || row_on~;

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
        if any_row {
            // Keys in groups of 4: q, dO and the dQ accumulators are read once per group, and each
            // staged key and value once for both rows.
            //@tile-begin (the host repeats this block for r = 0, 4, …, TILE - 4: constant
            //@tile-begin workgroup-memory addresses, which lavapipe loads without a per-lane gather)
                //@group let j$ = k0 + r + $u;
                //@group var kvis$ = j$ < TK;
                //@group if kvis$ && has_pad && aux[2u * n + bi * TK + j$] != 0.0 { kvis$ = false; }
                //@rows //@group let vis~$ = row_on~ && kvis$ && !(causal && i32(j$) > row_last~);
                //@group var any$ = false;
                //@rows //@group any$ = any$ || vis~$;
                if any0 || any1 || any2 || any3 {
                    //@rows //@group var s~$ = 0.0; var dp~$ = 0.0;
                    //@unroll s~$ += dot(qr~[#], ks[(r + $u) * C + #]); dp~$ += dot(dor~[#], vs[(r + $u) * C + #]);
                    //@rows //@group var ds~$ = 0.0; if vis~$ { ds~$ = exp(s~$ - lse~) * (dp~$ - dl~); }
                    //@unroll gq~[#] += ds~0 * ks[r * C + #] + ds~1 * ks[(r + 1u) * C + #] + ds~2 * ks[(r + 2u) * C + #] + ds~3 * ks[(r + 3u) * C + #];
                }
            //@tile-end
        }
    }

    //@rows-begin
    if valid~ {
        let ob~ = (bh * TQ + i~) * C;
        //@unroll dq[ob~ + #] = vec4<{{ elem }}>(gq~[#] * scale);
    }
    //@rows-end
}
