//! Reading what a server writes: newline-delimited messages (stdio) and
//! server-sent events (HTTP+SSE), with over-long lines dropped.

use super::MAX_LINE;

/// One server-sent event being read: its type and data lines.
#[derive(Default)]
pub(super) struct SseEvent {
    kind: String,
    data: Vec<String>,
}

impl SseEvent {
    /// Takes one line; a complete event (type, data) at the blank line that ends it.
    pub(super) fn push(&mut self, line: &[u8]) -> Option<(String, String)> {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            let event = (std::mem::take(&mut self.kind), std::mem::take(&mut self.data).join("\n"));
            return (!event.1.is_empty()).then_some(event);
        }
        match line.split_once(':') {
            Some(("event", value)) => self.kind = value.trim_start().to_string(),
            Some(("data", value)) => self.data.push(value.strip_prefix(' ').unwrap_or(value).to_string()),
            _ => {}
        }
        None
    }
}

/// Splits a byte stream into lines, dropping any longer than `MAX_LINE`.
#[derive(Default)]
pub(super) struct LineBuffer {
    partial: Vec<u8>,
    /// Inside an over-long line: skip to its end.
    skipping: bool,
}

impl LineBuffer {
    pub(super) fn push(&mut self, bytes: &[u8], deployment: &str) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let ends = chunk.last() == Some(&b'\n');
            let body = if ends { &chunk[..chunk.len() - 1] } else { chunk };
            if !self.skipping {
                self.partial.extend_from_slice(body);
                if self.partial.len() > MAX_LINE {
                    tracing::warn!(deployment, "dropped a line longer than {} MiB from stdout", MAX_LINE >> 20);
                    self.partial = Vec::new();
                    self.skipping = true;
                }
            }
            if ends {
                if !self.skipping {
                    let mut line = std::mem::take(&mut self.partial);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    lines.push(line);
                }
                self.partial.clear();
                self.skipping = false;
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_frames_and_long_ones_dropped() {
        let mut buffer = LineBuffer::default();
        assert!(buffer.push(b"{\"a\":", "t").is_empty());
        let lines = buffer.push(b"1}\n{\"b\":2}\r\n\n{\"c\"", "t");
        assert_eq!(lines, [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec(), Vec::new()]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(buffer.push(&long, "t").is_empty(), "the over-long line is dropped, with what came before it");
        assert!(buffer.push(b"still the long one", "t").is_empty());
        assert_eq!(buffer.push(b"\n{\"d\":4}\n", "t"), [b"{\"d\":4}".to_vec()], "the next line reads normally");
    }

    #[test]
    fn server_sent_events_are_read_by_type() {
        let mut event = SseEvent::default();
        let mut seen = Vec::new();
        for line in ["event: endpoint", "data: /messages?id=1", "", ": a comment", "data: {\"a\":1}", ""] {
            seen.extend(event.push(line.as_bytes()));
        }
        assert_eq!(seen, [("endpoint".into(), "/messages?id=1".into()), (String::new(), "{\"a\":1}".into())]);
    }
}
