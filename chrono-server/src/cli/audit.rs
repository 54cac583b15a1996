//! `chronodb audit …`: verify the trail, report a table's operations, export a signed
//! checkpoint, produce proofs, and check proofs offline with no database.

use std::path::Path;

use base64::Engine as _;
use chrono_audit::{Checkpoint, Hash, merkle, signing};
use chrono_storage::Timestamp;

use crate::ChronoDb;
use crate::error::{Error, Result};

fn b64(h: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

fn unb64(v: &serde_json::Value, what: &str) -> Result<Hash> {
    let bad = || Error::InvalidInput(format!("proof: {what} is not a base64 SHA3-256 hash"));
    let bytes = v
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .filter(|b| b.len() == 32)
        .ok_or_else(bad)?;
    let mut h = [0u8; 32];
    h.copy_from_slice(&bytes);
    Ok(h)
}

/// A time given as Unix seconds (fractions allowed) or ISO-8601, in microseconds: read the
/// way `AS OF TIMESTAMP` reads it.
pub fn parse_time(text: &str) -> Result<u64> {
    Ok(Timestamp::parse(text)?.as_micros())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
}

/// `audit verify`: prints the report; `Ok(false)` when verification failed.
pub fn verify(db: &ChronoDb, checkpoint: Option<(&Path, &str)>) -> Result<bool> {
    let trail = db.audit_trail()?;
    let report = match checkpoint {
        Some((file, public)) => {
            let cp = signing::open(&read(file)?, &signing::verifying_key(public)?)?;
            trail.verify_against(&cp)?
        }
        None => trail.verify()?,
    };
    println!(
        "database {}: checked {} transactions, {} entries, {} row versions in {:.1} ms",
        trail.database(),
        report.transactions,
        report.entries,
        report.versions,
        report.elapsed.as_secs_f64() * 1e3
    );
    match &report.failure {
        None => {
            println!("audit trail OK");
            Ok(true)
        }
        Some(f) => {
            println!("FAILED: {:?} at {}", f.kind, f.position);
            Ok(false)
        }
    }
}

/// `audit report`.
pub fn report(db: &ChronoDb, table: &str, from: u64, to: u64, json: bool) -> Result<()> {
    let entries = db.audit_trail()?.generate_audit_report(table, from, to)?;
    if entries.is_empty()
        && !db
            .database()
            .tables()?
            .iter()
            .any(|t| t.name.eq_ignore_ascii_case(table))
    {
        return Err(chrono_sql::Error::NotFound(format!(
            "no table {table}, and no audited change of a table of that name"
        ))
        .into());
    }
    print_entries(entries, json);
    Ok(())
}

/// Prints audit entries: a line each, or a JSON object per line.
pub fn print_entries(entries: Vec<chrono_audit::EntryRecord>, json: bool) {
    for e in entries {
        let hash = |h: &Option<Hash>| h.as_ref().map(b64);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "time": Timestamp::from_micros(e.commit_ts).seconds(),
                    "transaction": e.tx,
                    "entry": e.seq,
                    "table": e.table,
                    "operation": e.op.as_str(),
                    "key": base64::engine::general_purpose::STANDARD.encode(&e.key),
                    "principal": e.principal,
                    "before_sha3": hash(&e.before),
                    "after_sha3": hash(&e.after),
                    "statements_sha3": b64(&e.statements),
                })
            );
        } else {
            let key = chrono_storage::encoding::decode_key(&e.key)
                .map(|vals| {
                    vals.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|_| format!("{:02x?}", e.key));
            println!(
                "{}  tx {:>6}  {:<6}  {}({key})  by {}  after {}",
                Timestamp::from_micros(e.commit_ts),
                e.tx,
                e.op.as_str(),
                e.table,
                e.principal.as_deref().unwrap_or("-"),
                hash(&e.after).unwrap_or_else(|| "-".into())
            );
        }
    }
}

/// `audit checkpoint`: the signed checkpoint text (to `out`, or printed).
pub fn checkpoint(db: &ChronoDb, key_hex: &str, out: Option<&Path>) -> Result<()> {
    let key = signing::signing_key(key_hex)?;
    let note = signing::sign(&db.audit_trail()?.checkpoint(), &key);
    match out {
        Some(path) => {
            write(path, &note)?;
            eprintln!(
                "checkpoint written to {}; public key {}",
                path.display(),
                signing::public_key_hex(&key)
            );
        }
        None => print!("{note}"),
    }
    Ok(())
}

/// `audit proof`: an inclusion proof for transaction `tx` (in the log of `to_size`, or the
/// whole log), or a consistency proof between two sizes, as JSON.
pub fn proof(
    db: &ChronoDb,
    tx: Option<u64>,
    from_size: Option<u64>,
    to_size: Option<u64>,
) -> Result<String> {
    let trail = db.audit_trail()?;
    let range = from_size.zip(to_size);
    let v = match (tx, range) {
        (Some(seq), None) => {
            let p = trail.inclusion_proof(seq, to_size)?;
            serde_json::json!({
                "type": "inclusion",
                "database": trail.database().to_string(),
                "index": p.index,
                "size": p.size,
                "tx_hash": b64(&p.tx_hash),
                "path": p.path.iter().map(b64).collect::<Vec<_>>(),
                "root": b64(&p.root),
            })
        }
        (None, Some((old, new))) => serde_json::json!({
            "type": "consistency",
            "database": trail.database().to_string(),
            "old_size": old,
            "new_size": new,
            "old_root": b64(&trail.root_at(old)?),
            "new_root": b64(&trail.root_at(new)?),
            "path": trail.consistency_proof(old, new)?.iter().map(b64).collect::<Vec<_>>(),
        }),
        _ => {
            return Err(Error::InvalidInput(
                "give --tx N, or --from-size N1 --to-size N2".into(),
            ));
        }
    };
    Ok(format!("{v}\n"))
}

