//! UMAC known answers: the test vectors of RFC 4418 Appendix (key "abcdefghijklmnop", nonce
//! "bcdefghi"), with the published erratum for the 2^25-byte message, plus vectors that cross
//! the L1 chunk and L2 POLY64/POLY128 boundaries with every nonce length.

use revtun_core::umac::Umac;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn message(pattern: &str, length: usize) -> Vec<u8> {
    pattern.bytes().cycle().take(length).collect()
}

fn check(nonce: &str, pattern: &str, length: usize, tag32: &str, tag64: &str, tag128: &str) {
    let m = message(pattern, length);
    for (tag_len, expected) in [(4, tag32), (8, tag64), (16, tag128)] {
        let umac = Umac::new(b"abcdefghijklmnop", tag_len).unwrap();
        let mut out = vec![0u8; tag_len];
        umac.tag(&m, nonce.as_bytes(), &mut out);
        assert_eq!(
            out,
            hex(expected),
            "{tag_len}-byte tag of {length} bytes of {pattern:?}, nonce {nonce:?}"
        );
    }
}

#[test]
fn rfc4418_appendix() {
    check(
        "bcdefghi",
        "a",
        0,
        "113145FB",
        "6E155FAD26900BE1",
        "32fedb100c79ad58f07ff7643cc60465",
    );
    check(
        "bcdefghi",
        "a",
        3,
        "3B91D102",
        "44B5CB542F220104",
        "185e4fe905cba7bd85e4c2dc3d117d8d",
    );
    check(
        "bcdefghi",
        "a",
        1 << 10,
        "599B350B",
        "26BF2F5D60118BD9",
        "7a54abe04af82d60fb298c3cbd195bcb",
    );
    check(
        "bcdefghi",
        "a",
        1 << 15,
        "58DCF532",
        "27F8EF643B0D118D",
        "7b136bd911e4b734286ef2be501f2c3c",
    );
    check(
        "bcdefghi",
        "a",
        1 << 20,
        "DB6364D1",
        "A4477E87E9F55853",
        "f8acfa3ac31cfeea047f7b115b03bef5",
    );
    check(
        "bcdefghi",
        "abc",
        3,
        "ABF3A3A0",
        "D4D7B9F6BD4FBFCF",
        "883c3d4b97a61976ffcf232308cba5a5",
    );
    check(
        "bcdefghi",
        "abc",
        1500,
        "ABEB3C8B",
        "D4CF26DDEFD5C01A",
        "8824a260c53c66a36c9260a62cb83aa1",
    );
}

#[test]
fn rfc4418_erratum_poly128() {
    check(
        "bcdefghi",
        "a",
        1 << 25,
        "85EE5CAE",
        "FACA46F856E9B45F",
        "a621c2457c0012e64f3fdae9e7e1870c",
    );
}

#[test]
fn chunk_boundaries_and_nonce_lengths() {
    let cases: &[(&str, usize, &str, &str, &str)] = &[
        (
            "b",
            0,
            "3a58486b",
            "9e38f67da91a08d9",
            "9e38f67da91a08d9c980f4db4089c877",
        ),
        (
            "bc",
            1,
            "d86b1512",
            "fb0e207971b8e66a",
            "ef406c2ec70d0222f59e860eabb79ed0",
        ),
        (
            "bcd",
            2,
            "1ae6e02d",
            "1ae6e02d73aa9ab2",
            "1ae6e02d73aa9ab2a27fb89e014dc07b",
        ),
        (
            "bcde",
            3,
            "e8c1eb59",
            "c81cf22342e84302",
            "82626d0d575e01038e5e2cc6408216f5",
        ),
        (
            "bcdef",
            4,
            "8950f0d3",
            "aba003e7bd673cc3",
            "aba003e7bd673cc368ba8513cecf2e7c",
        ),
        (
            "bcdefg",
            1020,
            "7412167c",
            "f98828a161bb4ae3",
            "d8b4811f747d588d7a913360960de7cf",
        ),
        (
            "bcdefgh",
            1021,
            "2d54936b",
            "2d54936be5bff72d",
            "2d54936be5bff72d2e1052361163b474",
        ),
        (
            "bcdefghi",
            1022,
            "53ca8dd2",
            "2cee9784556387b3",
            "700513397f8a210a98938d3e7ac3bd88",
        ),
        (
            "bcdefghij",
            1023,
            "26cc58df",
            "24ac4284ca371f42",
            "24ac4284ca371f4280f60bd274633d67",
        ),
        (
            "bcdefghijk",
            1024,
            "3cada45a",
            "64c6a0fd14615a76",
            "abc223116cedd2db5af365e641a97539",
        ),
        (
            "bcdefghijkl",
            1025,
            "93251e18",
            "93251e18e56bbdc4",
            "93251e18e56bbdc457de556f95c59931",
        ),
        (
            "bcdefghijklm",
            1026,
            "24a4c3ab",
            "5d98bd8dfaf16352",
            "c1298672e52386753383a15ed58c0e42",
        ),
        (
            "bcdefghijklmn",
            1027,
            "e7e98945",
            "5b0557c9fdcf661b",
            "5b0557c9fdcf661b1758efc603516ebe",
        ),
        (
            "bcdefghijklmno",
            2046,
            "e12ddc9f",
            "65e85d47447c2277",
            "16bb5183017826ed47c9995c1e5834f3",
        ),
        (
            "bcdefghijklmnop",
            2047,
            "34d723a6",
            "34d723a6cb1676d3",
            "34d723a6cb1676d3547a5064dc5b0a37",
        ),
        (
            "bcdefghijklmnopq",
            2048,
            "21fd8802",
            "3968d5d0af147884",
            "84565620def1e3a614d274e87626f215",
        ),
        (
            "b",
            2049,
            "097e5abd",
            "ad1ee4ab606061c5",
            "ad1ee4ab606061c55e0d2ecfee59940a",
        ),
        (
            "bc",
            2050,
            "a03a7fe9",
            "835f4a8242100055",
            "971106d5f4a5e41dce40a91704cfe1f3",
        ),
        // Around 2^24 bytes, where L2 moves from POLY64 to POLY128.
        (
            "bcd",
            16777212,
            "7ef41cf3",
            "7ef41cf351960aaf",
            "7ef41cf351960aaf729bb19fcee7d8c4",
        ),
        (
            "bcdefgh",
            16777216,
            "42d8562a",
            "42d8562a224a9e9a",
            "42d8562a224a9e9a75c2f85d39462d07",
        ),
        (
            "bcdefghi",
            16777217,
            "486b138d",
            "374f09dbb0b84b88",
            "6ba48d669a51ed3195ebc2aa562ee71b",
        ),
        (
            "bcdefghijk",
            16778240,
            "b9fc4f81",
            "e1974b26fb35f2c6",
            "2e93c8ca83b97a6b1a21082e2a4c540d",
        ),
        (
            "bcdefghijklmno",
            16778244,
            "8034e26f",
            "04f163b7c2d5d849",
            "77a26f7387d1dcd39378a3220652cff7",
        ),
    ];
    for &(nonce, length, t32, t64, t128) in cases {
        check(nonce, "defdefdefdefdef", length, t32, t64, t128);
    }
}
