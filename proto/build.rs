//! Compiles `proto/**/*.proto` with protox, a pure-Rust protobuf compiler, so
//! that building needs nothing but cargo (no system `protoc`). The descriptor
//! set is written to `OUT_DIR` and embedded for gRPC server reflection.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &["proto/allmine/chat/v1/chat.proto"];
const INCLUDES: &[&str] = &["proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");

    let mut compiler = protox::Compiler::new(INCLUDES)?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded by protox itself, not through prost-types' `FileDescriptorSet`,
    // which drops extension options: the embedded set keeps each RPC's
    // `google.api.http` rule (http-edge's contract test reads them).
    fs::write(
        out_dir.join("chat_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let descriptors = compiler.file_descriptor_set();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
