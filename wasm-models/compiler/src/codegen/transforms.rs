//! Output transforms (sigmoid, softmax, exp, …) and the `exp` / `expf` functions they
//! call, written step for step like `fresco_trees::math` so results match bit for bit.

use super::*;

/// Output transform of one row: group scores at `GRP` to outputs at `O`.
pub(super) fn transform(s: &mut InstructionSink<'_>, e: &Ensemble) {
    use local::*;
    let score = |s: &mut InstructionSink<'_>, g: usize| {
        s.local_get(GRP).f64_load(mem(8 * g as u32, 3));
    };
    let out_addr = |g: usize| 8 * g as u32;
    let groups = e.n_groups;
    match (e.transform, e.precision) {
        (Transform::Identity, _) => {
            for g in 0..groups {
                s.local_get(O);
                score(s, g);
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::SignedSquare, _) => {
            for g in 0..groups {
                s.local_get(O);
                score(s, g);
                s.local_set(X);
                // sign(x) * x * x with sign in {-1, 0, 1}
                s.local_get(X);
                f64c(s, 0.0);
                s.f64_gt().local_get(X);
                f64c(s, 0.0);
                s.f64_lt().i32_sub().f64_convert_i32_s().local_get(X).f64_mul().local_get(X).f64_mul();
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::Sigmoid { scale }, Precision::F64) => {
            for g in 0..groups {
                s.local_get(O);
                f64c(s, 1.0);
                f64c(s, 1.0);
                f64c(s, -scale);
                score(s, g);
                s.f64_mul().call(func::EXP).f64_add().f64_div();
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::Sigmoid { .. }, Precision::F32) => {
            for g in 0..groups {
                s.local_get(O);
                score(s, g);
                s.f32_demote_f64().call(func::SIGMOIDF).f64_promote_f32();
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::Exp, precision) => {
            for g in 0..groups {
                s.local_get(O);
                score(s, g);
                if precision == Precision::F32 {
                    s.f32_demote_f64().call(func::EXPF).f64_promote_f32();
                } else {
                    s.call(func::EXP);
                }
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::Softmax, Precision::F64) => {
            // max: keep the running max unless it is below the next score (std::max order)
            score(s, 0);
            s.local_set(MAX);
            for g in 0..groups {
                // select(max, s, s < max)
                s.local_get(MAX);
                score(s, g);
                score(s, g);
                s.local_get(MAX).f64_lt().select().local_set(MAX);
            }
            f64c(s, 0.0);
            s.local_set(SUM);
            for g in 0..groups {
                s.local_get(O);
                score(s, g);
                s.local_get(MAX).f64_sub().call(func::EXP).local_tee(X).f64_store(mem(out_addr(g), 3));
                s.local_get(SUM).local_get(X).f64_add().local_set(SUM);
            }
            for g in 0..groups {
                s.local_get(O).local_get(O).f64_load(mem(out_addr(g), 3)).local_get(SUM).f64_div();
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::Softmax, Precision::F32) => {
            // XGBoost: wmax = first score, then fmaxf with each (a NaN loses to a number).
            score(s, 0);
            s.f32_demote_f64().local_set(MAX32);
            for g in 1..groups {
                // if s > max || max is NaN { max = s }
                score(s, g);
                s.f32_demote_f64().local_get(MAX32);
                score(s, g);
                s.f32_demote_f64().local_get(MAX32).f32_gt();
                s.local_get(MAX32).local_get(MAX32).f32_ne().i32_or().select().local_set(MAX32);
            }
            f64c(s, 0.0);
            s.local_set(SUM);
            for g in 0..groups {
                s.local_get(O);
                score(s, g);
                s.f32_demote_f64().local_get(MAX32).f32_sub().call(func::EXPF).f64_promote_f32().local_tee(X);
                s.f64_store(mem(out_addr(g), 3));
                s.local_get(SUM).local_get(X).f64_add().local_set(SUM);
            }
            for g in 0..groups {
                s.local_get(O).local_get(O).f64_load(mem(out_addr(g), 3)).f32_demote_f64();
                s.local_get(SUM).f32_demote_f64().f32_div().f64_promote_f32();
                s.f64_store(mem(out_addr(g), 3));
            }
        }
        (Transform::ArgMax, _) => {
            s.i32_const(0).local_set(BEST);
            score(s, 0);
            s.local_set(MAX);
            for g in 1..groups {
                score(s, g);
                s.local_get(MAX).f64_gt().if_(BlockType::Empty);
                s.i32_const(g as i32).local_set(BEST);
                score(s, g);
                s.local_set(MAX).end();
            }
            s.local_get(O).local_get(BEST).f64_convert_i32_s().f64_store(mem(out_addr(0), 3));
        }
    }
}

/// `math::exp`, instruction for instruction.
pub(super) fn exp() -> Function {
    // param 0 x; locals: 1 k (f64), 2 r (f64), 3 p (f64), 4 ki (i64), 5 half (i64)
    let mut f = Function::new([(3, ValType::F64), (2, ValType::I64)]);
    let mut s = f.instructions();
    s.local_get(0).local_get(0).f64_ne().if_(BlockType::Empty).local_get(0).return_().end();
    s.local_get(0);
    f64c(&mut s, math::EXP_OVERFLOW);
    s.f64_gt().if_(BlockType::Empty);
    f64c(&mut s, f64::INFINITY);
    s.return_().end();
    s.local_get(0);
    f64c(&mut s, math::EXP_UNDERFLOW);
    s.f64_lt().if_(BlockType::Empty);
    f64c(&mut s, 0.0);
    s.return_().end();
    s.local_get(0);
    f64c(&mut s, std::f64::consts::LOG2_E);
    s.f64_mul().f64_nearest().local_set(1);
    s.local_get(0).local_get(1);
    f64c(&mut s, math::LN2_HI);
    s.f64_mul().f64_sub().local_get(1);
    f64c(&mut s, math::LN2_LO);
    s.f64_mul().f64_sub().local_set(2);
    f64c(&mut s, math::EXP_POLY[0]);
    s.local_set(3);
    for c in &math::EXP_POLY[1..] {
        s.local_get(3).local_get(2).f64_mul();
        f64c(&mut s, *c);
        s.f64_add().local_set(3);
    }
    for _ in 0..2 {
        s.local_get(3).local_get(2).f64_mul();
        f64c(&mut s, 1.0);
        s.f64_add().local_set(3);
    }
    s.local_get(1).i64_trunc_f64_s().local_tee(4).i64_const(2).i64_div_s().local_set(5);
    // p * 2^half * 2^(k - half)
    s.local_get(3);
    s.local_get(5).i64_const(1023).i64_add().i64_const(52).i64_shl().f64_reinterpret_i64().f64_mul();
    s.local_get(4).local_get(5).i64_sub().i64_const(1023).i64_add().i64_const(52).i64_shl().f64_reinterpret_i64();
    s.f64_mul().end();
    f
}

/// `math::expf` (glibc's algorithm), instruction for instruction.
pub(super) fn expf(map: &Map) -> Function {
    // param 0 x (f32); locals: 1 abstop (i32), 2 ki (i64), 3 z (f64), 4 kd (f64), 5 r (f64)
    let mut f = Function::new([(1, ValType::I32), (1, ValType::I64), (3, ValType::F64)]);
    let mut s = f.instructions();
    s.local_get(0).i32_reinterpret_f32().i32_const(20).i32_shr_u().i32_const(0x7ff).i32_and().local_tee(1);
    s.i32_const((88.0f32.to_bits() >> 20) as i32).i32_ge_u().if_(BlockType::Empty);
    {
        s.local_get(0).i32_reinterpret_f32().i32_const(f32::NEG_INFINITY.to_bits() as i32).i32_eq();
        s.if_(BlockType::Empty);
        f32c(&mut s, 0.0);
        s.return_().end();
        s.local_get(1).i32_const((f32::INFINITY.to_bits() >> 20) as i32).i32_ge_u().if_(BlockType::Empty);
        s.local_get(0).local_get(0).f32_add().return_().end();
        s.local_get(0);
        f32c(&mut s, f32::from_bits(0x42b1_7217));
        s.f32_gt().if_(BlockType::Empty);
        f32c(&mut s, f32::INFINITY);
        s.return_().end();
        s.local_get(0);
        f32c(&mut s, f32::from_bits(0xc2cf_f1b4));
        s.f32_lt().if_(BlockType::Empty);
        f32c(&mut s, 0.0);
        s.return_().end();
    }
    s.end();
    f64c(&mut s, math::EXPF_INV_LN2_N);
    s.local_get(0).f64_promote_f32().f64_mul().local_tee(3);
    f64c(&mut s, math::EXPF_SHIFT);
    s.f64_add().local_tee(4).i64_reinterpret_f64().local_set(2);
    s.local_get(4);
    f64c(&mut s, math::EXPF_SHIFT);
    s.f64_sub().local_set(4);
    s.local_get(3).local_get(4).f64_sub().local_set(5);
    // s = table[ki % 32] + (ki << 47), reinterpreted; kept on the stack for the end
    s.local_get(2).i32_wrap_i64().i32_const(31).i32_and().i32_const(3).i32_shl().i64_load(mem(map.expf, 3));
    s.local_get(2).i64_const(i64::from(52 - math::EXPF_TABLE_BITS)).i64_shl().i64_add().f64_reinterpret_i64();
    // y = (P0*r + P1) * r² + (P2*r + 1)
    f64c(&mut s, math::EXPF_POLY[0]);
    s.local_get(5).f64_mul();
    f64c(&mut s, math::EXPF_POLY[1]);
    s.f64_add().local_get(5).local_get(5).f64_mul().f64_mul();
    f64c(&mut s, math::EXPF_POLY[2]);
    s.local_get(5).f64_mul();
    f64c(&mut s, 1.0);
    s.f64_add().f64_add();
    // y * s: the stack holds s, y
    s.f64_mul().f32_demote_f64().end();
    f
}

/// XGBoost's sigmoid: `1 / (expf(min(-x, 88.7)) + 1 + 1e-16)` in f32.
pub(super) fn sigmoidf() -> Function {
    let mut f = Function::new([]);
    let mut s = f.instructions();
    f32c(&mut s, 1.0);
    // std::min(-x, 88.7f): 88.7 if 88.7 < -x, else -x
    f32c(&mut s, 88.7);
    s.local_get(0).f32_neg();
    f32c(&mut s, 88.7);
    s.local_get(0).f32_neg().f32_lt().select();
    s.call(func::EXPF);
    f32c(&mut s, 1.0);
    s.f32_add();
    f32c(&mut s, 1e-16);
    s.f32_add().f32_div().end();
    f
}
