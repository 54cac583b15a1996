//! ChronoDB's gRPC protocol, generated from `proto/chronodb/v1/*.proto` (`package chronodb.v1`).
//!
//! Only generated code lives here; conversions between these messages and ChronoDB's own
//! types live in one `convert` module of the server.

/// `package chronodb.v1`.
pub mod v1 {
    tonic::include_proto!("chronodb.v1");
}

/// The encoded file descriptor set of every proto, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("chronodb_descriptor");
