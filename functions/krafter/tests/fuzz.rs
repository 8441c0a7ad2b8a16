//! The schemathesis fuzz of the live embedded server against `docs/openapi.json`
//! (`infra/fuzz-api`): no 5xx, every response as documented. Part of the test suite, so
//! `cargo test --workspace` (and `.ci/run`) runs it.

use std::process::Command;

#[test]
fn the_live_server_survives_a_schemathesis_fuzz_and_matches_its_openapi_document() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("bash")
        .arg("infra/fuzz-api")
        .current_dir(root)
        .env("KRAFTER_BIN", env!("CARGO_BIN_EXE_krafter"))
        .output()
        .expect("bash runs infra/fuzz-api");
    assert!(
        out.status.success(),
        "the fuzz failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
