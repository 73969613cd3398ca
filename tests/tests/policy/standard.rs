//! Every standard policy that carries a `cases.yaml` passes all of it: `tollgate policy test
//! <name> --cases policies/<name>/cases.yaml` exits 0 and counts every case as passed.

use std::path::{Path, PathBuf};

use super::cases::policy_test;

/// The cases a file holds: its `- name:` entries.
fn count_cases(text: &str) -> usize {
    text.lines().filter(|l| l.trim_start().starts_with("- name:")).count()
}

/// `(policy name, cases file)` for each directory under `policies/` with a `cases.yaml`.
fn standard_cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| dir.join("cases.yaml").is_file())
        .map(|dir| (dir.file_name().expect("a directory name").to_string_lossy().into_owned(), dir.join("cases.yaml")))
        .collect();
    found.sort();
    found
}

#[test]
fn every_standard_policy_passes_its_cases() {
    let all = standard_cases();
    assert!(all.iter().any(|(name, _)| name == "tool-filter"), "no cases found under policies/: {all:?}");
    let outcomes: Vec<(String, usize, i32, String)> = all
        .iter()
        .map(|(name, file)| {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let (code, out) = policy_test(name, file);
            (name.clone(), count_cases(&text), code, out)
        })
        .collect();
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|(_, n, code, out)| *n == 0 || *code != 0 || !out.lines().any(|l| l.trim() == format!("{n} passed, 0 failed")))
        .map(|(name, n, code, out)| format!("{name}: {n} cases, exit {code}:\n{}", out.trim()))
        .collect();
    assert!(failures.is_empty(), "{} of {} policies failed their cases:\n\n{}", failures.len(), outcomes.len(), failures.join("\n\n"));
}
