//! How a package is built, written down before anything runs: the files
//! and the shell script of each step (making the lock, installing from it)
//! and the configuration the image runs with. The engine work is the
//! `source` capability's; nothing here runs anything.

use super::{BuildersConfig, Ecosystem, Lock, PackageRequest};

/// Where the build's inputs go (removed before the image is committed),
/// and where the package is installed.
pub const BUILD_DIR: &str = "/build";
pub const APP_DIR: &str = "/app";
/// The user the image runs as (the base images' `mcp`).
pub const RUN_AS: &str = "10001:10001";

/// One container's work: files placed before it starts, the script it runs,
/// and the file it leaves for the host to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Absolute paths.
    pub files: Vec<(String, Vec<u8>)>,
    pub script: String,
    pub output: Option<String>,
}

pub struct Recipe<'a> {
    pub package: &'a PackageRequest<'a>,
    /// The ecosystem's index, ending in `/`.
    pub index: String,
    /// The egress proxy the build reaches the index through.
    pub proxy: String,
    /// A PEM bundle to trust besides the base image's.
    pub ca_bundle: Option<Vec<u8>>,
}

/// `'…'`, safe in any shell word.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Recipe<'_> {
    pub fn new<'a>(
        package: &'a PackageRequest<'a>,
        config: &BuildersConfig,
        proxy: String,
    ) -> std::io::Result<Recipe<'a>> {
        let ca_bundle = config.ca_bundle.as_ref().map(std::fs::read).transpose()?;
        Ok(Recipe { package, index: config.ecosystem(package.ecosystem).index, proxy, ca_bundle })
    }

    fn ca_path(&self) -> Option<String> {
        self.ca_bundle.as_ref().map(|_| format!("{BUILD_DIR}/ca.pem"))
    }

    fn common_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        if let (Some(path), Some(pem)) = (self.ca_path(), &self.ca_bundle) {
            files.push((path, pem.clone()));
        }
        if self.package.ecosystem == Ecosystem::Npm {
            files.push((format!("{BUILD_DIR}/.npmrc"), self.npmrc().into_bytes()));
            let manifest = serde_json::json!({
                "name": "mcp-runtime-package-build",
                "private": true,
                "dependencies": { self.package.name: self.package.version },
            });
            files.push((format!("{BUILD_DIR}/package.json"), manifest.to_string().into_bytes()));
        }
        files
    }

    fn npmrc(&self) -> String {
        let mut rc = format!(
            "registry={}\nreplace-registry-host=always\nomit-lockfile-registry-resolved=true\nproxy={p}\nhttps-proxy={p}\naudit=false\nfund=false\nupdate-notifier=false\ncache={BUILD_DIR}/npm-cache\nignore-scripts={}\n",
            self.index,
            !self.package.allow_install_scripts,
            p = self.proxy,
        );
        if let Some(ca) = self.ca_path() {
            rc.push_str(&format!("cafile={ca}\n"));
        }
        rc
    }

    /// pip's options for reaching the index.
    fn pip_index_options(&self) -> String {
        let mut options = format!("--index-url {} --proxy {}", quote(&self.index), quote(&self.proxy));
        if let Ok(url) = reqwest::Url::parse(&self.index) {
            if url.scheme() == "http" {
                // A plain-HTTP mirror: pip refuses it unless told to trust it.
                options.push_str(&format!(" --trusted-host {}", quote(url.host_str().unwrap_or_default())));
            }
        }
        if let Some(ca) = self.ca_path() {
            options.push_str(&format!(" --cert {ca}"));
        }
        if !self.package.allow_install_scripts {
            options.push_str(" --only-binary=:all:");
        }
        options
    }

    fn python_requirement(&self) -> String {
        match self.package.extras {
            [] => format!("{}=={}", self.package.name, self.package.version),
            extras => format!("{}[{}]=={}", self.package.name, extras.join(","), self.package.version),
        }
    }

    /// Resolves the tree and leaves the lock in `output`.
    pub fn lock_step(&self) -> Step {
        let (script, output) = match self.package.ecosystem {
            Ecosystem::Npm => (
                format!(
                    "set -e\ncd {BUILD_DIR}\nnpm install --userconfig {BUILD_DIR}/.npmrc --package-lock-only --omit=dev\n"
                ),
                format!("{BUILD_DIR}/package-lock.json"),
            ),
            Ecosystem::Pypi => (
                format!(
                    "set -e\npython3 -m venv {BUILD_DIR}/venv\n{BUILD_DIR}/venv/bin/pip --disable-pip-version-check install --dry-run --ignore-installed --report {BUILD_DIR}/report.json {} {}\n",
                    self.pip_index_options(),
                    quote(&self.python_requirement()),
                ),
                format!("{BUILD_DIR}/report.json"),
            ),
        };
        Step { files: self.common_files(), script, output: Some(output) }
    }

    /// Installs exactly the lock's tree into `APP_DIR`, checks the
    /// executable is there, and leaves nothing of the build behind.
    pub fn install_step(&self, lock: &Lock, bin: &str) -> Step {
        let mut files = self.common_files();
        let (script, executable) = match self.package.ecosystem {
            Ecosystem::Npm => {
                files.push((format!("{BUILD_DIR}/package-lock.json"), lock.document.clone().into_bytes()));
                (
                    format!(
                        "set -e\nmkdir -p {APP_DIR}\ncp {BUILD_DIR}/package.json {BUILD_DIR}/package-lock.json {APP_DIR}/\ncd {APP_DIR}\nnpm ci --userconfig {BUILD_DIR}/.npmrc --omit=dev\n"
                    ),
                    format!("{APP_DIR}/node_modules/.bin/{bin}"),
                )
            }
            Ecosystem::Pypi => {
                files.push((format!("{BUILD_DIR}/requirements.txt"), lock.document.clone().into_bytes()));
                (
                    format!(
                        "set -e\npython3 -m venv {APP_DIR}\n{APP_DIR}/bin/pip --disable-pip-version-check install --no-cache-dir --no-deps --require-hashes {} -r {BUILD_DIR}/requirements.txt\n",
                        self.pip_index_options(),
                    ),
                    format!("{APP_DIR}/bin/{bin}"),
                )
            }
        };
        let script = format!(
            "{script}if [ ! -e {exe} ]; then echo \"mcp-runtime: the package installed no executable {name}\" >&2; exit 3; fi\nrm -rf {BUILD_DIR}\n",
            exe = quote(&executable),
            name = quote(bin),
        );
        Step { files, script, output: None }
    }

    /// What the image runs: the executable, as the non-root user, with
    /// HOME (and so every cache) under the writable `/tmp`.
    pub fn entrypoint(&self, bin: &str) -> Vec<String> {
        match self.package.ecosystem {
            Ecosystem::Npm => vec![format!("{APP_DIR}/node_modules/.bin/{bin}")],
            Ecosystem::Pypi => vec![format!("{APP_DIR}/bin/{bin}")],
        }
    }

    pub fn env(&self) -> Vec<String> {
        let mut env = vec!["HOME=/tmp".to_string()];
        match self.package.ecosystem {
            Ecosystem::Npm => env.push("NODE_ENV=production".into()),
            Ecosystem::Pypi => env.extend(["PYTHONDONTWRITEBYTECODE=1".into(), "PYTHONUNBUFFERED=1".into()]),
        }
        env
    }
}

