//! Lets the `chronodb` binary (and this package's tests) find libtorch where it was built
//! against: an rpath to `$LIBTORCH/lib` (the libtorch folder that `scripts/libtorch.sh`
//! makes and `scripts/env.sh` points `LIBTORCH` at). A binary copied elsewhere on the same machine
//! then starts with no environment variables set.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH")
        && !libtorch.is_empty()
    {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
