//! Test support: random values that are valid for a message version.

use crate::codec::{RawTaggedField, Uuid};
use bytes::Bytes;

/// A small deterministic generator (xorshift), seeded by proptest.
pub struct Gen {
    state: u64,
    depth: u32,
}

/// Arrays nest; beyond this depth they are generated empty to keep values small.
const ARRAY_DEPTH_MAX: u32 = 3;

impl Gen {
    pub fn new(seed: u64) -> Self {
        Self { state: seed | 1, depth: 0 }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// None one time in four when `nullable`.
    pub fn maybe_null<T>(&mut self, nullable: bool, value: impl FnOnce(&mut Gen) -> T) -> Option<T> {
        if nullable && self.below(4) == 0 {
            None
        } else {
            Some(value(self))
        }
    }

    pub fn unknown_tagged_fields(&mut self) -> Vec<RawTaggedField> {
        // Tags far above any the specs use, ascending, so they stay unknown and ordered.
        let count = self.below(3);
        let mut tag = 1000;
        (0..count)
            .map(|_| {
                tag += 1 + self.below(5) as u32;
                let len = self.below(6) as usize;
                RawTaggedField { tag, data: Bytes::from((0..len).map(|_| self.next_u64() as u8).collect::<Vec<_>>()) }
            })
            .collect()
    }
}

pub trait Arbitrary {
    fn arbitrary(g: &mut Gen, version: i16, flexible: bool) -> Self;
}

macro_rules! arbitrary_int {
    ($($ty:ty),*) => {$(
        impl Arbitrary for $ty {
            fn arbitrary(g: &mut Gen, _version: i16, _flexible: bool) -> Self {
                match g.below(4) {
                    0 => 0 as $ty,
                    1 => <$ty>::MAX,
                    2 => <$ty>::MIN,
                    _ => g.next_u64() as $ty,
                }
            }
        }
    )*};
}

arbitrary_int!(i8, i16, u16, i32, u32, i64);

impl Arbitrary for bool {
    fn arbitrary(g: &mut Gen, _version: i16, _flexible: bool) -> Self {
        g.below(2) == 1
    }
}

impl Arbitrary for f64 {
    fn arbitrary(g: &mut Gen, _version: i16, _flexible: bool) -> Self {
        // Finite values only: NaN is never equal to itself.
        (g.next_u64() as i64 as f64) / 1024.0
    }
}

impl Arbitrary for Uuid {
    fn arbitrary(g: &mut Gen, _version: i16, _flexible: bool) -> Self {
        Uuid::from_u128((u128::from(g.next_u64()) << 64) | u128::from(g.next_u64()))
    }
}

impl Arbitrary for String {
    fn arbitrary(g: &mut Gen, _version: i16, _flexible: bool) -> Self {
        const CHARS: &[char] = &['a', 'z', 'T', '0', '-', '.', '_', ' ', 'é', '☃', '𝄞'];
        let len = g.below(12);
        (0..len).map(|_| CHARS[g.below(CHARS.len() as u64) as usize]).collect()
    }
}

impl Arbitrary for Bytes {
    fn arbitrary(g: &mut Gen, _version: i16, _flexible: bool) -> Self {
        let len = g.below(24) as usize;
        Bytes::from((0..len).map(|_| g.next_u64() as u8).collect::<Vec<_>>())
    }
}

impl<T: Arbitrary> Arbitrary for Vec<T> {
    fn arbitrary(g: &mut Gen, version: i16, flexible: bool) -> Self {
        if g.depth >= ARRAY_DEPTH_MAX {
            return Vec::new();
        }
        g.depth += 1;
        let len = g.below(4);
        let out = (0..len).map(|_| T::arbitrary(g, version, flexible)).collect();
        g.depth -= 1;
        out
    }
}
