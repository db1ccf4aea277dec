//! The bad-input table (testdata/bad-input.yaml): every invalid manifest is
//! refused offline with exactly the error text the table gives.

use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    manifest: String,
    render: String,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/bad-input.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_bad_manifest_gets_its_exact_error() {
    let cases = cases();
    assert!(cases.len() >= 20, "the table must keep at least 20 cases");
    let mut failures = Vec::new();
    for case in &cases {
        match magnetar_desired::render::render(&[("bad.yaml".into(), case.manifest.clone())]) {
            Ok(r) => failures.push(format!("{}: rendered {} objects instead of failing", case.name, r.objects.len())),
            Err(e) if e.to_string() != case.render => {
                failures.push(format!("{}:\n  want {}\n  got  {}", case.name, case.render, e))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
