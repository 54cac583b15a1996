//! # chrono-audit
//!
//! A tamper-evident audit trail, written by a commit observer in the **same RocksDB write
//! batch** as the data it describes, in the `audit` column family: nothing commits without
//! its audit entries, and no entry exists without its data.
//!
//! ```text
//! commit n ─► entries  e_i = (seq, tx, ts, table, key space, op, key, H(before), H(after),
//!                             principal, H(statements))          one per row version
//!          ─► tx root  r_n = MTH(H(e_first) … H(e_last))          RFC 6962 tree per commit
//!          ─► chain    h_n = H("chrono/c" ‖ n ‖ h_{n-1} ‖ r_n ‖ commit_ts)   88 bytes, one block
//!          ─► log      leaf_n = H(0x00 ‖ h_n) appended to an RFC 6962 tree over all commits,
//!                      kept as complete subtrees, so inclusion and consistency proofs are
//!                      O(log n) reads and a signed checkpoint (size, root) pins history
//! ```
//!
//! [`AuditTrail::verify`] recomputes everything and cross-checks the data column families;
//! [`AuditTrail::verify_against`] also holds the database to a checkpoint saved outside it,
//! which catches a history rewritten with every hash recomputed. [`merkle`] has the proof
//! verifiers a client runs offline.

pub mod error;
pub mod merkle;
pub mod signing;
pub mod trail;

pub use error::{Error, Result};
pub use merkle::Hash;
pub use trail::{
    AuditTrail, Checkpoint, EntriesDigest, EntryRecord, FailureKind, InclusionProof, TxRecord,
    VerifyFailure, VerifyReport,
};
