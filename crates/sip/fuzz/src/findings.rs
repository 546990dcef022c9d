//! The findings directory: one input file and one reason file per
//! sample, a few samples per signature, so a run leaves a list to triage
//! instead of stopping at the first disagreement.
//!
//! `$SIP_FUZZ_FINDINGS` (default `findings/`) holds, per finding,
//! `<signature>--<hash>.sip` (the input) and `<signature>--<hash>.txt`
//! (one line: the signature and why). Known differences go to `known/`
//! under it, one sample per class, so a run shows which ones it met.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Samples kept per signature (per class for the known ones).
const PER_SIGNATURE: usize = 5;
const PER_KNOWN_CLASS: usize = 1;

struct State {
    dir: PathBuf,
    counts: HashMap<String, usize>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = PathBuf::from(
            std::env::var_os("SIP_FUZZ_FINDINGS").unwrap_or_else(|| "findings".into()),
        );
        let _ = std::fs::create_dir_all(dir.join("known"));
        // Count what earlier runs left, so the caps hold across runs.
        let mut counts = HashMap::new();
        for sub in [dir.clone(), dir.join("known")] {
            let known = sub.ends_with("known");
            for entry in std::fs::read_dir(&sub).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".txt")
                    && let Some((signature, _)) = stem.rsplit_once("--")
                {
                    let key = if known {
                        format!("known/{signature}")
                    } else {
                        signature.to_owned()
                    };
                    *counts.entry(key).or_default() += 1;
                }
            }
        }
        Mutex::new(State { dir, counts })
    })
}

/// Records `input` under `signature` with a one-line `reason`, unless the
/// signature has its samples already. `known` files it as a known class.
pub fn record(signature: &str, reason: &str, input: &[u8], known: bool) {
    let file_stem = sanitize(signature);
    let mut state = state()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (key, cap, dir) = if known {
        (
            format!("known/{file_stem}"),
            PER_KNOWN_CLASS,
            state.dir.join("known"),
        )
    } else {
        (file_stem.clone(), PER_SIGNATURE, state.dir.clone())
    };
    let mut hasher = DefaultHasher::new();
    input.hash(&mut hasher);
    let name = format!("{file_stem}--{:016x}", hasher.finish());
    // libFuzzer runs an input more than once: a sample counts once.
    if dir.join(format!("{name}.txt")).exists() {
        return;
    }
    let count = state.counts.entry(key).or_default();
    if *count >= cap {
        return;
    }
    *count += 1;
    let _ = std::fs::write(dir.join(format!("{name}.sip")), input);
    let _ = std::fs::write(
        dir.join(format!("{name}.txt")),
        format!("{signature}: {}\n", crate::one_line(reason, 400)),
    );
}

/// A signature as a file name: letters, digits, `-`, `_`, `.`, `+`.
fn sanitize(signature: &str) -> String {
    signature
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '+'
            }
        })
        .collect()
}
