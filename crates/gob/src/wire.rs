//! Gob primitive encodings: unsigned and signed integers, floats, byte strings, and a bounds-checked
//! reader over a message body. Everything above this module is built from these.

use crate::error::{Error, Result};

/// Appends Go's gob unsigned encoding of `v`: one byte below 128, else the negated byte count
/// followed by the minimal big-endian bytes.
#[inline]
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let n = 8 - (v.leading_zeros() / 8) as usize;
    out.push((n as u8).wrapping_neg());
    out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
}

/// Appends gob's signed encoding (`i << 1`, or `(!i << 1) | 1` when negative, then unsigned).
#[inline]
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    write_uint(out, int_to_uint(i));
}

/// Zig-zag mapping used by gob for signed integers.
#[inline]
pub fn int_to_uint(i: i64) -> u64 {
    if i < 0 {
        ((!i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    }
}

/// Inverse of [`int_to_uint`].
#[inline]
pub fn uint_to_int(u: u64) -> i64 {
    if u & 1 == 1 {
        !((u >> 1) as i64)
    } else {
        (u >> 1) as i64
    }
}

/// Appends a float64: its IEEE-754 bits byte-reversed, as an unsigned integer.
#[inline]
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    write_uint(out, f.to_bits().swap_bytes());
}

/// Inverse of the float encoding.
#[inline]
pub fn uint_to_float(u: u64) -> f64 {
    f64::from_bits(u.swap_bytes())
}

/// Appends a byte string or Go string: unsigned length then the raw bytes.
#[inline]
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over borrowed input; every read is bounds-checked and never panics.
#[derive(Debug, Clone)]
pub struct Reader<'de> {
    buf: &'de [u8],
    pos: usize,
}

impl<'de> Reader<'de> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'de [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads one byte.
    #[inline]
    pub fn read_u8(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Error::Truncated { needed: 1 }),
        }
    }

    /// Reads `n` raw bytes.
    #[inline]
    pub fn read_slice(&mut self, n: usize) -> Result<&'de [u8]> {
        let rem = self.remaining();
        if n > rem {
            return Err(Error::Truncated { needed: n - rem });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a gob unsigned integer.
    #[inline]
    pub fn read_uint(&mut self) -> Result<u64> {
        let b = self.read_u8()?;
        if b < 0x80 {
            return Ok(u64::from(b));
        }
        let n = usize::from(b.wrapping_neg());
        if n > 8 {
            return Err(Error::BadUint(b));
        }
        let bytes = self.read_slice(n)?;
        Ok(bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// Reads a gob signed integer.
    #[inline]
    pub fn read_int(&mut self) -> Result<i64> {
        self.read_uint().map(uint_to_int)
    }

    /// Reads a length-prefixed byte string.
    #[inline]
    pub fn read_bytes(&mut self) -> Result<&'de [u8]> {
        let len = self.read_uint()?;
        let rem = self.remaining();
        if len > rem as u64 {
            return Err(Error::Truncated {
                needed: usize::try_from(len).unwrap_or(usize::MAX) - rem,
            });
        }
        self.read_slice(len as usize)
    }

    /// Reads an element count and checks it against the remaining input (`per_elem` bytes
    /// minimum per element), so callers may allocate `count` slots safely.
    #[inline]
    pub fn read_count(&mut self, per_elem: u64) -> Result<usize> {
        let count = self.read_uint()?;
        let rem = self.remaining();
        if count.saturating_mul(per_elem) > rem as u64 {
            return Err(Error::CountTooLarge {
                count,
                remaining: rem,
            });
        }
        Ok(count as usize)
    }
}

/// Tries to read a message header (`uint length`) at the start of `buf` without failing on
/// short input: `Ok(None)` = need more bytes, `Ok(Some((header_len, body_len)))` otherwise.
pub fn peek_uint(buf: &[u8]) -> Result<Option<(usize, u64)>> {
    let Some(&b) = buf.first() else {
        return Ok(None);
    };
    if b < 0x80 {
        return Ok(Some((1, u64::from(b))));
    }
    let n = usize::from(b.wrapping_neg());
    if n > 8 {
        return Err(Error::BadUint(b));
    }
    if buf.len() < 1 + n {
        return Ok(None);
    }
    let v = buf[1..=n]
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    Ok(Some((1 + n, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_uint(v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        write_uint(&mut o, v);
        o
    }
    fn enc_int(v: i64) -> Vec<u8> {
        let mut o = Vec::new();
        write_int(&mut o, v);
        o
    }

    #[test]
    fn spec_examples() {
        assert_eq!(enc_uint(144), [0xff, 0x90]);
        assert_eq!(enc_uint(49153), [0xfe, 0xc0, 0x01]);
        assert_eq!(enc_uint(306), [0xfe, 0x01, 0x32]);
        assert_eq!(enc_int(64), [0xff, 0x80]);
        assert_eq!(enc_int(-64), [0x7f]);
        assert_eq!(enc_int(-65), [0xff, 0x81]);
        assert_eq!(enc_int(4096), [0xfe, 0x20, 0x00]);
        assert_eq!(enc_int(-1), [0x01]);
        assert_eq!(
            enc_uint(u64::MAX),
            [0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn round_trip_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let e = enc_uint(v);
            assert_eq!(Reader::new(&e).read_uint().unwrap(), v);
        }
        for v in [0i64, 1, -1, i64::MIN, i64::MAX, -65, 64] {
            let e = enc_int(v);
            assert_eq!(Reader::new(&e).read_int().unwrap(), v);
        }
        assert_eq!(Reader::new(&[0xf7]).read_uint(), Err(Error::BadUint(0xf7)));
        assert!(Reader::new(&[0xfe, 0x01]).read_uint().is_err());
    }
}
