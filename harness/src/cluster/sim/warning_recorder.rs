//! The apiserver's warning recorder (`endpoints/filters/warning.go`): what
//! the client of one request receives of the warnings its admission and
//! registry recorded. A text is sent once; one with a control character is
//! dropped (it cannot be a header); once the texts pass 4096 characters in
//! all, every warning, those already sent included, is cut to 256.

use std::collections::HashSet;

/// Characters of warning text sent before the recorder starts truncating.
const TRUNCATE_AT_TOTAL: usize = 4 * 1024;
/// What each warning is cut to once truncating.
const TRUNCATE_ITEM: usize = 256;

/// The warnings of one request, as the client will see them.
#[derive(Debug, Default, Clone)]
pub struct WarningRecorder {
    seen: HashSet<String>,
    /// Every text recorded, in order (replayed when truncation starts).
    ordered: Vec<String>,
    /// The texts sent as `Warning` headers.
    sent: Vec<String>,
    written: usize,
    truncating: bool,
}

impl WarningRecorder {
    /// `warning.AddWarning` with the apiserver's rules.
    pub fn add(&mut self, text: &str) {
        if text.is_empty() || (self.truncating && self.written >= TRUNCATE_AT_TOTAL) {
            return;
        }
        if !self.seen.insert(text.to_string()) {
            return;
        }
        self.ordered.push(text.to_string());
        let mut text = text.to_string();
        if self.truncating {
            text = cut(&text);
        }
        if !sendable(&text) {
            return;
        }
        let runes = text.chars().count();
        if self.written + runes <= TRUNCATE_AT_TOTAL || self.truncating {
            self.written += runes;
            self.sent.push(text);
            return;
        }
        // Over the limit: start again with every warning cut short.
        self.truncating = true;
        self.written = 0;
        self.sent.clear();
        for text in self.ordered.iter().map(|t| cut(t)) {
            if sendable(&text) {
                self.written += text.chars().count();
                self.sent.push(text);
            }
        }
    }

    pub fn extend<I: IntoIterator<Item = String>>(&mut self, texts: I) {
        for t in texts {
            self.add(&t);
        }
    }

    /// The warnings sent, in order; the recorder starts empty again.
    pub fn take(&mut self) -> Vec<String> {
        let sent = std::mem::take(&mut self.sent);
        *self = Self::default();
        sent
    }
}

/// `NewWarningHeader` refuses text with control characters (Go's
/// `unicode.IsControl`, the Cc category, as Rust's `char::is_control`).
fn sendable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn cut(text: &str) -> String {
    text.chars().take(TRUNCATE_ITEM).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_sent_once_in_the_order_recorded() {
        let mut r = WarningRecorder::default();
        for t in ["b", "a", "b", "", "c"] {
            r.add(t);
        }
        assert_eq!(r.take(), ["b", "a", "c"]);
        assert!(r.take().is_empty(), "take starts a new request");
    }

    #[test]
    fn a_text_with_a_control_character_is_dropped_but_still_deduplicated() {
        let mut r = WarningRecorder::default();
        r.add("line one\nline two");
        r.add("tab\there");
        r.add("plain, with \"quotes\" and \\ and ü");
        assert_eq!(r.take(), ["plain, with \"quotes\" and \\ and ü"]);
    }

    #[test]
    fn past_4096_characters_every_warning_is_cut_to_256() {
        let mut r = WarningRecorder::default();
        let long = |c: char| c.to_string().repeat(1000);
        for c in ['a', 'b', 'c', 'd'] {
            r.add(&long(c));
        }
        // 4000 characters fit whole.
        assert_eq!(
            r.clone().take().iter().map(String::len).sum::<usize>(),
            4000
        );
        r.add(&long('e'));
        let sent = r.take();
        assert_eq!(sent.len(), 5);
        assert!(sent.iter().all(|t| t.chars().count() == 256));
        assert!(sent[0].starts_with('a') && sent[4].starts_with('e'));
    }

    #[test]
    fn once_truncating_and_past_the_limit_again_nothing_more_is_sent() {
        let mut r = WarningRecorder::default();
        for i in 0..40 {
            r.add(&format!("{i:03}{}", "x".repeat(300)));
        }
        let sent = r.take();
        // The 14th passes 4096 and all are cut to 256 (3584 in all);
        // the 16th reaches 4096 again, and the rest are not sent.
        assert_eq!(sent.len(), 16);
        assert!(sent[15].starts_with("015"));
    }
}
