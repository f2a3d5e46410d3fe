//! The standalone bridge's one server: a process it starts itself, its
//! stdin and stdout piped to the link and its stderr passed through (the
//! platform's log collects it). The link opens once; when the process ends,
//! so does the bridge (`main`), and the platform's restart policy starts both again.

use futures_util::future::BoxFuture;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::link::{Connector, Link, LinkError, Output, Target};
use crate::Spawner;

/// Bytes read from the server's stdout at a time.
const READ_CHUNK: usize = 64 << 10;

/// The name the standalone bridge's server goes by (`stdio://server`).
pub const SERVER: &str = "server";

pub struct ChildProcess {
    pipes: Mutex<Option<(ChildStdin, ChildStdout)>>,
}

impl ChildProcess {
    /// Starts `command` (a program and its arguments) with piped stdin and stdout.
    pub fn spawn(command: &[String]) -> std::io::Result<(ChildProcess, Child)> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command to run"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok((ChildProcess { pipes: Mutex::new(Some((stdin, stdout))) }, child))
    }
}

impl Connector for ChildProcess {
    fn open<'a>(
        &'a self,
        tasks: &'a dyn Spawner,
        key: &'a str,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<Arc<Link>, LinkError>> {
        // A second opening means the first link's process ended: there is no other.
        let pipes = self.pipes.lock().expect("pipes poisoned").take();
        Box::pin(async move {
            let (stdin, stdout) = pipes.ok_or(LinkError::Ended)?;
            Ok(Link::over_stdio(tasks, key, target, Box::pin(stdin), Box::pin(read_chunks(stdout))))
        })
    }
}

/// The server's stdout as chunks, ending with the process.
fn read_chunks(stdout: ChildStdout) -> impl futures_util::Stream<Item = Result<Output, String>> + Send {
    futures_util::stream::unfold(stdout, |mut stdout| async move {
        let mut chunk = vec![0u8; READ_CHUNK];
        match stdout.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(Output::Stdout(chunk.into())), stdout))
            }
            Err(e) => Some((Err(e.to_string()), stdout)),
        }
    })
}
