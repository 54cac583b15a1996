//! The tamper-evident audit trail of ChronoDB. It is built by its own issue; this crate holds
//! no behaviour yet.
