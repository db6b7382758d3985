//! Configuration discovery, suppressions, output formats, bad input files and exit codes, through the public API.

use std::path::{Path, PathBuf};

use uhrwerk_lint::{Config, FailOn, Format, LintArgs, lint_paths, lint_source, output, run};

const RANDOM_IN_WORKFLOW: &str = "import random\nfrom temporalio import workflow\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self) -> float:\n        return random.random()\n";

fn args(paths: Vec<PathBuf>) -> LintArgs {
    LintArgs {
        paths,
        format: Format::Json,
        explain: None,
        list_rules: false,
        select: Vec::new(),
        extend_select: Vec::new(),
        ignore: Vec::new(),
        fail_on: FailOn::Error,
        config: None,
        isolated: false,
        no_summary: true,
    }
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    std::fs::write(&path, contents).expect("write file");
    path
}

#[test]
fn pyproject_is_found_by_walking_up_and_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "pyproject.toml",
        "[project]\nname = \"demo\"\n\n[tool.uhrwerk.lint]\nignore = [\"UW106\"]\nextend-select = [\"UW703\"]\nseverity = { UW502 = \"error\" }\nextra-nondeterministic = [\"clock.now\"]\nidempotency-key-names = [\"charge_token\"]\n",
    );
    let nested = dir.path().join("src/app");
    write(&nested, "wf.py", RANDOM_IN_WORKFLOW);
    let found = uhrwerk_lint::config::discover(&nested).expect("discovery works").expect("config found");
    assert_eq!(found, dir.path().join("pyproject.toml"));
    let config = Config::from_pyproject(&found).expect("valid config");
    assert!(config.severity_of("UW106").is_none());
    assert!(config.severity_of("UW703").is_some());
    assert_eq!(config.severity_of("UW502"), Some(uhrwerk_lint::Severity::Error));
    let printing = RANDOM_IN_WORKFLOW.replace("return random.random()", "print(1)\n        return 1.0");
    assert!(lint_source("wf.py", &printing, &config).is_empty());

    let custom = "import clock\nfrom temporalio import workflow\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self) -> None:\n        clock.now()\n        await workflow.execute_local_activity(a, charge_token, start_to_close_timeout=t)\n";
    let codes: Vec<_> = lint_source("c.py", custom, &config).iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["UW101"]);
}

#[test]
fn invalid_config_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "pyproject.toml", "[tool.uhrwerk.lint]\nselect = [\"NOPE9\"]\n");
    write(dir.path(), "wf.py", RANDOM_IN_WORKFLOW);
    assert_eq!(run(&args(vec![dir.path().to_path_buf()])), 2);
    let mut unknown_field = args(vec![dir.path().to_path_buf()]);
    write(dir.path(), "pyproject.toml", "[tool.uhrwerk.lint]\nsellect = [\"UW1\"]\n");
    unknown_field.isolated = false;
    assert_eq!(run(&unknown_field), 2);
}

#[test]
fn exit_codes_follow_fail_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = write(dir.path(), "clean.py", "x = 1\n");
    let warn_only = write(
        dir.path(),
        "warn.py",
        "from temporalio import workflow\n\n@workflow.defn\nclass W:\n    @workflow.run\n    async def run(self) -> None:\n        print(1)\n",
    );
    let error = write(dir.path(), "err.py", RANDOM_IN_WORKFLOW);
    assert_eq!(run(&args(vec![clean.clone()])), 0);
    assert_eq!(run(&args(vec![warn_only.clone()])), 0);
    let mut strict = args(vec![warn_only]);
    strict.fail_on = FailOn::Warning;
    assert_eq!(run(&strict), 1);
    assert_eq!(run(&args(vec![error])), 1);
    assert_eq!(run(&args(vec![dir.path().join("missing.py")])), 2);
    let mut explain = args(Vec::new());
    explain.explain = Some("UW101".to_string());
    assert_eq!(run(&explain), 0);
    explain.explain = Some("UW999".to_string());
    assert_eq!(run(&explain), 2);
}

#[test]
fn suppression_with_reason_silences_and_without_reason_reports() {
    let config = Config::default();
    let same_line = RANDOM_IN_WORKFLOW.replace(
        "return random.random()",
        "return random.random()  # uhrwerk: ignore[UW101] seeded from workflow input in tests",
    );
    assert!(lint_source("a.py", &same_line, &config).is_empty());

    let line_above = RANDOM_IN_WORKFLOW.replace(
        "        return random.random()",
        "        # uhrwerk: ignore[UW101] only used for jitter in a replay-tolerant branch\n        return random.random()",
    );
    assert!(lint_source("b.py", &line_above, &config).is_empty());

    let no_reason =
        RANDOM_IN_WORKFLOW.replace("return random.random()", "return random.random()  # uhrwerk: ignore[UW101]");
    let codes: Vec<_> = lint_source("c.py", &no_reason, &config).iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["UW101", "UW001"]);

    let wrong_code = RANDOM_IN_WORKFLOW
        .replace("return random.random()", "return random.random()  # uhrwerk: ignore[UW102] not this one");
    let codes: Vec<_> = lint_source("d.py", &wrong_code, &config).iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["UW101"]);

    let in_string = RANDOM_IN_WORKFLOW
        .replace("return random.random()", "return random.random() + len(\"# uhrwerk: ignore[UW101] x\")");
    let codes: Vec<_> = lint_source("e.py", &in_string, &config).iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["UW101"]);
}

