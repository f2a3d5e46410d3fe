//! Git repositories served on loopback the way a Git host serves them:
//! `git http-backend` behind a small CGI bridge. Repositories under
//! `private/` need the token (HTTP Basic, any user, the token as password);
//! ones under `slow/` answer only after a long pause (to cancel a build mid-way).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response, StatusCode};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

pub struct GitServer {
    /// `http://127.0.0.1:<port>`: the base URL `repo: org/name` is relative to.
    pub base: String,
    pub token: String,
    root: tempfile::TempDir,
}

struct Served {
    repos: PathBuf,
    token: String,
}

impl GitServer {
    pub async fn start(token: &str) -> GitServer {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("repos")).unwrap();
        let served = Arc::new(Served { repos: root.path().join("repos"), token: token.into() });
        let app = axum::Router::new().fallback(serve).with_state(served);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        GitServer { base, token: token.into(), root }
    }

    fn work(&self, name: &str) -> PathBuf {
        self.root.path().join("work").join(name)
    }

    /// A new repository `name` (`org/repo`) with `files` committed on `main`; the commit.
    pub fn create(&self, name: &str, files: &[(&str, Vec<u8>)]) -> String {
        let bare = self.root.path().join("repos").join(format!("{name}.git"));
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        let work = self.work(name);
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        self.commit(name, files)
    }

    /// Another commit on `main` with `files` written (over what is there); the commit.
    pub fn commit(&self, name: &str, files: &[(&str, Vec<u8>)]) -> String {
        let work = self.work(name);
        for (path, content) in files {
            let file = work.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, content).unwrap();
            if path.ends_with("mcp-fixture") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        git(&work, &["add", "-A"]);
        git(&work, &["-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "change"]);
        git(&work, &["push", "-q", "origin", "main", "--tags"]);
        git(&work, &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Where the bare repository `name` lives (for serving it another way).
    pub fn bare(&self, name: &str) -> PathBuf {
        self.root.path().join("repos").join(format!("{name}.git"))
    }

    pub fn tag(&self, name: &str, tag: &str) {
        let work = self.work(name);
        git(&work, &["tag", tag]);
        git(&work, &["push", "-q", "origin", tag]);
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").current_dir(dir).args(args).env("GIT_CONFIG_NOSYSTEM", "1").output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    use base64::Engine;
    let Some(basic) = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic).unwrap_or_default();
    String::from_utf8_lossy(&decoded).split_once(':').is_some_and(|(_, password)| password == token)
}

/// One request through `git http-backend` (CGI).
async fn serve(State(served): State<Arc<Served>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    if path.starts_with("/private/") && !authorized(&parts.headers, &served.token) {
        let mut answer = Response::new(Body::from("authentication required"));
        *answer.status_mut() = StatusCode::UNAUTHORIZED;
        answer.headers_mut().insert("www-authenticate", "Basic realm=\"git\"".parse().unwrap());
        return answer;
    }
    if path.starts_with("/slow/") {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    let body: Bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &served.repos)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", header("content-type"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cgi.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.unwrap();
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| out.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, gap)) = split else {
        let mut answer = Response::new(Body::from("bad CGI answer"));
        *answer.status_mut() = StatusCode::BAD_GATEWAY;
        return answer;
    };
    let mut answer = Response::new(Body::from(out.stdout[at + gap..].to_vec()));
    for line in String::from_utf8_lossy(&out.stdout[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(500);
            *answer.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (name.parse::<axum::http::HeaderName>(), value.parse()) {
            answer.headers_mut().insert(name, value);
        }
    }
    answer
}

/// The commit `main` of `name` is at.
pub fn head_of(git: &GitServer, name: &str) -> String {
    self::git(&git.work(name), &["rev-parse", "HEAD"]).trim().to_string()
}

fn fixture_binary() -> Vec<u8> {
    let binary = super::repo_root().join("target/x86_64-unknown-linux-gnu/release/mcp-fixture");
    std::fs::read(&binary).unwrap_or_else(|e| panic!("{}: {e} (run `make fixture`)", binary.display()))
}

/// The fixture as a repository: a Dockerfile with a build argument, a
/// multi-stage one under `server/`, and one that cannot build.
pub fn fixture_repo() -> Vec<(&'static str, Vec<u8>)> {
    let plain = "FROM scratch\nARG FLAVOUR=plain\nLABEL flavour=$FLAVOUR\nCOPY mcp-fixture /mcp-fixture\nENTRYPOINT [\"/mcp-fixture\"]\n";
    let staged = "FROM scratch AS tools\nCOPY bin/mcp-fixture /staged/mcp-fixture\n\
                  FROM scratch AS server\nCOPY --from=tools /staged/mcp-fixture /mcp-fixture\nENTRYPOINT [\"/mcp-fixture\"]\n\
                  FROM scratch AS broken\nCOPY nothing-here /x\n";
    vec![
        ("Dockerfile", plain.into()),
        ("mcp-fixture", fixture_binary()),
        ("server/Dockerfile", staged.into()),
        ("server/bin/mcp-fixture", fixture_binary()),
        ("Broken.Dockerfile", "FROM scratch\nCOPY README.md /first-step\nCOPY does-not-exist /x\n".into()),
        ("README.md", "A fixture MCP server.\n".into()),
    ]
}
