//! Bounded line splitting and the input buffer every machine reads from.
//!
//! [`find_line`] looks for the end of the first line in a buffer without ever scanning
//! (or asking the caller to keep) more than `max` bytes: the answer is a complete
//! [`LineStatus::Line`], [`LineStatus::NeedMore`] (incomplete is not an error), or
//! [`LineStatus::TooLong`] once `max` bytes have arrived without a line end.
//!
//! **Line ends.** A line ends at the first LF. The protocols say CRLF, but like Dovecot
//! (and Postfix, Cyrus) we also accept a bare LF as the end of a line: clients that send
//! it exist, and a CR-less line end cannot smuggle anything past us, because the
//! machines only ever interpret bytes before login and the bytes after a line are
//! handed on verbatim. A CR not followed by LF stays part of the line (and the
//! protocol parsers reject it). [`strip_eol`] removes either ending.
//!
//! [`InputBuffer`] is the byte buffer the machines own. It may hold passwords (IMAP
//! literals, SASL responses), so it wipes bytes as they are consumed, wipes the old
//! allocation when it grows and wipes itself when dropped.

use zeroize::{Zeroize, Zeroizing};

/// Where the first line of a buffer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    /// A complete line of this many bytes, line ending (CRLF or LF) included.
    Line(usize),
    /// No line end yet and fewer than `max` bytes: read more.
    NeedMore,
    /// `max` bytes arrived without a line end.
    TooLong,
}

/// Finds the end of the first line of `buf`; a line, ending included, may be at most
/// `max` bytes long.
pub fn find_line(buf: &[u8], max: usize) -> LineStatus {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => LineStatus::Line(i + 1),
        None if buf.len() >= max => LineStatus::TooLong,
        None => LineStatus::NeedMore,
    }
}

/// The line without its ending (CRLF or a bare LF).
pub fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A byte buffer that never leaves copies of its contents behind in freed or unused
/// memory: consumed bytes are overwritten, a reallocation wipes the old block, and
/// dropping wipes the whole capacity.
#[derive(Default)]
pub struct InputBuffer {
    buf: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for InputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InputBuffer({} bytes)", self.buf.len())
    }
}

impl InputBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes. Growing copies into a new allocation and wipes the old one
    /// (instead of letting `Vec` free it with its contents).
    pub fn extend(&mut self, bytes: &[u8]) {
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let mut grown = Vec::with_capacity(needed.next_power_of_two().max(1024));
            grown.extend_from_slice(&self.buf);
            // Replacing drops the old Zeroizing<Vec>, which wipes it.
            self.buf = Zeroizing::new(grown);
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Removes the first `n` bytes (all of them if `n` is larger), wiping them.
    pub fn consume(&mut self, n: usize) {
        let len = self.buf.len();
        let n = n.min(len);
        self.buf.copy_within(n.., 0);
        let new_len = len - n;
        // Bytes past the new end are stale copies (of consumed or moved data).
        self.buf[new_len..].zeroize();
        self.buf.truncate(new_len);
    }

    /// Takes every byte out, leaving the buffer empty (and wiped).
    pub fn take(&mut self) -> Vec<u8> {
        let out = self.buf.to_vec();
        self.clear();
        out
    }

    /// Drops (and wipes) every byte.
    pub fn clear(&mut self) {
        self.buf.zeroize();
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The size of the allocation (bounded like the contents: see the machines'
    /// property tests).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn find_line_table() {
        use LineStatus::*;
        let rows: &[(&[u8], usize, LineStatus)] = &[
            (b"", 10, NeedMore),
            (b"abc", 10, NeedMore),
            (b"abc\r", 10, NeedMore),
            (b"abc\r\n", 10, Line(5)),
            (b"abc\r\nrest", 10, Line(5)),
            (b"abc\n", 10, Line(4)),
            (b"\r\n", 10, Line(2)),
            (b"\n\n", 10, Line(1)),
            (b"a\rb\r\n", 10, Line(5)),
            // exactly max bytes with the ending: fine
            (b"12345678\r\n", 10, Line(10)),
            // the LF is byte 11: too long, whatever follows
            (b"123456789\r\n", 10, TooLong),
            (b"0123456789", 10, TooLong),
            (b"012345678", 10, NeedMore),
            (b"0123456789abc\r\n", 10, TooLong),
        ];
        for (input, max, expected) in rows {
            assert_eq!(
                find_line(input, *max),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn strip_eol_table() {
        let rows: &[(&[u8], &[u8])] = &[
            (b"abc\r\n", b"abc"),
            (b"abc\n", b"abc"),
            (b"abc", b"abc"),
            (b"abc\r", b"abc"),
            (b"\r\n", b""),
            (b"a\r\r\n", b"a\r"),
        ];
        for (input, expected) in rows {
            assert_eq!(strip_eol(input), *expected);
        }
    }

    #[test]
    fn input_buffer_consumes_and_takes() {
        let mut b = InputBuffer::new();
        b.extend(b"hello ");
        b.extend(b"world");
        assert_eq!(b.as_slice(), b"hello world");
        b.consume(6);
        assert_eq!(b.as_slice(), b"world");
        b.consume(100);
        assert!(b.is_empty());
        b.extend(&[7u8; 5000]);
        assert_eq!(b.len(), 5000);
        assert_eq!(b.take(), vec![7u8; 5000]);
        assert!(b.is_empty());
        assert_eq!(format!("{b:?}"), "InputBuffer(0 bytes)");
    }

    proptest! {
        /// However the bytes arrive, the first line found is the same.
        #[test]
        fn find_line_is_chunking_invariant(data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..40), max in 1usize..30) {
            let whole = find_line(&data, max);
            for cut in 0..=data.len() {
                match find_line(&data[..cut], max) {
                    LineStatus::Line(n) => prop_assert_eq!(whole, LineStatus::Line(n)),
                    LineStatus::TooLong => prop_assert_eq!(whole, LineStatus::TooLong),
                    LineStatus::NeedMore => prop_assert!(whole != LineStatus::NeedMore || cut <= data.len()),
                }
            }
        }
    }
}