#[test]
fn text_output_has_location_source_line_and_caret() {
    let diagnostics = lint_source("wf.py", RANDOM_IN_WORKFLOW, &Config::default());
    let text = output::render_text(&diagnostics[0]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("wf.py:8:16: error[UW101] "), "{text}");
    assert_eq!(lines[2], "8 |         return random.random()");
    assert_eq!(lines[3], "  |                ^^^^^^^^^^^^^^^");
    let summary = output::render_summary(&diagnostics, 1);
    assert!(summary.contains("UW101  nondeterministic-call"), "{summary}");
}

#[test]
fn json_output_shape() {
    let diagnostics = lint_source("wf.py", RANDOM_IN_WORKFLOW, &Config::default());
    let value: serde_json::Value = serde_json::from_str(&output::render_json(&diagnostics, 1)).expect("valid json");
    assert_eq!(value["files_checked"], 1);
    assert_eq!(value["summary"]["UW101"], 1);
    let first = &value["diagnostics"][0];
    assert_eq!(first["code"], "UW101");
    assert_eq!(first["name"], "nondeterministic-call");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["path"], "wf.py");
    assert_eq!(first["line"], 8);
    assert_eq!(first["column"], 16);
    assert_eq!(first["end_column"], 31);
}

#[test]
fn sarif_output_shape() {
    let diagnostics = lint_source("src/wf.py", RANDOM_IN_WORKFLOW, &Config::default());
    let value: serde_json::Value = serde_json::from_str(&output::render_sarif(&diagnostics)).expect("valid json");
    assert_eq!(value["version"], "2.1.0");
    let run = &value["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "uhrwerk-lint");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules array");
    assert_eq!(rules.len(), uhrwerk_lint::rules::RULES.len());
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "UW101");
    assert_eq!(result["level"], "error");
    let index = result["ruleIndex"].as_u64().expect("rule index") as usize;
    assert_eq!(rules[index]["id"], "UW101");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "src/wf.py");
    assert_eq!(location["region"]["startLine"], 8);
    assert_eq!(location["region"]["startColumn"], 16);
}

#[test]
fn bad_files_become_diagnostics_and_the_run_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a_syntax.py", "def broken(:\n    pass\n");
    write(dir.path(), "b_binary.py", [0x7f, b'E', b'L', b'F', 0, 0, 1, 2]);
    write(dir.path(), "c_latin1.py", b"x = '\xe9t\xe9'\n");
    write(dir.path(), "d_good.py", RANDOM_IN_WORKFLOW);
    write(dir.path(), "e_empty.py", "");
    write(dir.path(), "notes.txt", "not python");
    let (diagnostics, files) = lint_paths(&[dir.path().to_path_buf()], &Config::default()).expect("walk works");
    assert_eq!(files, 5);
    let codes: Vec<_> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["UW000", "UW002", "UW002", "UW101"], "{diagnostics:#?}");
    assert!(diagnostics[0].message.starts_with("syntax error"));
    assert!(diagnostics[1].message.contains("binary"));
    assert!(diagnostics[2].message.contains("UTF-8"));
}

#[test]
fn gitignored_files_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), ".gitignore", "generated/\n");
    write(dir.path(), "generated/wf.py", RANDOM_IN_WORKFLOW);
    write(dir.path(), "src/wf.py", RANDOM_IN_WORKFLOW);
    let (diagnostics, files) = lint_paths(&[dir.path().to_path_buf()], &Config::default()).expect("walk works");
    assert_eq!(files, 1);
    assert_eq!(diagnostics.len(), 1);
    assert!(diagnostics[0].path.ends_with("wf.py") && diagnostics[0].path.contains("src"));
}

#[test]
fn every_rule_has_an_explain_page_citing_its_section() {
    for rule in uhrwerk_lint::rules::RULES {
        assert!(rule.doc.starts_with(&format!("# {}", rule.code)), "{} doc heading", rule.code);
        if rule.section != "-" {
            assert!(
                rule.doc.contains(&format!("Chapter section: {}", rule.section)),
                "{} doc cites section",
                rule.code
            );
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join("src"), root.join("tests"), root.join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with("fixtures") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("readable source");
                assert!(text.starts_with("//!"), "{} must open with a //! line", path.display());
            }
        }
    }
}
