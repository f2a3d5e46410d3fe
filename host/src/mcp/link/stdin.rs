//! The server's stdin, shared by every caller of a link. Lines sent while
//! another caller's write is under way are written together by the next
//! writer: one write carries them all through the container engine (each
//! write crosses the engine and the container's shim, a wake-up each), so
//! concurrent callers cost fewer hops, and a lone caller writes at once.

use std::sync::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};

pub type Stdin = std::pin::Pin<Box<dyn AsyncWrite + Send>>;

pub struct SharedStdin {
    stdin: tokio::sync::Mutex<Stdin>,
    /// Lines waiting for a writer.
    queued: Mutex<Vec<u8>>,
}

impl SharedStdin {
    pub fn new(stdin: Stdin) -> SharedStdin {
        SharedStdin { stdin: tokio::sync::Mutex::new(stdin), queued: Mutex::default() }
    }

    /// Writes `line` (newline included), alone or with others queued meanwhile;
    /// returns once it has been written.
    pub async fn send(&self, line: &[u8]) -> std::io::Result<()> {
        self.queued.lock().expect("stdin queue poisoned").extend_from_slice(line);
        let mut stdin = self.stdin.lock().await;
        // The writer before this one may have taken this line with its own.
        let batch = std::mem::take(&mut *self.queued.lock().expect("stdin queue poisoned"));
        if batch.is_empty() {
            return Ok(());
        }
        stdin.write_all(&batch).await?;
        stdin.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn concurrent_lines_all_arrive_whole() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let stdin = Arc::new(SharedStdin::new(Box::pin(ours)));
        let senders: Vec<_> = (0..50)
            .map(|i| {
                let stdin = stdin.clone();
                tokio::spawn(async move { stdin.send(format!("line {i}\n").as_bytes()).await })
            })
            .collect();
        let reader = tokio::spawn(async move {
            let mut text = String::new();
            while text.lines().count() < 50 {
                let mut buffer = [0u8; 256];
                let n = theirs.read(&mut buffer).await.unwrap();
                text.push_str(std::str::from_utf8(&buffer[..n]).unwrap());
            }
            text
        });
        for sent in senders {
            sent.await.unwrap().unwrap();
        }
        let mut lines: Vec<String> = reader.await.unwrap().lines().map(String::from).collect();
        lines.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
        assert_eq!(lines, (0..50).map(|i| format!("line {i}")).collect::<Vec<_>>());
    }
}
