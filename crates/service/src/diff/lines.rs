//! The line diff of two sources, as a unified diff (the `similar` crate).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use similar::{ChangeTag, TextDiff};

/// Lines of context around each change in the unified text.
const CONTEXT: usize = 3;

/// Past this the diff gives up on a minimal script and approximates: the
/// texts are authors' (up to 1 MiB each), the time is the host's.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How a source changed, line by line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDiff {
    /// The unified diff (`--- before`, `+++ after`, hunks with 3 lines
    /// of context).
    pub unified: String,
    /// Lines only the after text has.
    pub lines_added: u64,
    /// Lines only the before text has.
    pub lines_removed: u64,
}

/// The line diff from `before` to `after`, headed with their labels
/// (e.g. `echo@1`, `echo@2`); `None` when the texts are equal.
pub fn line_diff(before: &str, after: &str, labels: (&str, &str)) -> Option<SourceDiff> {
    line_diff_until(before, after, labels, Instant::now() + TIMEOUT)
}

/// [`line_diff`], minimal only until `deadline`, approximate after it.
pub(crate) fn line_diff_until(
    before: &str,
    after: &str,
    labels: (&str, &str),
    deadline: Instant,
) -> Option<SourceDiff> {
    if before == after {
        return None;
    }
    let diff = TextDiff::configure()
        .deadline(deadline)
        .diff_lines(before, after);
    let (mut lines_added, mut lines_removed) = (0u64, 0u64);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => lines_added += 1,
            ChangeTag::Delete => lines_removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let unified = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header(labels.0, labels.1)
        .to_string();
    Some(SourceDiff {
        unified,
        lines_added,
        lines_removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str =
        "(module\n  (func (export \"aifn_call\") (result i32)\n    (i32.const 0)))\n";

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(line_diff(BEFORE, BEFORE, ("f@1", "f@2")), None);
        assert_eq!(line_diff("", "", ("f@1", "f@2")), None);
        // Pair: a one-character change is a diff.
        assert!(line_diff(BEFORE, &BEFORE.replace('0', "1"), ("f@1", "f@2")).is_some());
    }

    #[test]
    fn a_changed_line_is_one_removed_and_one_added() {
        let after = BEFORE.replace("(i32.const 0)", "(i32.const 7)");
        let d = line_diff(BEFORE, &after, ("f@1", "f@2")).expect("differs");
        assert_eq!((d.lines_added, d.lines_removed), (1, 1));
        assert!(
            d.unified.starts_with("--- f@1\n+++ f@2\n@@ "),
            "{}",
            d.unified
        );
        assert!(
            d.unified.contains("-    (i32.const 0)))\n"),
            "{}",
            d.unified
        );
        assert!(
            d.unified.contains("+    (i32.const 7)))\n"),
            "{}",
            d.unified
        );
        // Unchanged lines are context, not changes.
        assert!(d.unified.contains("\n (module\n"), "{}", d.unified);
    }

    #[test]
    fn added_and_removed_lines_are_counted_apart() {
        let added = format!("{BEFORE};; a comment\n;; and another\n");
        let d = line_diff(BEFORE, &added, ("a", "b")).expect("differs");
        assert_eq!((d.lines_added, d.lines_removed), (2, 0));
        let d = line_diff(&added, BEFORE, ("b", "a")).expect("differs");
        assert_eq!((d.lines_added, d.lines_removed), (0, 2));
        // From nothing: every line is added.
        let d = line_diff("", BEFORE, ("none", "f@1")).expect("differs");
        assert_eq!((d.lines_added, d.lines_removed), (3, 0));
    }

    #[test]
    fn far_apart_changes_are_separate_hunks() {
        let before: String = (0..40).map(|i| format!("line {i}\n")).collect();
        let after = before
            .replace("line 2\n", "line two\n")
            .replace("line 35\n", "line thirty-five\n");
        let d = line_diff(&before, &after, ("a", "b")).expect("differs");
        assert_eq!(d.unified.matches("\n@@ ").count(), 2, "{}", d.unified);
        assert!(!d.unified.contains("line 20\n"), "{}", d.unified);
    }
}
