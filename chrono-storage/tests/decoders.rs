//! Every decoder of stored bytes treats its input as hostile: arbitrary bytes, and valid
//! encodings truncated, extended or with a byte flipped, give an error or a value — never a
//! panic, and never an allocation sized by a length the input merely claims. Valid
//! encodings decode back to what was encoded.

use chrono_storage::Value;
use chrono_storage::encoding::{
    decode_bytes, decode_key, decode_key_value, decode_latest_value, decode_row, decode_u64,
    decode_version_value, encode_key, encode_latest_value, encode_row, encode_version_value,
    latest_key, parse_audit_key, parse_latest_key, parse_version_key, version_key,
};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e300f64..1e300).prop_map(Value::Float),
        "\\PC{0,12}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Blob),
        any::<i64>().prop_map(Value::Timestamp),
    ]
}

/// Runs every decoder on `raw`; each must return.
fn decode_everything(raw: &[u8]) {
    let _ = decode_key(raw);
    let _ = decode_key_value(raw);
    let _ = decode_row(raw);
    let _ = decode_bytes(raw);
    let _ = decode_u64(raw);
    let _ = parse_version_key(raw);
    let _ = parse_latest_key(raw);
    let _ = parse_audit_key(raw);
    let _ = decode_version_value(raw);
    let _ = decode_latest_value(raw);
}

/// A valid encoding changed: cut at `at`, a byte flipped at `at`, or bytes added.
fn mutate(mut raw: Vec<u8>, how: u8, at: usize, extra: &[u8]) -> Vec<u8> {
    let at = if raw.is_empty() { 0 } else { at % raw.len() };
    match how % 3 {
        0 => raw.truncate(at),
        1 if !raw.is_empty() => raw[at] ^= 0x5a,
        _ => raw.extend_from_slice(extra),
    }
    raw
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        decode_everything(&raw);
    }

    #[test]
    fn changed_encodings_never_panic(
        values in proptest::collection::vec(value(), 0..6),
        how in any::<u8>(),
        at in any::<usize>(),
        extra in proptest::collection::vec(any::<u8>(), 0..10),
    ) {
        let row = encode_row(&values);
        let key = encode_key(&values);
        for raw in [
            row.clone(),
            key.clone(),
            version_key(7, &key, 42),
            latest_key(7, &key),
            encode_version_value(2, &row),
            encode_latest_value(42, 2, &row),
        ] {
            decode_everything(&mutate(raw, how, at, &extra));
        }
    }

    #[test]
    fn valid_encodings_decode_to_what_was_encoded(values in proptest::collection::vec(value(), 0..6)) {
        prop_assert_eq!(decode_row(&encode_row(&values)).unwrap(), values.clone());
        prop_assert_eq!(decode_key(&encode_key(&values)).unwrap(), values.clone());
        let key = encode_key(&values);
        prop_assert_eq!(parse_version_key(&version_key(7, &key, 42)).unwrap(), (7, key.clone(), 42));
        prop_assert_eq!(parse_latest_key(&latest_key(7, &key)).unwrap(), (7, key));
    }
}

#[test]
fn a_claimed_huge_length_is_an_error_not_an_allocation() {
    // A row claiming 2^62 columns; a key of nothing but type tags.
    let mut row = vec![0xff; 9];
    row.push(0x3f);
    assert!(decode_row(&row).is_err());
    assert!(decode_key(&[0xff; 64]).is_err());
}
