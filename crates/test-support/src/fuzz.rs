//! Fuzz targets on the stable toolchain. A target first replays every file
//! of its corpus (`fuzz/corpus/<target>/` at the workspace root, one input
//! per file, byte for byte), then feeds generated inputs to the same check
//! until its time budget runs out: [`DEFAULT_SECONDS`] in `cargo test`,
//! `BERTH_FUZZ_SECONDS=N` to fuzz for longer by hand (`just fuzz`), `0` to
//! replay the corpus alone.
//!
//! An input that fails the check is written under the system's temporary
//! directory and printed with the command that keeps it in the corpus, so
//! every bug found stays found.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::time::Duration;

pub use arbtest::arbitrary::{self, Arbitrary, Unstructured};

/// Seconds of generated inputs per target in an ordinary test run: short,
/// so that every target together stays within a few seconds of CI.
pub const DEFAULT_SECONDS: f64 = 2.0;

/// Most random bytes one generated input is built from: plenty for the
/// structure of any input here, and small enough that a second brings
/// thousands of inputs rather than dozens of huge ones.
const MAX_ENTROPY: u32 = 4096;

/// The environment variable that sets the seconds of generated inputs per
/// target.
pub const SECONDS_VARIABLE: &str = "BERTH_FUZZ_SECONDS";

/// How long each target runs generated inputs.
///
/// # Panics
/// Where `BERTH_FUZZ_SECONDS` is set but is not a non-negative number: a
/// typo should not quietly fuzz for the default two seconds.
pub fn budget() -> Duration {
    match std::env::var(SECONDS_VARIABLE) {
        Err(_) => Duration::from_secs_f64(DEFAULT_SECONDS),
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .unwrap_or_else(|| {
                panic!("{SECONDS_VARIABLE}={text:?} is not a number of seconds, such as 300")
            }),
    }
}

/// The corpus directory of `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    crate::workspace_root().join("fuzz/corpus").join(target)
}

/// Replays `target`'s corpus through `check`, then runs it on inputs from
/// `generate` for [`budget`]. `check` panics when a property fails.
///
/// # Panics
/// Where the corpus directory is missing or empty, or `check` fails on an
/// input (which is then printed and saved, see the module doc).
pub fn fuzz(
    target: &str,
    mut generate: impl FnMut(&mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>>,
    check: impl Fn(&[u8]),
) {
    let replayed = replay_corpus(target, &check);
    let budget = budget();
    let mut generated = 0_u64;
    // Zero seconds replays the corpus alone (arbtest needs at least one run).
    if !budget.is_zero() {
        arbtest::arbtest(|unstructured| {
            let input = generate(unstructured)?;
            check_one(target, &input, &check);
            generated += 1;
            Ok(())
        })
        .size_max(MAX_ENTROPY)
        .budget(budget)
        .run();
    }
    eprintln!("fuzz target {target}: {replayed} corpus inputs, {generated} generated inputs");
}

fn replay_corpus(target: &str, check: &impl Fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| {
        panic!(
            "fuzz target {target} has no corpus at {} ({error}); create it with at least one input",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("reading the corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "fuzz target {target}: {} holds no inputs; add at least one",
        dir.display()
    );
    for path in &paths {
        let input = std::fs::read(path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            panic!(
                "fuzz target {target} fails on its corpus file {}",
                path.display()
            );
        }
    }
    paths.len()
}

/// Runs `check` on one generated input; on failure, saves and prints the
/// input before passing the panic on.
fn check_one(target: &str, input: &[u8], check: &impl Fn(&[u8])) {
    let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) else {
        return;
    };
    let name = format!("found-{:016x}", fingerprint(input));
    let saved_dir = std::env::temp_dir().join("berth-fuzz").join(target);
    let saved = saved_dir.join(&name);
    let written = std::fs::create_dir_all(&saved_dir).and_then(|()| std::fs::write(&saved, input));
    eprintln!(
        "\nfuzz target {target} failed on this input ({} bytes):\n{}\n",
        input.len(),
        input.escape_ascii()
    );
    match written {
        Ok(()) => eprintln!(
            "saved as {}; keep it in the corpus with\n  cp {} fuzz/corpus/{target}/\n",
            saved.display(),
            saved.display()
        ),
        Err(error) => eprintln!("cannot save it under {}: {error}\n", saved_dir.display()),
    }
    resume_unwind(panic)
}

/// A stable name for an input (FNV-1a), so the same failure found twice is
/// saved once.
fn fingerprint(input: &[u8]) -> u64 {
    input.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A string of up to `max_len` characters drawn from `alphabet`, so that
/// generated input reaches a grammar's edges far more often than random
/// Unicode would.
pub fn string_from(
    unstructured: &mut Unstructured<'_>,
    alphabet: &[char],
    max_len: usize,
) -> arbitrary::Result<String> {
    let len = unstructured.int_in_range(0..=max_len)?;
    string_of_length(unstructured, alphabet, len)
}

/// A string of exactly `len` characters drawn from `alphabet`: for limits
/// such as 128-character tags or 64-character hex.
pub fn string_of_length(
    unstructured: &mut Unstructured<'_>,
    alphabet: &[char],
    len: usize,
) -> arbitrary::Result<String> {
    (0..len)
        .map(|_| unstructured.choose(alphabet).copied())
        .collect()
}