/// `audit verify-proof`: checks a proof file, and optionally that it matches a signed
/// checkpoint. Needs no database.
pub fn verify_proof(proof_text: &str, checkpoint: Option<(&str, &str)>) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(proof_text)
        .map_err(|e| Error::InvalidInput(format!("proof is not JSON: {e}")))?;
    let num = |k: &str| {
        v[k].as_u64()
            .ok_or_else(|| Error::InvalidInput(format!("proof: {k} missing")))
    };
    let path: Vec<Hash> = v["path"]
        .as_array()
        .ok_or_else(|| Error::InvalidInput("proof: path missing".into()))?
        .iter()
        .map(|h| unb64(h, "a path element"))
        .collect::<Result<_>>()?;
    let cp: Option<Checkpoint> = match checkpoint {
        Some((note, public)) => Some(signing::open(note, &signing::verifying_key(public)?)?),
        None => None,
    };
    // With a checkpoint, the proof must be anchored to it: of the checkpoint's database,
    // for the checkpoint's log size, with the checkpoint's root. A proof for another size
    // (or another database) proves nothing about it.
    let anchored = |sizes: &[(u64, &Hash)]| -> Result<()> {
        let Some(c) = &cp else {
            return Ok(());
        };
        if let (Some(theirs), Some(ours)) = (c.database, v["database"].as_str())
            && theirs.to_string() != ours.to_ascii_lowercase()
        {
            return Err(Error::InvalidInput(format!(
                "the proof is of database {ours}, the checkpoint of database {theirs}"
            )));
        }
        match sizes.iter().find(|(size, _)| *size == c.size) {
            Some((_, root)) if **root == c.root => Ok(()),
            Some(_) => Err(Error::InvalidInput(
                "the proof's root is not the checkpoint's root".into(),
            )),
            None => Err(Error::InvalidInput(format!(
                "the proof is not anchored to the checkpoint: it is for a log of {}, the \
                 checkpoint's log has {} transactions (make the proof for that size: \
                 `audit proof --tx N --to-size {}`, or `--from-size {} --to-size M`)",
                sizes
                    .iter()
                    .map(|(s, _)| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                c.size,
                c.size,
                c.size
            ))),
        }
    };
    match v["type"].as_str() {
        Some("inclusion") => {
            let (index, size) = (num("index")?, num("size")?);
            let (tx, root) = (unb64(&v["tx_hash"], "tx_hash")?, unb64(&v["root"], "root")?);
            if !merkle::verify_inclusion(index, size, &merkle::leaf_hash(&tx), &path, &root) {
                return Err(Error::InvalidInput(
                    "inclusion proof does NOT verify".into(),
                ));
            }
            anchored(&[(size, &root)])?;
            println!(
                "inclusion proof OK: transaction {} is in the log of {size}",
                index + 1
            );
        }
        Some("consistency") => {
            let (old, new) = (num("old_size")?, num("new_size")?);
            let (old_root, new_root) = (
                unb64(&v["old_root"], "old_root")?,
                unb64(&v["new_root"], "new_root")?,
            );
            if !merkle::verify_consistency(old, new, &old_root, &new_root, &path) {
                return Err(Error::InvalidInput(
                    "consistency proof does NOT verify".into(),
                ));
            }
            anchored(&[(old, &old_root), (new, &new_root)])?;
            println!("consistency proof OK: the log of {old} is a prefix of the log of {new}");
        }
        _ => return Err(Error::InvalidInput("proof: unknown type".into())),
    }
    if let Some(c) = cp {
        println!(
            "checkpoint signature OK: database {}, size {}, root {}",
            c.database
                .map_or_else(|| "(not named)".to_string(), |d| d.to_string()),
            c.size,
            b64(&c.root)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b64_of(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A proof file is hostile input: any text, or a proof of any sizes, indexes and
        /// path elements, is an error or a verdict — never a panic or an endless loop.
        #[test]
        fn any_proof_text_is_an_error_or_a_verdict(
            text in "\\PC{0,300}",
            index in any::<u64>(),
            size in any::<u64>(),
            old in any::<u64>(),
            path in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..70),
        ) {
            let _ = verify_proof(&text, None);
            let path: Vec<String> = path.iter().map(|p| b64_of(p)).collect();
            let inclusion = serde_json::json!({
                "type": "inclusion", "index": index, "size": size,
                "tx_hash": b64_of(&[7u8; 32]), "root": b64_of(&[9u8; 32]), "path": path,
            });
            prop_assert!(verify_proof(&inclusion.to_string(), None).is_err());
            let consistency = serde_json::json!({
                "type": "consistency", "old_size": old, "new_size": size,
                "old_root": b64_of(&[1u8; 32]), "new_root": b64_of(&[2u8; 32]), "path": path,
            });
            let _ = verify_proof(&consistency.to_string(), None);
        }
    }
}
