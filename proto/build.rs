//! Generates the Rust code for `proto/chronodb/v1/*.proto` with a protoc that ships inside
//! a crate, so a build needs no system protobuf compiler, and a descriptor set for the
//! server's reflection service.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let protos = [
        "chronodb/v1/values.proto",
        "chronodb/v1/sql.proto",
        "chronodb/v1/timetravel.proto",
        "chronodb/v1/changes.proto",
        "chronodb/v1/monitor.proto",
        "chronodb/v1/audit.proto",
        "chronodb/v1/optimizer.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("chronodb_descriptor.bin"))
        .compile_protos(&protos, &["."])?;
    Ok(())
}
