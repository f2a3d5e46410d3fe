//! A damaged store, met through the binary as an operator meets it: the
//! host refuses to start, naming the file and `store check`; `store check`
//! reports it and exits non-zero; the file is left as it was found.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary on `data_dir`; one still running after a minute (a host
/// that started after all) is killed, and the test fails on its output.
fn binary(data_dir: &std::path::Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-runtime"))
        .args(args)
        .env("RUNTIME_DATA_DIR", data_dir)
        .env("RUNTIME_LISTEN", "127.0.0.1:0")
        .env("JWT_SECRET_KEY", "store-damage-test-secret-of-at-least-32-characters")
        .env("RUNTIME_DOCKER_SOCKET", "/nonexistent/docker.sock")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[test]
fn a_damaged_store_stops_the_host_by_name_and_store_check_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    // A sound store first: `store check` finds it so.
    let store = dir.path().join(mcp_runtime::store::FILE_NAME);
    drop(mcp_runtime::store::Store::open(&store).unwrap());
    let sound = binary(dir.path(), &["store", "check"]);
    assert!(sound.status.success(), "{sound:?}");
    assert!(String::from_utf8_lossy(&sound.stdout).ends_with("runtime.redb: sound\n"), "{sound:?}");

    // Cut short, as a full disk or a bad copy leaves it.
    let size = std::fs::metadata(&store).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&store).unwrap().set_len(size / 3).unwrap();
    let damaged = std::fs::read(&store).unwrap();

    let serve = binary(dir.path(), &["serve"]);
    let said = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "a host started on a damaged store: {said}");
    assert!(said.contains(&store.display().to_string()) && said.contains("mcp-runtime store check"), "{said}");
    assert!(!said.contains("panicked"), "{said}");

    let checked = binary(dir.path(), &["store", "check"]);
    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    assert!(String::from_utf8_lossy(&checked.stdout).contains("runtime.redb: damaged"), "{checked:?}");
    assert_eq!(std::fs::read(&store).unwrap(), damaged, "nothing replaced or emptied the file");
}

/// Damage deep in the file, where opening alone reads nothing: found at
/// start by redb's integrity check (on a copy), the file left as it was.
#[test]
fn damage_deep_in_the_file_stops_the_host_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(mcp_runtime::store::FILE_NAME);
    {
        let store = mcp_runtime::store::Store::open(&path).unwrap();
        let events: Vec<_> = (0..3000)
            .map(|n| {
                let data = mcp_runtime::events::EventData::HealthRecovered(Default::default());
                mcp_runtime::events::NewEvent::for_deployment(&format!("deployment-{n}"), data)
            })
            .collect();
        store.write_all(Vec::new(), events).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    // A few bytes in every page of the middle half: live pages among them.
    let (from, to) = (bytes.len() / 4, 3 * bytes.len() / 4);
    for page in (from..to).step_by(4096) {
        bytes[page + 64..page + 80].fill(0xa5);
    }
    std::fs::write(&path, &bytes).unwrap();

    let serve = binary(dir.path(), &["serve"]);
    let said = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "a host started on a damaged store: {said}");
    assert!(said.contains(&path.display().to_string()) && said.contains("damaged"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing repaired unasked");
}
