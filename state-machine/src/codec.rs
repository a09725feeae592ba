//! A small, explicit binary codec for everything the state machine stores or sends.
//!
//! Why hand-written: the snapshot and the log-entry formats are a compatibility promise
//! across versions, and both must be byte-identical on every node. An explicit
//! field-by-field encoding with a version header makes each change visible in review and
//! testable against saved bytes (tests/compat.rs). Integers are LEB128 varints (signed ones
//! zigzag), strings and sequences are length-prefixed, options and enums carry a tag byte.

use std::collections::VecDeque;

/// Why bytes could not be decoded. Decoding never panics on bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of input while reading {0}")]
    UnexpectedEnd(&'static str),
    #[error("bad magic bytes for {0}")]
    BadMagic(&'static str),
    #[error("unsupported {what} version {found} (this build reads up to {supported})")]
    UnsupportedVersion {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("invalid tag {tag} for {what}")]
    BadTag { what: &'static str, tag: u8 },
    #[error("varint too long or out of range for {0}")]
    BadVarint(&'static str),
    #[error("invalid utf-8 in a string")]
    BadUtf8,
    #[error("length {len} exceeds the remaining {remaining} bytes")]
    BadLength { len: u64, remaining: usize },
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("inconsistent data: {0}")]
    Inconsistent(&'static str),
}

/// Appends encoded values to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
        }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    pub fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub fn u32(&mut self, v: u32) {
        self.u64(u64::from(v));
    }
    pub fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }
    pub fn i32(&mut self, v: i32) {
        self.i64(i64::from(v));
    }
    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.raw(s.as_bytes());
    }
}

/// Reads encoded values from a byte slice, checking every length against what remains.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    /// Fails unless every byte was consumed: trailing garbage means a format mismatch.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
    pub fn raw(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd(what));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.raw(1, what)?[0])
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::BadTag { what, tag }),
        }
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut out: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::BadVarint(what));
            }
            out |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(DecodeError::BadVarint(what))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        u32::try_from(self.u64(what)?).map_err(|_| DecodeError::BadVarint(what))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let z = self.u64(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        i32::try_from(self.i64(what)?).map_err(|_| DecodeError::BadVarint(what))
    }
    /// A sequence length. Every element takes at least one byte, so a length larger than
    /// what remains is corrupt; checking here keeps a bad length from allocating gigabytes.
    pub fn len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.u64(what)?;
        if len > self.remaining() as u64 {
            return Err(DecodeError::BadLength {
                len,
                remaining: self.remaining(),
            });
        }
        Ok(len as usize)
    }
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self.len(what)?;
        let bytes = self.raw(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadUtf8)
    }
}

/// A value with a stable binary form.
pub trait Encode {
    fn encode(&self, w: &mut Writer);
}

/// A value that can be read back from its binary form.
pub trait Decode: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Encode for String {
    fn encode(&self, w: &mut Writer) {
        w.str(self);
    }
}
impl Decode for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string("string")
    }
}
/// Shared text (idempotency keys held by a task and by the index, interned names): the
/// same bytes as a `String`.
impl Encode for std::sync::Arc<str> {
    fn encode(&self, w: &mut Writer) {
        w.str(self);
    }
}
impl Decode for std::sync::Arc<str> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.string("string")?.into())
    }
}
impl Encode for u64 {
    fn encode(&self, w: &mut Writer) {
        w.u64(*self);
    }
}
impl Decode for u64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64("u64")
    }
}
impl Encode for u32 {
    fn encode(&self, w: &mut Writer) {
        w.u32(*self);
    }
}
impl Decode for u32 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u32("u32")
    }
}
impl Encode for i32 {
    fn encode(&self, w: &mut Writer) {
        w.i32(*self);
    }
}
impl Decode for i32 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i32("i32")
    }
}
impl Encode for bool {
    fn encode(&self, w: &mut Writer) {
        w.bool(*self);
    }
}
impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool("bool")
    }
}
impl<T: Encode> Encode for Box<T> {
    fn encode(&self, w: &mut Writer) {
        (**self).encode(w);
    }
}
impl<T: Decode> Decode for Box<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Box::new(T::decode(r)?))
    }
}
impl<T: Encode> Encode for Option<T> {
    fn encode(&self, w: &mut Writer) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.encode(w);
            }
        }
    }
}
impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("option")? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            tag => Err(DecodeError::BadTag {
                what: "option",
                tag,
            }),
        }
    }
}
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, w: &mut Writer) {
        w.len(self.len());
        for v in self {
            v.encode(w);
        }
    }
}
impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.len("vec")?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(T::decode(r)?);
        }
        Ok(out)
    }
}
impl<T: Encode> Encode for VecDeque<T> {
    fn encode(&self, w: &mut Writer) {
        w.len(self.len());
        for v in self {
            v.encode(w);
        }
    }
}
impl<T: Decode> Decode for VecDeque<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Vec::<T>::decode(r)?.into())
    }
}

#[cfg(test)]
/// Encodes one value into a fresh buffer.
pub fn to_bytes<T: Encode>(v: &T) -> Vec<u8> {
    let mut w = Writer::new();
    v.encode(&mut w);
    w.into_bytes()
}

#[cfg(test)]
/// Decodes one value that must fill `bytes` exactly.
pub fn from_bytes<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(from_bytes::<u64>(&to_bytes(&v)).unwrap(), v, "value {v}");
        }
        for v in [0i32, 1, -1, i32::MIN, i32::MAX] {
            assert_eq!(from_bytes::<i32>(&to_bytes(&v)).unwrap(), v, "value {v}");
        }
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        assert!(from_bytes::<u64>(&[0xff; 11]).is_err());
        assert!(from_bytes::<String>(&[0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(from_bytes::<Vec<u64>>(&[200]).is_err());
        assert!(from_bytes::<Option<u64>>(&[7]).is_err());
        assert!(from_bytes::<String>(&[2, 0xc3, 0x28]).is_err());
        assert_eq!(
            from_bytes::<u64>(&[1, 2]),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
