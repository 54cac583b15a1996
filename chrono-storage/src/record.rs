//! The one binary form of stored records that are not rows or keys: statistics, learned
//! models and other metadata. A record is one format byte, then the value in
//! [postcard](https://docs.rs/postcard)'s documented, stable wire format (serde; varint
//! integers, length-prefixed sequences).
//!
//! Rows and keys keep [`crate::encoding`]'s layout (order-preserving keys, compact rows);
//! everything else that is stored goes through [`encode`] and [`decode`], so there is one
//! codec to get right. The format byte belongs to the record's owner: it bumps it when the
//! record's shape changes, and [`decode`] of another format is an error (the owner decides
//! whether that means "re-derive it" or "refuse").
//!
//! Stored bytes are hostile: decoding checks every length against the bytes left before it
//! allocates (sequences reserve at most a bounded amount up front), so arbitrary input is an
//! error, never a panic or a huge allocation.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// `value` as a stored record of format `format`.
pub fn encode<T: Serialize>(format: u8, value: &T) -> Vec<u8> {
    let mut out = vec![format];
    // Serializing into a Vec fails only for types serde cannot express (maps with
    // non-string keys are fine in postcard; unsized sequences are not used here).
    postcard::to_io(value, &mut out).expect("a record serializes into memory");
    out
}

/// The value of a record of format `format`; `what` names the record in the error.
pub fn decode<T: DeserializeOwned>(format: u8, what: &str, raw: &[u8]) -> Result<T> {
    match raw.split_first() {
        Some((&f, rest)) if f == format => {
            let (value, left) = postcard::take_from_bytes(rest)
                .map_err(|e| Error::Corruption(format!("{what}: {e}")))?;
            if !left.is_empty() {
                return Err(Error::Corruption(format!(
                    "{what}: {} bytes after the record",
                    left.len()
                )));
            }
            Ok(value)
        }
        Some((&f, _)) => Err(Error::Corruption(format!(
            "{what}: stored in format {f}, this build reads format {format}"
        ))),
        None => Err(Error::Corruption(format!("{what}: empty record"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;
    use proptest::prelude::*;

    #[test]
    fn a_record_reads_back_and_other_formats_are_refused() {
        let v = vec![Value::Int(-3), Value::Text("é".into()), Value::Null];
        let raw = encode(7, &v);
        assert_eq!(decode::<Vec<Value>>(7, "test", &raw).unwrap(), v);
        let e = decode::<Vec<Value>>(8, "test", &raw).unwrap_err();
        assert!(e.to_string().contains("format 7"), "{e}");
        assert!(decode::<Vec<Value>>(7, "test", &[]).is_err());
        let mut longer = raw.clone();
        longer.push(0);
        assert!(decode::<Vec<Value>>(7, "test", &longer).is_err());
    }

    #[test]
    fn a_huge_stored_length_is_an_error_not_an_allocation() {
        // A sequence claiming 2^60 elements in a few bytes.
        let mut raw = vec![1u8];
        raw.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode::<Vec<Vec<Value>>>(1, "test", &raw).is_err());
        assert!(decode::<String>(1, "test", &raw).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<Vec<(Value, u64, Vec<String>)>>(raw.first().copied().unwrap_or(0), "test", &raw);
        }
    }
}
