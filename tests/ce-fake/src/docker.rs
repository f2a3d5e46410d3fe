//! Running app images on the local engine (when configured), so an app's
//! endpoint really answers. An image named by digest runs by that digest
//! when the engine has it (an image pushed to a registry, as Code Engine
//! would pull it) and by tag otherwise: a locally built image has no
//! registry digest.

use serde_json::Value;
use tokio::process::Command;

use crate::DockerRunner;

/// Starts the app's container; its `http://ip:port`, or why it could not run.
pub async fn run(runner: &DockerRunner, container: &str, app: &Value) -> Result<String, String> {
    let reference = app["image_reference"].as_str().unwrap_or_default();
    let image = match known(reference).await {
        true => reference,
        false => reference.split('@').next().unwrap_or(reference),
    };
    let port = app["image_port"].as_u64().filter(|p| *p > 0).unwrap_or(8080);
    let mut args: Vec<String> =
        vec!["run".into(), "-d".into(), "--name".into(), container.into(), "--network".into(), runner.network.clone()];
    for label in &runner.labels {
        args.extend(["--label".into(), label.clone()]);
    }
    for var in app["run_env_variables"].as_array().into_iter().flatten().filter(|v| v["type"] == "literal") {
        args.extend([
            "-e".into(),
            format!("{}={}", var["name"].as_str().unwrap_or_default(), var["value"].as_str().unwrap_or_default()),
        ]);
    }
    args.extend(["-e".into(), format!("PORT={port}")]);
    // run_commands replaces the image's entrypoint; run_arguments, its arguments.
    let strings = |key: &str| -> Vec<String> {
        app[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
    };
    let (commands, arguments) = (strings("run_commands"), strings("run_arguments"));
    if let Some(entrypoint) = commands.first() {
        args.extend(["--entrypoint".into(), entrypoint.clone()]);
    }
    args.push(image.to_string());
    args.extend(commands.into_iter().skip(1));
    args.extend(arguments);
    let out = Command::new("docker").args(&args).output().await.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
    let out = Command::new("docker")
        .args(["inspect", container, "--format", format])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("http://{}:{port}", String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether the local engine has the image `reference` names.
async fn known(reference: &str) -> bool {
    let inspected = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]).output().await;
    inspected.is_ok_and(|out| out.status.success())
}

pub async fn remove(container: &str) {
    let _ = Command::new("docker").args(["rm", "-f", container]).output().await;
}

/// Tags `source` as `target` (a build's output, without pushing anywhere).
pub async fn tag(source: &str, target: &str) {
    let _ = Command::new("docker").args(["tag", source, target]).output().await;
}

/// The container's last `tail` output lines (stdout and stderr).
pub async fn logs(container: &str, tail: u64) -> Vec<String> {
    let out = Command::new("docker").args(["logs", "--tail", &tail.to_string(), container]).output().await;
    out.map(|o| {
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        text.lines().map(String::from).collect()
    })
    .unwrap_or_default()
}
