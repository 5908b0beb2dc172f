//! Shared test fixtures for every Berth crate: images built locally (nothing
//! is pulled from the internet), OCI layout directories for skopeo and
//! podman, a harness that runs registry-api (and ui-backend) on ephemeral
//! loopback ports, a
//! small push client, and the rule for tests that need an external tool.

mod app;
mod client;
mod disk_app;
mod docker;
mod edge;
mod external;
mod fault_proxy;
pub mod fuzz;
mod held_replica;
mod images;
mod layout;
mod podman;
mod server;
mod store_files;
mod tools;
mod ui;

pub use app::{TestApp, TestResponse};
pub use client::{push_blob, push_image, push_manifest, start_upload, upload_first_chunk};
pub use disk_app::DiskApp;
pub use docker::Docker;
pub use edge::{Edge, REGISTRY_NAME, TlsFront, UI_NAME, workspace_root};
pub use external::{
    ChildServer, abandon_multipart_upload, free_port, start_docker_registry,
    start_docker_registry_on_s3, start_docker_registry_with_htpasswd, start_moto,
};
pub use fault_proxy::{Fault, FaultProxy};
pub use held_replica::HeldReplica;
pub use images::{Blob, Image, Index, random_bytes};
pub use layout::write_oci_layout;
pub use podman::Podman;
pub use server::{TestAuth, TestRegistry, argon2id_line, bcrypt_line};
pub use store_files::files_under;
pub use tools::{
    Tool, command_output, eventually, is_root, require_tool, run_tool, with_hosts, with_mounts,
    with_tmpfs,
};
pub use ui::TestUi;
