//! Positions in a file's text: byte offset → line and column.

/// Start offsets of every line, for turning byte offsets into lines.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of `text`.
    #[must_use]
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Self { starts }
    }

    /// 1-based line and 1-based column (in characters, a leading byte order mark not
    /// counted) of a byte offset. `offset` must be on a character boundary of `text`.
    #[must_use]
    pub fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let mut start = self.starts[line];
        if start == 0 && text.starts_with('\u{feff}') && offset >= 3 {
            start = 3;
        }
        let column = text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line + 1, column)
    }

    /// 1-based line of a byte offset.
    #[must_use]
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// Byte offset where a 1-based line starts, if the text has that line.
    #[must_use]
    pub fn start(&self, line: usize) -> Option<usize> {
        self.starts.get(line.checked_sub(1)?).copied()
    }
}

/// 1-based line of a byte offset, for the rare messages (findings use [`LineIndex`]).
#[must_use]
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns() {
        let text = "ab\ncé d\n\nx";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line_column(text, 0), (1, 1));
        assert_eq!(idx.line_column(text, 3), (2, 1));
        // 'd' is after the two-byte 'é': byte 7, character column 4.
        assert_eq!(idx.line_column(text, 7), (2, 4));
        assert_eq!(idx.line_column(text, 9), (3, 1));
        assert_eq!(idx.line_column(text, 10), (4, 1));
        assert_eq!(idx.line(10), 4);
    }

    #[test]
    fn bom_is_not_a_column() {
        let text = "\u{feff}FROM a";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line_column(text, 3), (1, 1));
        assert_eq!(idx.line_column(text, 8), (1, 6));
    }
}
