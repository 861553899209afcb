//! The vector building blocks of the CPU kernels: an `exp` that vectorises, lane-wise reductions,
//! and [`multiversion!`], which compiles a kernel body again for AVX-512 and AVX2 + FMA and picks
//! the widest the CPU has at run time (the default x86-64 target stops at SSE2). On wasm32 the
//! same loops become `simd128` instructions when the module is built with `+simd128`.
//!
//! The kernels are plain loops over slices written so that LLVM vectorises them: no calls into
//! libm inside a loop (libm's `expf` was 14–17% of a training step), fixed-width lane arrays for
//! the sums and maxima (a float sum in one accumulator must stay in order and cannot vectorise).

/// Lanes of the reductions: one AVX-512 register, two AVX2 ones, four `simd128` ones.
pub const LANES: usize = 16;

/// Compiles `fn name(args) -> ret { body }` three times: plain, AVX2 + FMA and AVX-512 on
/// x86-64, calling the widest this CPU supports (detected once, then a cached atomic load).
/// The body's helpers must be `#[inline(always)]` so that they are compiled for the same target.
#[macro_export]
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

/// `e^x` in f32 without a libm call, so that loops over it vectorise: Cephes' `expf` (range
/// reduction by `ln 2` in two parts, a degree-5 polynomial, the exponent set in the bits).
/// Relative error below 3e-7 from `-87.3` to `88.3`; `0` below (where f32 becomes subnormal, and
/// for `f32::MIN` and `-inf`, the masked scores); `inf` above `88.37` (the kernels only take the
/// exponential of `x - max ≤ 0`).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const HI: f32 = 88.376_26;
    const LO: f32 = -87.336_55;
    // Round to nearest by adding and removing 1.5·2²³ (no `round`, which is a libm call on wasm
    // and on x86-64 without SSE4.1), and Horner steps as plain products and sums (`mul_add` is a
    // libm call wherever the target has no FMA instruction, wasm included).
    const ROUND: f32 = 12_582_912.0;
    let xc = select_max(select_min(x, HI), LO);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4_f32 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r2 + r + 1.0;
    let scaled = e * f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        scaled
    }
}

/// The largest element (`-inf` for an empty slice); lane-wise, then across the lanes.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            lanes[i] = select_max(lanes[i], c[i]);
        }
    }
    rest.iter().fold(lanes.iter().copied().fold(f32::NEG_INFINITY, select_max), |m, &v| select_max(m, v))
}

/// The larger of `a` and `b` as compares and a select, NaN if either is NaN (so a NaN reaches
/// the loss, where training looks for it). `f32::max` ignores a NaN, and wasm has no instruction
/// for its semantics: there it is a call to libm's `fmaxf` per element (4% of the page's training
/// step) and the loop does not vectorise.
#[inline(always)]
pub fn select_max(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

/// The smaller of `a` and `b`, NaN if either is NaN (see [`select_max`]).
#[inline(always)]
pub fn select_min(a: f32, b: f32) -> f32 {
    if b < a || b.is_nan() { b } else { a }
}

/// `Σ f(x_i)` with [`LANES`] partial sums.
#[inline(always)]
pub fn sum_map(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            lanes[i] += f(c[i]);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

/// `Σ f(x_i, y_i)` with [`LANES`] partial sums (`x` and `y` of equal length).
#[inline(always)]
pub fn sum_zip(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut lanes = [0.0f32; LANES];
    let full = n / LANES * LANES;
    for (cx, cy) in x[..full].chunks_exact(LANES).zip(y[..full].chunks_exact(LANES)) {
        for i in 0..LANES {
            lanes[i] += f(cx[i], cy[i]);
        }
    }
    lanes.iter().sum::<f32>() + x[full..].iter().zip(&y[full..]).map(|(&a, &b)| f(a, b)).sum::<f32>()
}

/// `Σ f(x_i, y_i, z_i)` with [`LANES`] partial sums (slices of equal length).
#[inline(always)]
pub fn sum_zip3(x: &[f32], y: &[f32], z: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let n = x.len().min(y.len()).min(z.len());
    let (x, y, z) = (&x[..n], &y[..n], &z[..n]);
    let mut lanes = [0.0f32; LANES];
    let full = n / LANES * LANES;
    for ((cx, cy), cz) in
        x[..full].chunks_exact(LANES).zip(y[..full].chunks_exact(LANES)).zip(z[..full].chunks_exact(LANES))
    {
        for i in 0..LANES {
            lanes[i] += f(cx[i], cy[i], cz[i]);
        }
    }
    let rest: f32 = (full..n).map(|i| f(x[i], y[i], z[i])).sum();
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    multiversion! {
        fn exp_all(x: &[f32], out: &mut [f32]) {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = exp(v);
            }
        }
    }

    #[test]
    fn exp_matches_libm_over_the_range() {
        let x: Vec<f32> =
            (-100_000..=88_300).map(|i| i as f32 * 1e-3).chain([f32::MIN, f32::NEG_INFINITY, -87.0, 88.0]).collect();
        let mut out = vec![0.0; x.len()];
        exp_all(&x, &mut out);
        for (&v, &e) in x.iter().zip(&out) {
            let want = v.exp();
            if want == 0.0 || want.is_infinite() || want < f32::MIN_POSITIVE {
                assert!(e == want || (e - want).abs() <= f32::MIN_POSITIVE, "exp({v}) = {e}, libm {want}");
            } else {
                let rel = ((e - want) / want).abs();
                assert!(rel < 3e-7, "exp({v}) = {e}, libm {want}, relative error {rel}");
            }
        }
    }

    #[test]
    fn nan_propagates() {
        let mut out = [0.0];
        exp_all(&[f32::NAN], &mut out);
        assert!(out[0].is_nan(), "exp(NaN) = {}", out[0]);
        let mut x: Vec<f32> = (0..40).map(|i| i as f32).collect();
        for at in [0, 17, 39] {
            x[at] = f32::NAN;
            assert!(max(&x).is_nan(), "max with a NaN at {at}");
            x[at] = at as f32;
        }
    }

    #[test]
    fn reductions_match_sequential_ones() {
        let x: Vec<f32> = (0..101).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.25).collect();
        let y: Vec<f32> = (0..101).map(|i| i as f32 * 0.01).collect();
        assert_eq!(max(&x), x.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let s: f32 = x.iter().map(|v| v * v).sum();
        assert!((sum_map(&x, |v| v * v) - s).abs() < 1e-3 * s.abs());
        let d: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!((sum_zip(&x, &y, |a, b| a * b) - d).abs() < 1e-4 * d.abs().max(1.0));
    }
}
