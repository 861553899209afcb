// Fused attention backward, step 2: dK and dV, without atomics (FlashAttention-2 style).
//
// One workgroup per (tile of ROWS keys, batch·head); one invocation per key, holding its k (times
// `scale`), v and the dK, dV accumulators in private memory (C = dh/4 vec4s each). Tiles of TILE
// query rows (q, dO, lse, delta) are staged in workgroup memory; P is recomputed from the LSE:
//   p = exp(s - lse_i), dV += p·dO_i, dS = p·(dO_i·v - delta_i), dK += dS·q_i·scale.
// Fully masked query rows (LSE sentinel) put 1/tk on every key: they add dO_i/tk to every dV row
// (a last pass), and nothing to dK. `//@unroll` lines: see forward.wgsl.
@group(0) @binding(0) var<storage, read_write> q: array<vec4<{{ elem }}>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<{{ elem }}>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<{{ elem }}>>;
@group(0) @binding(3) var<storage, read_write> dout: array<vec4<{{ elem }}>>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> dk: array<vec4<{{ elem }}>>;
@group(0) @binding(6) var<storage, read_write> dv: array<vec4<{{ elem }}>>;
@group(0) @binding(7) var<storage, read_write> info: array<u32>;

var<workgroup> qs: array<vec4<f32>, {{ tile_chunks }}>;
var<workgroup> dos: array<vec4<f32>, {{ tile_chunks }}>;
var<workgroup> ls: array<f32, TILE>;
var<workgroup> dls: array<f32, TILE>;
var<workgroup> span_wg: vec2<u32>;

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
    let k0 = wid.x * ROWS;
    let qb = bi * info[8] + hi * info[9];
    let qst = info[10];
    let db = bi * info[17] + hi * info[18];
    let dst = info[19];

    // Each invocation owns PER keys, THREADS apart: every staged query row serves all of them.
    //@rows-begin
    let j~ = k0 + lid + ~u * THREADS;
    let valid~ = j~ < TK;
    var kr~: array<vec4<f32>, C>;
    var vr~: array<vec4<f32>, C>;
    var gk~: array<vec4<f32>, C>;
    var gv~: array<vec4<f32>, C>;
    let kb~ = bi * info[11] + (hi / info[20]) * info[12] + j~ * info[13];
    let vb~ = bi * info[14] + (hi / info[20]) * info[15] + j~ * info[16];
    if valid~ {
        //@unroll kr~[#] = vec4<f32>(k[kb~ + #]) * scale;
        //@unroll vr~[#] = vec4<f32>(v[vb~ + #]);
    }
    var key_visible~ = valid~;
    if valid~ && has_pad && aux[2u * n + bi * TK + j~] != 0.0 {
        key_visible~ = false;
    }
    //@rows-end

    var any_key = false;
    //@rows any_key = any_key || key_visible~;

    // Causal: the first query row that sees key k0 is k0 - off.
    var i_start = 0u;
    if causal {
        i_start = u32(clamp(i32(k0) - off, 0, i32(TQ)));
    }
    // Tiles of query rows t0 .. nt.
    // Every invocation computes the same bounds, but a value read from a storage buffer is not
    // *provably* uniform, and WebGPU (Tint's uniformity analysis) rejects a barrier inside a loop it
    // bounds; lavapipe's naga does not check. Broadcast the bounds through workgroupUniformLoad.
    if lid == 0u {
        span_wg = vec2<u32>(i_start / TILE, (TQ + TILE - 1u) / TILE);
    }
    let span = workgroupUniformLoad(&span_wg);
    for (var t = span.x; t < span.y; t++) {
        let i0 = t * TILE;
        workgroupBarrier();
        for (var e = lid; e < TILE * C; e += THREADS) {
            let i = i0 + e / C;
            let c = e % C;
            var qv = vec4<f32>(0.0);
            var dv_ = vec4<f32>(0.0);
            if i < TQ {
                qv = vec4<f32>(q[qb + i * qst + c]);
                dv_ = vec4<f32>(dout[db + i * dst + c]);
            }
            qs[e] = qv;
            dos[e] = dv_;
        }
        for (var r = lid; r < TILE; r += THREADS) {
            let i = i0 + r;
            var lv = MASKED_ROW;
            var dl = 0.0;
            if i < TQ {
                lv = aux[bh * TQ + i];
                dl = aux[n + bh * TQ + i];
            }
            ls[r] = lv;
            dls[r] = dl;
        }
        workgroupBarrier();
        if any_key {
            // Query rows in groups of 4: k, v and the dK, dV accumulators are read once per group,
            // and each staged query row once for both keys.
            //@tile-begin (the host repeats this block for r = 0, 4, …, TILE - 4: constant
            //@tile-begin workgroup-memory addresses, which lavapipe loads without a per-lane gather)
                //@group let qi$ = i0 + r + $u;
                //@group let lse$ = ls[r + $u]; let dl$ = dls[r + $u];
                //@rows //@group let vis~$ = key_visible~ && lse$ < MASKED_ROW_MIN && !(causal && i32(j~) > i32(qi$) + off);
                //@group var any$ = false;
                //@rows //@group any$ = any$ || vis~$;
                if any0 || any1 || any2 || any3 {
                    //@rows //@group var s~$ = 0.0; var dp~$ = 0.0;
                    //@unroll s~$ += dot(qs[(r + $u) * C + #], kr~[#]); dp~$ += dot(dos[(r + $u) * C + #], vr~[#]);
                    //@rows //@group var p~$ = 0.0; var ds~$ = 0.0; if vis~$ { p~$ = exp(s~$ - lse$); ds~$ = p~$ * (dp~$ - dl$); }
                    //@unroll gv~[#] += p~0 * dos[r * C + #] + p~1 * dos[(r + 1u) * C + #] + p~2 * dos[(r + 2u) * C + #] + p~3 * dos[(r + 3u) * C + #];
                    //@unroll gk~[#] += ds~0 * qs[r * C + #] + ds~1 * qs[(r + 1u) * C + #] + ds~2 * qs[(r + 2u) * C + #] + ds~3 * qs[(r + 3u) * C + #];
                }
            //@tile-end
        }
    }

    //@rows-begin
    if valid~ {
        // Fully masked rows exist only with padding or with queries before the first key.
        if has_pad || (causal && off < 0) {
            let inv = 1.0 / f32(TK);
            for (var i = 0u; i < TQ; i++) {
                if aux[bh * TQ + i] >= MASKED_ROW_MIN {
                    let rb = db + i * dst;
                    //@unroll gv~[#] += vec4<f32>(dout[rb + #]) * inv;
                }
            }
        }
        let ob~ = (bh * TK + j~) * C;
        //@unroll dk[ob~ + #] = vec4<{{ elem }}>(gk~[#] * scale);
        //@unroll dv[ob~ + #] = vec4<{{ elem }}>(gv~[#]);
    }
    //@rows-end
}
