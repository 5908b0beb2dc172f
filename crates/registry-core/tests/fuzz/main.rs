//! Fuzz targets for registry-core's parsers, run by `cargo test` for a few
//! seconds each and by `just fuzz` for longer: names, tags, references and
//! digests against the spec's grammar; manifests and the references they
//! name; Basic credentials. Each replays its corpus under `fuzz/corpus/`
//! first (see `test_support::fuzz`).

mod credentials;
mod manifests;
mod references;
