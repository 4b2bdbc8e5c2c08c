//! The protobuf wire format: varints, field keys and length-delimited payloads, read without panicking.

use super::ProtobufError;

/// Wire type of a varint (int32, int64, bool).
pub const VARINT: u8 = 0;
/// Wire type of a fixed 64-bit value (double).
pub const FIXED64: u8 = 1;
/// Wire type of a length-delimited value (string, bytes, message, packed repeated).
pub const LEN: u8 = 2;
/// Wire type of a fixed 32-bit value.
pub const FIXED32: u8 = 5;

/// A cursor over an encoded message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message being read, for error messages.
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], message: &'static str) -> Self {
        Reader { buf, pos: 0, message }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn truncated(&self, what: &str) -> ProtobufError {
        ProtobufError::Truncated { message: self.message.to_string(), what: what.to_string() }
    }

    /// A base-128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or_else(|| self.truncated("varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtobufError::Malformed {
            message: self.message.to_string(),
            what: "a varint longer than 10 bytes".into(),
        })
    }

    /// A field key: (field number, wire type).
    pub fn key(&mut self) -> Result<(u32, u8), ProtobufError> {
        let k = self.varint()?;
        let number = u32::try_from(k >> 3).ok().filter(|n| *n > 0).ok_or_else(|| ProtobufError::Malformed {
            message: self.message.to_string(),
            what: format!("field number {} out of range", k >> 3),
        })?;
        Ok((number, (k & 7) as u8))
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtobufError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| self.truncated(what))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A length-delimited payload.
    pub fn len_delimited(&mut self) -> Result<&'a [u8], ProtobufError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.truncated("length-delimited field"))?;
        self.bytes(n, "length-delimited field")
    }

    /// A little-endian fixed 64-bit value.
    pub fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let b = self.bytes(8, "fixed64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips a value of the given wire type (for envelope fields knet ignores).
    pub fn skip(&mut self, wire: u8) -> Result<(), ProtobufError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.bytes(8, "fixed64").map(|_| ()),
            LEN => self.len_delimited().map(|_| ()),
            FIXED32 => self.bytes(4, "fixed32").map(|_| ()),
            w => Err(ProtobufError::Malformed { message: self.message.to_string(), what: format!("wire type {w}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_and_keys() {
        let mut r = Reader::new(&[0x96, 0x01, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], "T");
        assert_eq!(r.varint().unwrap(), 150);
        assert_eq!(r.key().unwrap(), (1, LEN));
        assert_eq!(r.varint().unwrap(), 0xffff_ffff);
        assert!(r.is_empty());
        assert!(matches!(r.varint(), Err(ProtobufError::Truncated { .. })));
        let mut r = Reader::new(&[0xff; 11], "T");
        assert!(matches!(r.varint(), Err(ProtobufError::Malformed { .. })));
        let mut r = Reader::new(&[0x00], "T");
        assert!(r.key().is_err(), "field number 0 is not valid");
    }

    #[test]
    fn length_past_the_end_is_an_error() {
        let mut r = Reader::new(&[0x05, b'a', b'b'], "T");
        assert!(matches!(r.len_delimited(), Err(ProtobufError::Truncated { .. })));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "T");
        assert!(r.len_delimited().is_err());
    }
}
