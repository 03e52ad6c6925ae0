//! The JSON Schemas in `schemas/` are the ones the output types make, one per `--json`
//! output, and are themselves valid schemas. `UPDATE_SCHEMAS=1 cargo test -p odoo-deploy
//! --test json_schemas` rewrites them after a change of an output type (review the diff:
//! a removed or renamed field breaks the people who read the output).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("schemas")
}

#[test]
fn the_schema_files_are_the_ones_the_output_types_make() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let dir = dir();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    let mut names = BTreeSet::new();
    for documented in odoo_deploy::output::schemas() {
        names.insert(format!("{}.schema.json", documented.name));
        let path = dir.join(format!("{}.schema.json", documented.name));
        let text = documented.file_text();
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            jsonschema::meta::is_valid(&schema),
            "{} is not a valid JSON Schema",
            documented.name
        );
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run UPDATE_SCHEMAS=1 cargo test -p odoo-deploy --test json_schemas and review the diff): {stale:?}"
    );
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    let extra: Vec<_> = on_disk.difference(&names).collect();
    assert!(extra.is_empty(), "schemas of no output: {extra:?}");
}

/// The schemas are strict: a field no type declares fails, also inside an internally
/// tagged enum's variant (its tag beside a referenced struct).
#[test]
fn an_undocumented_field_fails_validation() {
    let schema = |name: &str| {
        let documented = odoo_deploy::output::schemas()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap();
        jsonschema::validator_for(&documented.schema()).unwrap()
    };
    let error = schema("error");
    assert!(error.is_valid(&serde_json::json!({ "error": "no", "exit_code": 2 })));
    assert!(!error.is_valid(&serde_json::json!({ "error": "no", "exit_code": 2, "surprise": 1 })));
    assert!(!error.is_valid(&serde_json::json!({ "exit_code": 2 })));

    let previous = schema("previous");
    let mut outcome = serde_json::json!({
        "strategy": "previous_release",
        "summary": "switched back to r1",
        "live_release": "r1",
        "duration_ms": 12,
        "detail": {
            "kind": "redeployed", "release": "r1", "method": "warm_switch",
            "warm_switch": true, "details": null
        }
    });
    let errors: Vec<String> = previous
        .iter_errors(&outcome)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    outcome["detail"]["surprise"] = serde_json::json!(1);
    assert!(!previous.is_valid(&outcome));
}
