//! The example policy shipped in `deploy/` loads.

#[test]
fn the_deployed_example_policy_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, "").expect("htpasswd");
    let loaded = auth_service::Files::load(htpasswd, Some(root.join("deploy/policy.example.toml")));
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}
