//! Unit tests of sntrup761.rs's private arithmetic: the division-free reductions against `%`
//! and `/` over their domains, the inversions, and Decode. The NIST known answer is in
//! tests/sntrup761.rs.

use super::*;

#[test]
fn freeze_q_equals_the_centred_remainder_over_its_domain() {
    // All of -2²⁶..2²⁶, beyond the largest unreduced products (|x| ≤ 2·p·(q-1)/2 < 2²³),
    // and both ends of the documented domain.
    let ends = [
        -(1 << 28)..-(1 << 28) + (1 << 16),
        i32::MAX - (1 << 12) - (1 << 16)..i32::MAX - (1 << 12),
    ];
    for x in (-(1 << 26)..1 << 26).chain(ends.into_iter().flatten()) {
        assert_eq!(freeze_q(x), (x + Q12).rem_euclid(Q) - Q12, "x = {x}");
    }
}

#[test]
fn freeze3_equals_the_centred_remainder_over_its_domain() {
    let ends = [
        i32::MIN..i32::MIN + (1 << 16),
        (1 << 30) - (1 << 16)..1 << 30,
    ];
    for x in (-(1 << 26)..1 << 26).chain(ends.into_iter().flatten()) {
        let r = x.rem_euclid(3);
        assert_eq!(i32::from(freeze3(x)), r - 3 * (r >> 1), "x = {x}");
    }
}

#[test]
fn fq_recip_inverts_every_nonzero_residue() {
    for a in -Q12..=Q12 {
        if a != 0 {
            assert_eq!(freeze_q(fq_recip(a) * a), 1, "a = {a}");
        }
    }
}

#[test]
fn round_and_encode_divides_every_rounded_coefficient_exactly() {
    // Every coefficient in -(q-1)/2..=(q-1)/2: the encoding of the rounding matches the
    // one computed with `/`.
    let all: Vec<i32> = (-Q12..=Q12).collect();
    for chunk in all.chunks(P) {
        let mut h = chunk.to_vec();
        h.resize(P, 0);
        let rounded: Vec<u32> = h
            .iter()
            .map(|&x| {
                let r = x.rem_euclid(3);
                let nearest = x - (r - 3 * (r >> 1));
                ((nearest + Q12) / 3) as u32
            })
            .collect();
        let mut want = Vec::new();
        encode(&rounded, &[(Q as u32 + 2) / 3; P], &mut want);
        assert_eq!(round_and_encode(&h), want);
    }
}

#[test]
fn inversions_invert_random_elements() {
    // The divstep loops skip the coefficients `divstep_bounds` says cannot matter; a bound
    // below what a step needs gives a wrong inverse for almost every input.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rng = |out: &mut [u8]| {
        for byte in out.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
    };
    let mut one = vec![0i32; P];
    one[0] = 1;
    let (mut inverted_in_r3, mut trials) = (0, 0);
    while inverted_in_r3 < 8 {
        trials += 1;
        let g = small_random(&mut rng);
        if let Some(inverse) = r3_recip(&g) {
            let product: Vec<i32> = r3_mult(&inverse, &g).into_iter().map(i32::from).collect();
            assert_eq!(product, one);
            inverted_in_r3 += 1;
        }
        let f = short_random(&mut rng);
        let times_three: Vec<i32> = rq_mult_small(&rq_recip3(&f), &f)
            .into_iter()
            .map(|x| freeze_q(3 * x))
            .collect();
        assert_eq!(times_three, one);
    }
    assert!(trials < 100, "g is invertible in R/3 for most draws");
}

#[test]
fn decode_inverts_encode_and_reduces_malformed_input() {
    let mut seed = 0x1234_5678u32;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..20 {
        let h: Vec<i32> = (0..P).map(|_| (next() % Q as u32) as i32 - Q12).collect();
        assert_eq!(rq_decode(&rq_encode(&h)), h);
    }
    // All-ones bytes are no valid encoding; every value still comes out below q.
    assert!(rq_decode(&[0xff; PUBLIC_KEY_BYTES])
        .iter()
        .all(|&x| (-Q12..=Q12).contains(&x)));
}
