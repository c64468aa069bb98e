//! Claims the docs make that a test can hold them to.

use crate::repo;

/// The README's set-up block is two commands; `.ci/run` runs the second one (the test command)
/// as written, so CI tests what a new user runs.
#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let block = readme
        .split("## Set-up: two commands")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a set-up block");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands[0].starts_with("cargo run --release"),
        "{commands:?}"
    );
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == commands[1]),
        ".ci/run does not run `{}`",
        commands[1]
    );
    // Both share the release profile, so the second reuses the first's build.
    assert!(commands[1].contains("--release"), "{commands:?}");
}

/// The README's block between `## <section>` and the next heading, inside its first fence.
fn readme_block(section: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    readme
        .split(&format!("## {section}"))
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .map(|s| {
            s.trim_start_matches(|c: char| c.is_alphanumeric())
                .to_string()
        })
        .unwrap_or_else(|| panic!("README has no block under `## {section}`"))
}

/// A line of the main job's output with its timings cut out (they vary from run to run).
fn untimed(line: &str) -> String {
    match (line.find(" rows in "), line.find("), train loss")) {
        (Some(a), Some(b)) => format!("{} rows ...{}", &line[..a], &line[b + 1..]),
        _ => line.to_string(),
    }
}

/// Lines equal word for word, except that a decimal may differ by 0.001: the README's sample
/// was printed on one CPU, and another one's matrix kernels (with or without AVX-512) round
/// differently in the last bits, which can move a printed metric's last digit. On one machine
/// the same seed gives the same metrics exactly (`runs::same_seed_same_metrics_other_seed_other_metrics`).
fn same_but_last_digit(want: &str, got: &str) -> bool {
    let (w, g): (Vec<&str>, Vec<&str>) = (
        want.split_whitespace().collect(),
        got.split_whitespace().collect(),
    );
    w.len() == g.len()
        && w.iter().zip(&g).all(|(a, b)| {
            a == b
                || (a.contains('.') && b.contains('.'))
                    && matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() <= 1e-3 + 1e-9)
        })
}

/// The README's sample output of the main command is what it prints, line for line, timings
/// and the run's name aside, each metric to its last digit give or take one unit of the third
/// decimal (`same_but_last_digit`).
#[test]
fn readme_sample_output_is_what_the_main_job_prints() {
    let s = crate::Scratch::new();
    // Both streams into one, in the order they were written, as a terminal shows them.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("\"$0\" train \"$1\" --out run 2>&1")
        .arg(env!("CARGO_BIN_EXE_funnel"))
        .arg(repo().join("pipelines/esmm.yaml"))
        .current_dir(s.path(""))
        .output()
        .expect("run funnel");
    crate::ok(&out);
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(untimed)
        .collect();
    let mut at = 0;
    for line in readme_block("What the main job prints").lines() {
        let skip = ["timing:", "run directory:", "report:", "... "];
        if line.trim().is_empty() || skip.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        let want = untimed(line);
        match printed[at..]
            .iter()
            .position(|l| same_but_last_digit(&want, l))
        {
            Some(i) => at += i + 1,
            None => panic!(
                "README line not printed (in order): {want}\nprinted:\n{}",
                printed.join("\n")
            ),
        }
    }
    // The timing and location lines are there too, in their shape.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\ntiming: read ") || stdout.starts_with("timing: read "),
        "{stdout}"
    );
    assert!(
        stdout.contains("run directory: run\nreport: run/report.html\n"),
        "{stdout}"
    );
}

/// Every command of the README's table exists, with every flag it shows; and every command
/// the CLI has is in the table.
#[test]
fn readme_commands_table_matches_the_cli() {
    let block = readme_block("Commands");
    let s = crate::Scratch::new();
    let mut listed = Vec::new();
    for line in block.lines().filter(|l| l.starts_with("funnel ")) {
        let shown = line.split("  #").next().expect("command");
        // The command's path: `prepare taobao`, or one word (arguments are in capitals).
        let mut path: Vec<&str> = shown
            .split_whitespace()
            .skip(1)
            .take_while(|w| {
                !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
            .collect();
        let sub = *path.first().expect("a subcommand");
        listed.push(sub.to_string());
        path.push("--help");
        let help = s.run(&path);
        crate::ok(&help);
        let help = String::from_utf8_lossy(&help.stdout).to_string();
        for flag in shown
            .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
            .filter(|w| w.starts_with("--"))
        {
            assert!(
                help.contains(flag),
                "`funnel {sub} --help` does not list {flag}:\n{help}"
            );
        }
    }
    let help = s.run(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("commands")
        .split("Options:")
        .next()
        .expect("commands")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    for c in &commands {
        assert!(
            listed.iter().any(|l| l == c),
            "`funnel {c}` is not in the README's table"
        );
    }
}

/// The run directory table names exactly the files a finished run holds.
#[test]
fn readme_run_directory_table_matches_a_run() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let table = readme
        .split("## Run directory")
        .nth(1)
        .expect("a run directory section");
    let mut documented: Vec<String> = table
        .lines()
        .take_while(|l| l.starts_with('|') || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let s = crate::Scratch::new();
    s.adult_pipeline(crate::CLICK, "");
    crate::ok(&s.run(&["train", "pipeline.yaml", "--out", "run"]));
    let mut files: Vec<String> = std::fs::read_dir(s.path("run"))
        .expect("run")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    documented.sort();
    files.sort();
    assert_eq!(documented, files);
}
