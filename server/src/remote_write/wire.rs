//! A minimal, zero-copy protobuf wire reader for the remote_write decoders.
//!
//! ```text
//!   &[u8] (one message) ──► Reader::next_field ──► (field number, Value borrowing the buffer)
//!                                                    Varint | Fixed64 | Fixed32 | Bytes(&[u8])
//! ```
//!
//! Length-delimited values are returned as sub-slices of the input, so strings and embedded
//! messages are never copied here; callers decide what to materialize. Every read is
//! bounds-checked and reports a short, static description of what was wrong, never input
//! bytes. Group wire types (3, 4; deprecated since proto2 and never used by remote_write) and
//! field number 0 are rejected.

/// A structural protobuf error: which message was being read and what was wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError {
    pub message: &'static str,
    pub what: &'static str,
}

/// One field value, borrowing length-delimited payloads from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// A fixed32 value; remote_write has no such field, so its bits are not kept.
    Fixed32,
    Bytes(&'a [u8]),
}

/// Reads the fields of one message in order.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which holds exactly one message of type `message` (the fully
    /// qualified protobuf name, used in errors).
    pub fn new(buf: &'a [u8], message: &'static str) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            message,
        }
    }

    /// An error about the message being read.
    pub fn err(&self, what: &'static str) -> WireError {
        WireError {
            message: self.message,
            what,
        }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut x: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(x);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(self.err(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(self.err("invalid field number"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8, "truncated fixed64")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| self.err("length out of range"))?;
                Value::Bytes(self.take(len, "length-delimited field runs past the end")?)
            }
            5 => {
                self.take(4, "truncated fixed32")?;
                Value::Fixed32
            }
            _ => return Err(self.err("unsupported wire type (groups or invalid)")),
        };
        Ok(Some((field as u32, value)))
    }

    /// `v` as a varint field, else a wrong-wire-type error.
    pub fn varint_of(&self, v: Value<'a>) -> Result<u64, WireError> {
        match v {
            Value::Varint(x) => Ok(x),
            _ => Err(self.err("wrong wire type for a varint field")),
        }
    }

    /// `v` as a double field, else a wrong-wire-type error.
    pub fn double_of(&self, v: Value<'a>) -> Result<f64, WireError> {
        match v {
            Value::Fixed64(x) => Ok(f64::from_bits(x)),
            _ => Err(self.err("wrong wire type for a double field")),
        }
    }

    /// `v` as a length-delimited field, else a wrong-wire-type error.
    pub fn bytes_of(&self, v: Value<'a>) -> Result<&'a [u8], WireError> {
        match v {
            Value::Bytes(b) => Ok(b),
            _ => Err(self.err("wrong wire type for a length-delimited field")),
        }
    }

    /// Appends the values of a repeated varint field (packed or not) to `out`.
    pub fn repeated_varint_into(&self, v: Value<'a>, out: &mut Vec<u64>) -> Result<(), WireError> {
        match v {
            Value::Varint(x) => {
                out.push(x);
                Ok(())
            }
            Value::Bytes(b) => {
                let mut r = Reader::new(b, self.message);
                while r.pos < b.len() {
                    out.push(r.varint()?);
                }
                Ok(())
            }
            _ => Err(self.err("wrong wire type for a repeated varint field")),
        }
    }
}