/// Exit status of the install script when the executable is missing.
pub const NO_EXECUTABLE: i64 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn package(ecosystem: Ecosystem, allow_install_scripts: bool) -> PackageRequest<'static> {
        PackageRequest { ecosystem, name: "srv", version: "1.0.0", bin: None, extras: &[], allow_install_scripts }
    }

    fn recipe<'a>(package: &'a PackageRequest<'a>) -> Recipe<'a> {
        Recipe {
            package,
            index: "http://127.0.0.1:4873/".into(),
            proxy: "http://172.18.0.1:3128".into(),
            ca_bundle: None,
        }
    }

    #[test]
    fn scripts_stay_off_unless_allowed() {
        let npm = package(Ecosystem::Npm, false);
        let rc = String::from_utf8(recipe(&npm).lock_step().files[0].1.clone()).unwrap();
        assert!(rc.contains("ignore-scripts=true") && rc.contains("https-proxy=http://172.18.0.1:3128"), "{rc}");
        let allowed = package(Ecosystem::Npm, true);
        let rc = String::from_utf8(recipe(&allowed).lock_step().files[0].1.clone()).unwrap();
        assert!(rc.contains("ignore-scripts=false"), "{rc}");
        let pypi = package(Ecosystem::Pypi, false);
        let step = recipe(&pypi).lock_step();
        assert!(step.script.contains("--only-binary=:all:") && step.script.contains("--trusted-host '127.0.0.1'"));
        assert!(step.script.contains("'srv==1.0.0'"), "{}", step.script);
        assert!(!recipe(&package(Ecosystem::Pypi, true)).lock_step().script.contains("--only-binary"));
    }

    #[test]
    fn installs_pin_and_clean_up() {
        let pypi = package(Ecosystem::Pypi, false);
        let lock = Lock::from_pip_report(
            r#"{"install": [{"metadata": {"name": "srv", "version": "1.0.0"}, "download_info": {"archive_info": {"hashes": {"sha256": "ab"}}}}]}"#,
            "base",
        )
        .unwrap();
        let step = recipe(&pypi).install_step(&lock, "it's");
        assert!(step.script.contains("--require-hashes") && step.script.contains("--no-deps"));
        assert!(step.script.contains(r"'/app/bin/it'\''s'"), "quoted: {}", step.script);
        assert!(step.script.trim_end().ends_with("rm -rf /build"));
        assert_eq!(step.files.last().unwrap().1, b"srv==1.0.0 --hash=sha256:ab\n");
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
