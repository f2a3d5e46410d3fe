//! `ce-fake`: the Code Engine fake as a standalone server, for trying the
//! Code Engine backend by hand. Prints its base URL and project id.

#[tokio::main]
async fn main() {
    let fake = ce_fake::FakeCodeEngine::start(ce_fake::FakeConfig::default()).await;
    println!(
        "IAM and Code Engine v2 fake on {} (project {}, API key 'test-api-key')",
        fake.base_url(),
        fake.project_id()
    );
    let _ = tokio::signal::ctrl_c().await;
}
