//! Deterministic jitter: FarmHash `Fingerprint32` (the farmhashmk 32-bit hash) over Go's binary
//! encoding of the nominal UTC time plus a seed, scaled into the jitter window exactly as
//! Temporal's scheduler does, so the same nominal time always gets the same jitter.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn fetch32(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}

fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

fn mur(a: u32, h: u32) -> u32 {
    let a = a.wrapping_mul(C1).rotate_right(17).wrapping_mul(C2);
    let h = (h ^ a).rotate_right(19);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

fn len0to4(s: &[u8]) -> u32 {
    let mut b: u32 = 0;
    let mut c: u32 = 9;
    for &v in s {
        // Bytes are read as signed chars.
        b = b.wrapping_mul(C1).wrapping_add(v as i8 as i32 as u32);
        c ^= b;
    }
    fmix(mur(b, mur(s.len() as u32, c)))
}

fn len5to12(s: &[u8]) -> u32 {
    let n = s.len();
    let mut a = n as u32;
    let mut b = (n as u32).wrapping_mul(5);
    let mut c: u32 = 9;
    let d = b;
    a = a.wrapping_add(fetch32(s, 0));
    b = b.wrapping_add(fetch32(s, n - 4));
    c = c.wrapping_add(fetch32(s, (n >> 1) & 4));
    fmix(mur(c, mur(b, mur(a, d))))
}

fn len13to24(s: &[u8]) -> u32 {
    let n = s.len();
    let mut a = fetch32(s, (n >> 1) - 4);
    let b = fetch32(s, 4);
    let c = fetch32(s, n - 8);
    let d = fetch32(s, n >> 1);
    let e = fetch32(s, 0);
    let f = fetch32(s, n - 4);
    let mut h = d.wrapping_mul(C1).wrapping_add(n as u32);
    a = a.rotate_right(12).wrapping_add(f);
    h = mur(c, h).wrapping_add(a);
    a = a.rotate_right(3).wrapping_add(c);
    h = mur(e, h).wrapping_add(a);
    a = a.wrapping_add(f).rotate_right(12).wrapping_add(d);
    h = mur(b, h).wrapping_add(a);
    fmix(h)
}

/// FarmHash Fingerprint32 (= farmhashmk `Hash32`).
pub(crate) fn fingerprint32(s: &[u8]) -> u32 {
    let n = s.len();
    if n <= 4 {
        return len0to4(s);
    }
    if n <= 12 {
        return len5to12(s);
    }
    if n <= 24 {
        return len13to24(s);
    }
    let scramble = |v: u32| v.wrapping_mul(C1).rotate_right(17).wrapping_mul(C2);
    let step = |h: u32| h.rotate_right(19).wrapping_mul(5).wrapping_add(0xe654_6b64);
    let mut h = n as u32;
    let mut g = C1.wrapping_mul(n as u32);
    let mut f = g;
    let a0 = scramble(fetch32(s, n - 4));
    let a1 = scramble(fetch32(s, n - 8));
    let a2 = scramble(fetch32(s, n - 16));
    let a3 = scramble(fetch32(s, n - 12));
    let a4 = scramble(fetch32(s, n - 20));
    h = step(h ^ a0);
    h = step(h ^ a2);
    g = step(g ^ a1);
    g = step(g ^ a3);
    f = f.wrapping_add(a4).rotate_right(19).wrapping_add(113);
    let mut rest = s;
    while rest.len() > 20 {
        let a = fetch32(rest, 0);
        let b = fetch32(rest, 4);
        let c = fetch32(rest, 8);
        let d = fetch32(rest, 12);
        let e = fetch32(rest, 16);
        h = h.wrapping_add(a);
        g = g.wrapping_add(b);
        f = f.wrapping_add(c);
        h = mur(d, h).wrapping_add(e);
        g = mur(c, g).wrapping_add(a);
        f = mur(b.wrapping_add(e.wrapping_mul(C1)), f).wrapping_add(d);
        f = f.wrapping_add(g);
        g = g.wrapping_add(f);
        rest = &rest[20..];
    }
    g = g.rotate_right(11).wrapping_mul(C1);
    g = g.rotate_right(17).wrapping_mul(C1);
    f = f.rotate_right(11).wrapping_mul(C1);
    f = f.rotate_right(17).wrapping_mul(C1);
    h = step(h.wrapping_add(g));
    h = h.rotate_right(17).wrapping_mul(C1);
    h = step(h.wrapping_add(f));
    h.rotate_right(17).wrapping_mul(C1)
}

/// Seconds from 0001-01-01 to 1970-01-01, Go's internal epoch offset.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// Go's `time.Time.MarshalBinary` for a whole-second UTC time (version 1, zone offset -1).
fn go_marshal_utc(unix_seconds: i64) -> [u8; 15] {
    let mut out = [0u8; 15];
    out[0] = 1;
    out[1..9].copy_from_slice(&(unix_seconds + UNIX_TO_INTERNAL).to_be_bytes());
    // bytes 9..13: nanoseconds = 0
    out[13] = 0xff;
    out[14] = 0xff;
    out
}

/// The jitter in milliseconds, in `[0, max_jitter_ms)` (0 when the window is empty), for the
/// nominal time `nominal_s` (whole unix seconds) and `seed`.
pub(crate) fn jitter_ms(seed: &str, nominal_s: i64, max_jitter_ms: i64) -> i64 {
    if max_jitter_ms <= 0 {
        return 0;
    }
    let mut bytes = go_marshal_utc(nominal_s).to_vec();
    bytes.extend_from_slice(seed.as_bytes());
    let fp = u64::from(fingerprint32(&bytes));
    let ms = (max_jitter_ms as u64).min(u64::from(u32::MAX));
    ((fp * ms) >> 32) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farmhash_vectors() {
        let cases: [(u32, &str); 12] = [
            (0xdc56d17a, ""),
            (0x3c973d4d, "a"),
            (0x98b51e95, "abcd"),
            (0xa3f366ac, "abcde"),
            (0x6f98dc86, "abcdefghi"),
            (0x0d92cafb, "0123456789~01"),
            (0x536d1efd, "0123456789^0123456789"),
            (0x3884aa05, "0123456789&012345678"),
            (0xfa88d020, "0123456789$0123456789!0"),
            (0xc6246b8d, "size:  a.out:  bad magic"),
            (0x322984d9, "Nepal premier won't resign."),
            (0x1723dd7a, "0123456789%0123456789£"),
        ];
        for (want, s) in cases {
            assert_eq!(fingerprint32(s.as_bytes()), want, "{s:?}");
        }
        let long = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.";
        assert_eq!(fingerprint32(long.as_bytes()), 0xd402abf8);
    }

    #[test]
    fn jitter_bounds() {
        assert_eq!(jitter_ms("", 1_000, 0), 0);
        assert_eq!(jitter_ms("", 1_000, -5), 0);
        for t in 0..200 {
            let j = jitter_ms("seed", 1_650_000_000 + t * 60, 1_000);
            assert!((0..1_000).contains(&j));
            assert_eq!(j, jitter_ms("seed", 1_650_000_000 + t * 60, 1_000));
        }
    }
}
