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
    cargo run --release -q -p registry-bench -- {{args}}

# The soak test (clients, two replicas and a collector at once) for an hour on each store.
soak seconds="3600":
    BERTH_SOAK_SECONDS={{seconds}} cargo test --release -p gc-worker --test soak -- --nocapture --test-threads 1

# Fuzz every parser for `seconds` each (the tests give each two): names,
# digests, manifests, ranges, paths, htpasswd, policy. A failing input is
# printed with the command that keeps it in fuzz/corpus/.
fuzz seconds="300":
    BERTH_FUZZ_SECONDS={{seconds}} cargo test -p registry-core --test fuzz
    BERTH_FUZZ_SECONDS={{seconds}} cargo test -p registry-api --test fuzz
    BERTH_FUZZ_SECONDS={{seconds}} cargo test -p auth-service --lib fuzz

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings
