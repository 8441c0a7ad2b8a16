//! Clients generated from `docs/openapi.json` by openapi-generator (`python`,
//! `typescript-fetch`), openapi-python-client and openapi-typescript each run the quickstart
//! flow against the live embedded server (`infra/generated-clients`, which installs the
//! generators itself). Part of the test suite, so `cargo test --workspace` runs it.

use std::process::Command;

#[test]
fn clients_generated_from_the_openapi_document_run_the_quickstart_flow() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("bash")
        .arg("infra/generated-clients")
        .current_dir(root)
        .env("KRAFTER_BIN", env!("CARGO_BIN_EXE_krafter"))
        .output()
        .expect("bash runs infra/generated-clients");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a generated client failed ({}):\n{}\n{report}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
    );
    for client in [
        "openapi-generator-python",
        "openapi-generator-typescript-fetch",
        "openapi-python-client",
        "openapi-typescript",
    ] {
        assert!(
            report.contains(&format!("PASS  {client}")),
            "{client} did not pass:\n{report}"
        );
    }
}
