//! Compiles `proto/kmsim/v1/*.proto` with protoc from the `protoc-bin-vendored`
//! crate, so a machine with only the Rust toolchain can build, and writes the
//! file descriptor set that server reflection serves; and `proto/dkms/api.proto`,
//! the KMS instance API's messages (no service: that API is protobuf over HTTP/1.1).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let dir = PathBuf::from("proto/kmsim/v1");
    let mut protos: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    protos.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("kmsim_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor)
        .compile_protos(&protos, &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?])?;

    let instance_api = PathBuf::from("proto/dkms/api.proto");
    println!("cargo:rerun-if-changed={}", instance_api.display());
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_protos(&[instance_api], &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?])?;
    Ok(())
}
