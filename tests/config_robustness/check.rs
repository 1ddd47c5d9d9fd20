//! `wharf check` on mutated configs: it never panics or hangs, and a
//! rejected file is always reported with the file, line and column.

use super::bases::bases;
use super::mutate::mutate;
use super::*;

/// Mutated cases per valid base config (9 bases: 288 cases).
const CASES_PER_BASE: usize = 32;

/// `wharf check` processes running at once.
const WORKERS: usize = 4;

struct Case {
    name: String,
    config: Vec<u8>,
    /// Extra environment for the `wharf check` process.
    env: Vec<(&'static str, &'static str)>,
    /// `Some(code)` when the exit code is known in advance.
    expect: Option<i32>,
}

/// Checks one case; `Err` says what went wrong.
fn check_case(case: &Case, scratch: &Path) -> Result<i32, String> {
    let path = scratch.join("wharf.toml");
    std::fs::write(&path, &case.config).expect("write config");
    let checked = run_check(&path, scratch, &case.env)?;
    let stderr = &checked.stderr;
    if stderr.contains("panicked") {
        return Err(format!("wharf check panicked:\n{stderr}"));
    }
    let code = match checked.code {
        Some(code @ (0 | 1)) => code,
        Some(code) => return Err(format!("exit code {code}:\n{stderr}")),
        None => return Err(format!("killed by a signal:\n{stderr}")),
    };
    if let Some(expected) = case.expect.filter(|&e| e != code) {
        return Err(format!("exit code {code}, expected {expected}:\n{stderr}"));
    }
    if code == 1 {
        judge_errors(&path.display().to_string(), stderr)
            .map_err(|why| format!("{why}; stderr:\n{}", show(stderr.as_bytes())))?;
    }
    Ok(code)
}

fn cases(rng: &mut fastrand::Rng, dir: &Path) -> Vec<Case> {
    let bases = bases(dir);
    let mut cases = Vec::new();
    for (name, text) in &bases {
        cases.push(Case {
            name: format!("{name}, unmutated"),
            config: text.clone().into_bytes(),
            env: Vec::new(),
            expect: Some(0),
        });
    }
    // `${PORT}` in the default listen address (no `[server]`) and in a
    // written one, with every kind of bad value.
    let no_server = bases[7].1.clone();
    let written = bases[0].1.clone();
    for port in ["abc", "99999", "-1", "${X}", "", "8080x", "0"] {
        let ok = matches!(port, "" | "0");
        for (how, text) in [
            ("default listen", ""),
            ("default listen", &no_server),
            ("written listen", &written),
        ] {
            cases.push(Case {
                name: format!("PORT={port:?}, {how}"),
                config: text.as_bytes().to_vec(),
                env: vec![("PORT", port)],
                expect: Some(if ok { 0 } else { 1 }),
            });
        }
    }
    for (name, text) in &bases {
        for i in 0..CASES_PER_BASE {
            let (config, steps) = mutate(rng, text);
            cases.push(Case {
                name: format!("{name} #{i}: {}", steps.join("; ")),
                config,
                env: Vec::new(),
                expect: None,
            });
        }
    }
    cases
}

#[test]
fn check_never_panics_and_always_points_at_the_problem() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = cases(&mut rng, dir.path());
    let total = cases.len();
    let started = Instant::now();

    // Whole-file errors: a directory, and a path that does not exist.
    let scratch = dir.path().join("whole");
    std::fs::create_dir_all(&scratch).expect("scratch");
    for path in [dir.path().to_path_buf(), dir.path().join("missing.toml")] {
        let checked = run_check(&path, &scratch, &[]).expect("check in time");
        assert_eq!(
            checked.code,
            Some(1),
            "{}: {}",
            path.display(),
            checked.stderr
        );
        judge_errors(&path.display().to_string(), &checked.stderr)
            .unwrap_or_else(|why| panic!("{why}: {}", checked.stderr));
    }

    // Each worker takes every WORKERS-th case, in its own directory, so
    // relative paths (`static`, `secret`, `site.pem`) resolve as in the base.
    let cases = std::sync::Arc::new(cases);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let cases = cases.clone();
            let scratch: PathBuf = dir.path().join(format!("worker-{w}"));
            let files = dir.path().to_path_buf();
            std::thread::spawn(move || {
                std::fs::create_dir_all(&scratch).expect("scratch");
                for name in ["static", "secret", "site.pem", "site.key"] {
                    std::os::unix::fs::symlink(files.join(name), scratch.join(name)).expect("link");
                }
                let mut outcomes = Vec::new();
                for (i, case) in cases.iter().enumerate().skip(w).step_by(WORKERS) {
                    outcomes.push((i, check_case(case, &scratch)));
                }
                outcomes
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut rejected = 0;
    for worker in workers {
        for (i, outcome) in worker.join().expect("worker") {
            match outcome {
                Ok(code) => rejected += usize::from(code == 1),
                Err(why) => failures.push(format!(
                    "case {i} (seed {seed}) [{}]: {why}\nconfig: {}",
                    cases[i].name,
                    show(&cases[i].config)
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The mutations must mostly produce bad files, or this tests little.
    assert!(
        rejected > total / 2,
        "only {rejected} of {total} cases were rejected (seed {seed})"
    );
    eprintln!(
        "{total} configs checked in {:?} ({rejected} rejected, seed {seed})",
        started.elapsed()
    );
}
