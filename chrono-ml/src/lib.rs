//! The learned cardinality estimator of ChronoDB. It is built by its own issue; this crate
//! holds no behaviour yet. It depends on `tch` already so that the workspace's native
//! dependencies (RocksDB, libtorch, SQLite) are resolved and built together once.
