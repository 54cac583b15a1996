//! `chronodb audit …` end to end, including an offline proof check with no database and a
//! tampered row caught by `audit verify`.

use std::process::Command;
use std::sync::Arc;

fn chronodb(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronodb"))
        .args(args)
        .output()
        .expect("chronodb runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_report_checkpoint_and_offline_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let sql = "CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT); \
               INSERT INTO accounts VALUES (1, 100), (2, 50); \
               UPDATE accounts SET balance = balance + 100 WHERE user_id = 1; \
               DELETE FROM accounts WHERE user_id = 2";
    assert!(chronodb(&["sql", "--db", db, "-e", sql]).0);

    let (ok, out, err) = chronodb(&["audit", "verify", "--db", db]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("checked 4 transactions") && out.contains("audit trail OK"),
        "{out}"
    );

    let (ok, out, _) = chronodb(&[
        "audit", "report", "--db", db, "--table", "accounts", "--format", "json",
    ]);
    assert!(ok);
    let ops: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["operation"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ops, vec!["INSERT", "INSERT", "UPDATE", "DELETE"]);

    let key = dir.path().join("audit.key");
    let (ok, public, err) = chronodb(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    assert!(ok, "{err}");
    let public = public.trim().to_string();
    let cp = dir.path().join("checkpoint.txt");
    let (ok, _, err) = chronodb(&[
        "audit",
        "checkpoint",
        "--db",
        db,
        "--key",
        key.to_str().unwrap(),
        "--out",
        cp.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let proof = dir.path().join("proof.json");
    assert!(
        chronodb(&[
            "audit",
            "proof",
            "--db",
            db,
            "--tx",
            "3",
            "--out",
            proof.to_str().unwrap()
        ])
        .0
    );

    // Offline: no --db.
    let (ok, out, err) = chronodb(&[
        "audit",
        "verify-proof",
        "--proof",
        proof.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("inclusion proof OK") && out.contains("checkpoint signature OK"),
        "{out}"
    );

    // More history, then a consistency proof from the checkpoint's size.
    assert!(
        chronodb(&[
            "sql",
            "--db",
            db,
            "-e",
            "INSERT INTO accounts VALUES (3, 7)"
        ])
        .0
    );
    let consistency = dir.path().join("consistency.json");
    assert!(
        chronodb(&[
            "audit",
            "proof",
            "--db",
            db,
            "--from-size",
            "4",
            "--to-size",
            "5",
            "--out",
            consistency.to_str().unwrap()
        ])
        .0
    );
    let (ok, out, err) = chronodb(&[
        "audit",
        "verify-proof",
        "--proof",
        consistency.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("consistency proof OK"), "{out}");

    // An inclusion proof for the grown log proves nothing about the checkpoint: refused.
    // Made for the checkpoint's size, it is anchored and verifies.
    let grown = dir.path().join("grown.json");
    let anchored = dir.path().join("anchored.json");
    for (path, size) in [(&grown, None), (&anchored, Some("4"))] {
        let mut args = vec!["audit", "proof", "--db", db, "--tx", "3"];
        if let Some(size) = size {
            args.extend(["--to-size", size]);
        }
        args.extend(["--out", path.to_str().unwrap()]);
        assert!(chronodb(&args).0);
    }
    let check = |path: &std::path::Path| {
        chronodb(&[
            "audit",
            "verify-proof",
            "--proof",
            path.to_str().unwrap(),
            "--checkpoint",
            cp.to_str().unwrap(),
            "--public-key",
            &public,
        ])
    };
    let (ok, _, err) = check(&grown);
    assert!(
        !ok && err.contains("not anchored to the checkpoint"),
        "{err}"
    );
    let (ok, out, err) = check(&anchored);
    assert!(ok, "{err}");
    assert!(out.contains("inclusion proof OK"), "{out}");
    assert!(out.contains("checkpoint signature OK: database "), "{out}");
    // The same statements run on another database make another log: its proofs are refused
    // against this database's checkpoint by name.
    let other_db = dir.path().join("other");
    let other_db = other_db.to_str().unwrap();
    assert!(chronodb(&["sql", "--db", other_db, "-e", sql]).0);
    let foreign = dir.path().join("foreign.json");
    assert!(
        chronodb(&[
            "audit",
            "proof",
            "--db",
            other_db,
            "--tx",
            "3",
            "--to-size",
            "4",
            "--out",
            foreign.to_str().unwrap()
        ])
        .0
    );
    let (ok, _, err) = check(&foreign);
    assert!(!ok && err.contains("the proof is of database"), "{err}");
    let (ok, out, _) = chronodb(&[
        "audit",
        "verify",
        "--db",
        db,
        "--checkpoint",
        cp.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(ok, "{out}");

    // A forged proof and a forged checkpoint are refused.
    let text = std::fs::read_to_string(&proof).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["index"] = serde_json::json!(0);
    std::fs::write(&proof, v.to_string()).unwrap();
    let (ok, _, err) = chronodb(&["audit", "verify-proof", "--proof", proof.to_str().unwrap()]);
    assert!(!ok && err.contains("does NOT verify"), "{err}");
    let note = std::fs::read_to_string(&cp)
        .unwrap()
        .replacen("\n4\n", "\n5\n", 1);
    std::fs::write(&cp, note).unwrap();
    let (ok, _, err) = chronodb(&[
        "audit",
        "verify-proof",
        "--proof",
        consistency.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(!ok && err.contains("signature does not match"), "{err}");

    // A row rewritten underneath is caught, and the exit status says so.
    {
        let engine =
            chrono_storage::RocksEngine::open(db, &chrono_storage::RocksOptions::default())
                .unwrap();
        let engine: Arc<dyn chrono_storage::Engine> = Arc::new(engine);
        let mut c = engine.cursor(chrono_storage::ColumnFamily::Latest).unwrap();
        c.seek(&[]);
        let mut found = None;
        while c.valid() {
            found = Some((c.key().to_vec(), c.value().to_vec()));
            c.next();
        }
        let (latest_key, latest) = found.unwrap();
        let (_, key) = chrono_storage::encoding::parse_latest_key(&latest_key).unwrap();
        let ks = u32::from_be_bytes(latest_key[1..5].try_into().unwrap());
        let (ts, op, row) = chrono_storage::encoding::decode_latest_value(&latest).unwrap();
        let mut forged = row.to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let mut b = chrono_storage::WriteBatch::new();
        b.put(
            chrono_storage::ColumnFamily::Versions,
            chrono_storage::encoding::version_key(ks, &key, ts),
            chrono_storage::encoding::encode_version_value(op, &forged),
        );
        engine.write(b).unwrap();
    }
    let (ok, out, _) = chronodb(&["audit", "verify", "--db", db]);
    assert!(!ok);
    assert!(out.contains("FAILED: RowMismatch"), "{out}");
}
