# Berth's everyday commands. `just ci` runs what CI runs.

# Run the whole registry on loopback over ./data.
run:
    cargo run --release

# Run every test (tools such as skopeo are used where installed).
test:
    cargo test --workspace

# Install the test tools (as root), then format check, lint and test: what CI runs.
ci:
    bash .ci/run

# Berth beside Debian's docker-registry on the same workload; prints ratios.
bench *args:
    cargo build --release -p registry-api -p auth-service -p gc-worker -p ui-backend -p registry-bench
    ./target/release/registry-bench {{args}}

# The soak test (clients, two replicas and a collector at once) for an hour on each store.
soak seconds="3600":
    BERTH_SOAK_SECONDS={{seconds}} cargo test --release -p gc-worker --test soak -- --nocapture --test-threads 1

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings
