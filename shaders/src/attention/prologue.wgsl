// The prologue every attention kernel starts with (mod.rs puts it before each template): the
// half-precision switch, the specialisation's sizes, and the sentinels the kernels share.
{{ enable_f16 }}
// vec4 chunks of the head dim; rows per workgroup; invocations per workgroup; keys (or queries) per
// staged tile.
const C: u32 = {{ chunks }}u;
const ROWS: u32 = {{ rows }}u;
const THREADS: u32 = {{ threads }}u;
const TILE: u32 = {{ tile }}u;
// A masked score (HF eager attention's f32::MIN, as near as WGSL's f32 literals go).
const NEG: f32 = -3.0e38;
// The LSE the forward stores for a row that sees no key (its output is the mean of V); any LSE at
// or above MASKED_ROW_MIN is that sentinel, never a real log-sum-exp.
const MASKED_ROW: f32 = 3.0e38;
const MASKED_ROW_MIN: f32 = 1.0e38;
