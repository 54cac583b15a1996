//! libtorch is the CPU part of the PyTorch wheel (`scripts/libtorch.sh`): the binaries load
//! it without any of the CUDA libraries the wheel's own `libtorch.so` would pull in, and it
//! computes.

use std::process::Command;

#[test]
fn libtorch_loads_without_cuda() {
    let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.5]);
    assert_eq!(t.sum(tch::Kind::Float).double_value(&[]), 6.5);

    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ldd").arg(&exe).output().expect("ldd runs");
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(libs.contains("libtorch_cpu"), "{libs}");
    assert!(!libs.contains("not found"), "{libs}");
    for cuda in [
        "libtorch_cuda",
        "libc10_cuda",
        "libcublas",
        "libcudnn",
        "libnccl",
        "libcusparse",
        "libcufft",
        "libnvshmem",
    ] {
        assert!(!libs.contains(cuda), "{cuda} is loaded: {libs}");
    }
}
