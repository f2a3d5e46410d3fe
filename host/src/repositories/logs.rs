//! Build logs: each deployment's kept in a file under the data directory
//! (so it outlives the build and a host restart) and passed live to whoever
//! follows it (`GET /runtimes/{id}/build-logs?follow=true`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// A line of a build's log, or its end.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    Line(String),
    Done,
}

pub struct BuildLogs {
    dir: PathBuf,
    /// Builds under way: their followers.
    live: Mutex<HashMap<String, broadcast::Sender<LogEvent>>>,
}

impl BuildLogs {
    pub fn new(dir: PathBuf) -> BuildLogs {
        BuildLogs { dir, live: Mutex::default() }
    }

    fn file(&self, deployment: &str) -> PathBuf {
        self.dir.join(format!("{deployment}.log"))
    }

    /// A new build of `deployment`: its log starts empty.
    pub fn start(&self, deployment: &str) {
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = std::fs::write(self.file(deployment), "");
        self.live.lock().expect("build logs poisoned").insert(deployment.into(), broadcast::channel(1024).0);
    }

    /// Appends lines (already masked) to the log and to its followers.
    pub fn append(&self, deployment: &str, text: &str) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return;
        }
        if let Ok(mut file) = std::fs::OpenOptions::new().append(true).create(true).open(self.file(deployment)) {
            for line in &lines {
                let _ = writeln!(file, "{line}");
            }
        }
        if let Some(live) = self.live.lock().expect("build logs poisoned").get(deployment) {
            for line in lines {
                let _ = live.send(LogEvent::Line(line.to_string()));
            }
        }
    }

    /// The build is over: followers are told, the file stays.
    pub fn finish(&self, deployment: &str) {
        if let Some(live) = self.live.lock().expect("build logs poisoned").remove(deployment) {
            let _ = live.send(LogEvent::Done);
        }
    }

    /// The log so far, and the rest as it comes when the build is under way.
    pub fn read(&self, deployment: &str) -> (String, Option<broadcast::Receiver<LogEvent>>) {
        // Subscribe first: a line written between the two is then seen twice, never missed.
        let follow = self.live.lock().expect("build logs poisoned").get(deployment).map(|l| l.subscribe());
        (std::fs::read_to_string(self.file(deployment)).unwrap_or_default(), follow)
    }

    /// The last `n` lines, for an error message.
    pub fn tail(&self, deployment: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.file(deployment)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The deployment went: so does its log.
    pub fn remove(&self, deployment: &str) {
        let _ = std::fs::remove_file(self.file(deployment));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_kept_and_followed_until_the_build_ends() {
        let dir = tempfile::tempdir().unwrap();
        let logs = BuildLogs::new(dir.path().to_path_buf());
        logs.start("d1");
        logs.append("d1", "Step 1/2 : FROM scratch\n\n");
        let (so_far, follow) = logs.read("d1");
        assert_eq!(so_far, "Step 1/2 : FROM scratch\n");
        let mut follow = follow.expect("under way");
        logs.append("d1", "Step 2/2 : COPY x /x");
        logs.finish("d1");
        assert_eq!(follow.try_recv().unwrap(), LogEvent::Line("Step 2/2 : COPY x /x".into()));
        assert_eq!(follow.try_recv().unwrap(), LogEvent::Done);
        assert_eq!(logs.tail("d1", 1), "Step 2/2 : COPY x /x");
        assert!(logs.read("d1").1.is_none(), "nothing to follow once over");
        logs.remove("d1");
        assert_eq!(logs.read("d1").0, "");
    }
}
