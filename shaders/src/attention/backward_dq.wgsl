// Fused attention backward, step 3: dQ (FlashAttention-2 style, no atomics).
//
// One workgroup per (tile of ROWS queries, batch·head); one invocation per query row holding q
// (times `scale`), dO and the dQ accumulator. Tiles of TILE keys and values are staged in
// workgroup memory and P is recomputed from the stored LSE:
//   dS = exp(s - lse)·(dO·v - delta), dQ += dS·k·scale.
// Fully masked rows (LSE sentinel) have dQ = 0: every score of theirs was replaced by a constant.
{{ enable_f16 }}
@group(0) @binding(0) var<storage, read_write> q: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> k: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> v: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> dout: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> dq: array<{{ elem }}>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

const D: u32 = {{ head_dim }}u;
const ROWS: u32 = {{ rows }}u;
const TILE: u32 = {{ tile }}u;

var<workgroup> ks: array<f32, {{ tile_elems }}>;
var<workgroup> vs: array<f32, {{ tile_elems }}>;

@compute @workgroup_size({{ rows }}, 1, 1)
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
    let i = row0 + lid;
    let valid = i < TQ;
    let kb = bi * info[11] + hi * info[12];
    let vb = bi * info[14] + hi * info[15];

    var lse_i = 3.0e38;
    var dl = 0.0;
    if valid {
        lse_i = aux[bh * TQ + i];
        dl = aux[n + bh * TQ + i];
    }
    let row_on = valid && lse_i < 1.0e38;
    var qr: array<f32, D>;
    var dor: array<f32, D>;
    var gq: array<f32, D>;
    let qb = bi * info[8] + hi * info[9] + i * info[10];
    let db = bi * info[17] + hi * info[18] + i * info[19];
    for (var d = 0u; d < D; d++) {
        qr[d] = 0.0;
        dor[d] = 0.0;
        gq[d] = 0.0;
        if valid {
            qr[d] = f32(q[qb + d]) * scale;
            dor[d] = f32(dout[db + d]);
        }
    }

    var kend = TK;
    if causal {
        kend = u32(clamp(i32(row0 + ROWS - 1u) + off + 1, 0, i32(TK)));
    }
    let ntiles = (kend + TILE - 1u) / TILE;
    let row_last = i32(i) + off;
    for (var t = 0u; t < ntiles; t++) {
        let k0 = t * TILE;
        workgroupBarrier();
        for (var e = lid; e < TILE * D; e += ROWS) {
            let j = k0 + e / D;
            let d = e % D;
            var kv = 0.0;
            var vv = 0.0;
            if j < TK {
                kv = f32(k[kb + j * info[13] + d]);
                vv = f32(v[vb + j * info[16] + d]);
            }
            ks[e] = kv;
            vs[e] = vv;
        }
        workgroupBarrier();
        if row_on {
            for (var r = 0u; r < TILE; r++) {
                let j = k0 + r;
                var visible = j < TK;
                if causal && i32(j) > row_last {
                    visible = false;
                }
                if visible && has_pad && aux[2u * n + bi * TK + j] != 0.0 {
                    visible = false;
                }
                if visible {
                    var s = 0.0;
                    var dp = 0.0;
                    for (var d = 0u; d < D; d++) {
                        s += qr[d] * ks[r * D + d];
                        dp += dor[d] * vs[r * D + d];
                    }
                    let ds = exp(s - lse_i) * (dp - dl);
                    for (var d = 0u; d < D; d++) {
                        gq[d] += ds * ks[r * D + d];
                    }
                }
            }
        }
    }

    if valid {
        let ob = (bh * TQ + i) * D;
        for (var d = 0u; d < D; d++) {
            dq[ob + d] = {{ elem }}(gq[d] * scale);
        }
    }
}
