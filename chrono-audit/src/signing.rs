//! Signed checkpoints: a [`Checkpoint`] body followed by an Ed25519 signature line, in the
//! shape of a C2SP signed note:
//!
//! ```text
//! chronodb audit log
//! 42
//! <base64 root>
//! <last commit timestamp, microseconds>
//!
//! — chronodb <base64(key id (4 bytes) ‖ signature (64 bytes))>
//! ```
//!
//! The key id is the first four bytes of `SHA3-256("chronodb" ‖ 0x0A ‖ 0x01 ‖ public key)`.
//! Keys are stored as the hex of the 32-byte Ed25519 seed.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha3::{Digest, Sha3_256};

use crate::error::{Error, Result};
use crate::trail::Checkpoint;

const KEY_NAME: &str = "chronodb";

fn key_id(public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha3_256::new();
    h.update(KEY_NAME.as_bytes());
    h.update([0x0A, 0x01]);
    h.update(public.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str, what: &str) -> Result<[u8; 32]> {
    let t = text.trim();
    let bad = || Error::InvalidInput(format!("{what} must be 64 hexadecimal digits"));
    if t.len() != 64 || !t.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// A new signing key from the operating system's randomness, as hex.
pub fn generate_key_hex() -> Result<String> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Error::InvalidInput(format!("cannot read randomness: {e}")))?;
    Ok(hex(&seed))
}

/// Reads a signing key (hex seed).
pub fn signing_key(hex_seed: &str) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&unhex32(hex_seed, "a signing key")?))
}

/// Reads a public key (hex).
pub fn verifying_key(hex_key: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_bytes(&unhex32(hex_key, "a public key")?)
        .map_err(|e| Error::InvalidInput(format!("not an Ed25519 public key: {e}")))
}

/// The public key of a signing key, as hex.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex(key.verifying_key().as_bytes())
}

/// The signed note of a checkpoint.
pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> String {
    let body = checkpoint.body();
    let sig = key.sign(body.as_bytes());
    let mut blob = key_id(&key.verifying_key()).to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    format!(
        "{body}\n— {KEY_NAME} {}\n",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Checks a signed note with `public` and returns its checkpoint.
pub fn open(note: &str, public: &VerifyingKey) -> Result<Checkpoint> {
    let bad = |what: &str| Error::InvalidInput(format!("signed checkpoint: {what}"));
    let (body, sigs) = note
        .split_once("\n\n")
        .ok_or_else(|| bad("no signature section"))?;
    let body = format!("{body}\n");
    let want = key_id(public);
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("— ") else {
            continue;
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            continue;
        };
        if name != KEY_NAME || blob.len() != 68 || blob[..4] != want {
            continue;
        }
        let sig = Signature::from_slice(&blob[4..]).map_err(|_| bad("malformed signature"))?;
        public
            .verify(body.as_bytes(), &sig)
            .map_err(|_| bad("the signature does not match (altered checkpoint or wrong key)"))?;
        return Checkpoint::parse_body(&body);
    }
    Err(bad("no signature by this key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoints_open_with_the_right_key_only() {
        let key = signing_key(&generate_key_hex().unwrap()).unwrap();
        let other = signing_key(&generate_key_hex().unwrap()).unwrap();
        let cp = Checkpoint {
            database: chrono_storage::DatabaseId::parse_hex("00112233445566778899aabbccddeeff"),
            size: 42,
            root: [7; 32],
            timestamp: 1_635_724_800_000_000,
        };
        let note = sign(&cp, &key);
        let public = verifying_key(&public_key_hex(&key)).unwrap();
        assert_eq!(open(&note, &public).unwrap(), cp);
        assert!(open(&note, &other.verifying_key()).is_err());
        let altered = note.replacen("42", "43", 1);
        assert!(
            open(&altered, &public)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        assert!(signing_key("xyz").is_err());
    }
}
