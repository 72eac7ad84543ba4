//! Division and reduction by a fixed small modulus with multiplications and shifts only, for the
//! KEMs' arithmetic on secret values (mlkem768.rs, sntrup761.rs).
//!
//! Why not `%` and `/`: on x86_64 rustc turns division by a constant into a multiplication, but
//! on wasm32 it emits `i32.rem_u` / `i64.div_u`, and a WASM engine lowers those to the CPU's
//! divide instruction, whose latency depends on its operands on many CPUs. That leaks secret
//! coefficients through timing (the "KyberSlash" attacks on Kyber's Compress, 2024). Barrett
//! reduction computes the same quotient from a precomputed reciprocal: one 32×64-bit product, a
//! shift, and one correction chosen by a mask rather than a branch.
//!
//! The reductions are checked against `%` and `/` over their whole input domain in the tests
//! below, and test/unit/crypto/kem-constant-time.test.ts checks the compiled WASM and x86_64
//! code of the KEMs for division instructions.

/// A modulus m (2 ≤ m < 2¹⁶) with its Barrett reciprocal ⌊2³²/m⌋.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Modulus {
    modulus: u32,
    reciprocal: u64,
}

impl Modulus {
    /// For a modulus known when compiling: the compiler evaluates the one division, so none is
    /// left in the program.
    pub(crate) const fn new(modulus: u32) -> Self {
        assert!(modulus >= 2 && modulus < 1 << 16);
        Modulus {
            modulus,
            reciprocal: (1u64 << 32) / modulus as u64,
        }
    }

    /// For a public modulus only known at run time (sntrup761's Decode merges moduli level by
    /// level): ⌊2³²/m⌋ by shift-and-subtract long division. It branches on m, which is public,
    /// and costs 32 steps; a division instruction here would be harmless for timing but would
    /// hide a real one from the disassembly check.
    pub(crate) fn at_run_time(modulus: u32) -> Self {
        assert!((2..1 << 16).contains(&modulus));
        let divisor = u64::from(modulus);
        // The dividend 2³² is a one followed by 32 zeros; the leading one alone is below m.
        let (mut remainder, mut reciprocal) = (1u64, 0u64);
        for _ in 0..32 {
            remainder <<= 1;
            reciprocal <<= 1;
            if remainder >= divisor {
                remainder -= divisor;
                reciprocal |= 1;
            }
        }
        Modulus {
            modulus,
            reciprocal,
        }
    }

    pub(crate) fn modulus(self) -> u32 {
        self.modulus
    }

    /// (⌊x/m⌋, x mod m) for any x < 2³², in time independent of x.
    #[inline(always)]
    pub(crate) fn divmod(self, x: u32) -> (u32, u32) {
        // x·⌊2³²/m⌋/2³² falls short of x/m by less than x/2³² < 1, so the estimate is the
        // quotient or one less, and the remainder it leaves is in 0..2m.
        let estimate = ((u64::from(x) * self.reciprocal) >> 32) as u32;
        let remainder = x - estimate * self.modulus;
        // remainder - m is negative (top bit set, as |remainder - m| < 2³¹) when no correction
        // is needed; the mask is all ones when it is.
        let correct = (remainder.wrapping_sub(self.modulus) >> 31) ^ 1;
        let mask = correct.wrapping_neg();
        (estimate + correct, remainder - (mask & self.modulus))
    }

    /// x mod m for any x < 2³².
    #[inline(always)]
    pub(crate) fn reduce(self, x: u32) -> u32 {
        self.divmod(x).1
    }
}

#[cfg(test)]
mod tests {
    use super::Modulus;

    /// The moduli the KEMs divide by: ML-KEM's q, sntrup761's q, 3, and (q+2)/3 of its
    /// rounded encoding.
    const MODULI: [u32; 4] = [3329, 4591, 3, 1531];

    /// Every input below 2²⁴ (all that the KEMs pass: products of two coefficients and sums
    /// of a few of them), then the top of the u32 range where the estimate's error is largest.
    fn check_exhaustively(m: Modulus) {
        let d = m.modulus;
        let top = (u32::MAX - (1 << 20))..=u32::MAX;
        for x in (0..1u32 << 24).chain(top) {
            assert_eq!(m.divmod(x), (x / d, x % d), "x = {x}, m = {d}");
        }
    }

    #[test]
    fn divmod_equals_division_for_every_input_of_the_kem_moduli() {
        for d in MODULI {
            check_exhaustively(Modulus::new(d));
        }
    }

    #[test]
    fn run_time_reciprocal_equals_the_compiled_one_for_every_modulus() {
        for d in 2..1u32 << 16 {
            assert_eq!(
                Modulus::at_run_time(d).reciprocal,
                Modulus::new(d).reciprocal,
                "m = {d}"
            );
        }
    }

    #[test]
    fn divmod_is_exact_at_multiples_and_just_below_them_for_every_modulus() {
        // The estimate falls one short exactly where x is a multiple of m (or close above
        // one); every modulus up to 2¹⁶, at the multiples across the whole u32 range.
        for d in 2..1u32 << 16 {
            let m = Modulus::at_run_time(d);
            let step = (u32::MAX / d / 64).max(1);
            let mut k = 0u32;
            while let Some(multiple) = k.checked_mul(d) {
                for x in [
                    multiple,
                    multiple.wrapping_sub(1),
                    multiple.saturating_add(d - 1),
                ] {
                    assert_eq!(m.divmod(x), (x / d, x % d), "x = {x}, m = {d}");
                }
                k = match k.checked_add(step) {
                    Some(next) => next,
                    None => break,
                };
            }
        }
    }
}
