//! Hostile input for the linter: arbitrary text, and the chapter's fixtures cut, spliced and
//! sprinkled with tokens; `lint_source` answers every one (a file that does not parse is a
//! diagnostic, not a panic) and reports lines that exist.

use proptest::prelude::*;
use uhrwerk_lint::{Config, lint_source};

fn fixtures() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chapter");
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("fixtures").flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .map(|p| std::fs::read_to_string(p).expect("a fixture"))
        .collect()
}

const TOKENS: &[&str] = &[
    "@workflow.defn\n",
    "@workflow.run\n",
    "async def run(self, *a, **k):\n",
    "await workflow.execute_activity(",
    ")))",
    "(((",
    "\n    ",
    "\t",
    "\"\"\"",
    "'",
    "lambda: ",
    "import random, time, datetime\n",
    "class X(",
    "\\\n",
    "\u{0}",
    "🦀",
    "workflow.sleep(",
    "match x:\n case _:\n",
    "f\"{",
];

/// A fixture with `edits` applied: cuts, duplications and inserted tokens at byte offsets
/// (moved to character boundaries).
fn mutate(source: &str, edits: &[(u8, usize, usize)]) -> String {
    let mut text = source.to_string();
    for &(kind, at, arg) in edits {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        match kind % 3 {
            0 => {
                let mut end = (at + arg % 200).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            }
            1 => {
                let mut end = (at + arg % 400).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let copy = text[at..end].to_string();
                text.insert_str(at, &copy);
            }
            _ => text.insert_str(at, TOKENS[arg % TOKENS.len()]),
        }
    }
    text
}

fn check(source: &str) {
    let lines = source.lines().count().max(1);
    for d in lint_source("fuzz.py", source, &Config::default()) {
        assert!(d.line >= 1 && d.line <= lines + 1, "a diagnostic on line {} of {lines}: {d:?}", d.line);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_answered(source in "\\PC{0,400}") {
        check(&source);
    }

    #[test]
    fn mutated_chapter_fixtures_are_answered(
        index in 0usize..64,
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..12),
    ) {
        let fixtures = fixtures();
        let source = mutate(&fixtures[index % fixtures.len()], &edits);
        check(&source);
    }
}
