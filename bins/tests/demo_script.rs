//! The README's demo command, run as a newcomer runs it, so it cannot rot: on this
//! machine's Docker engine, HAProxy and nginx it must end with a deploy, a rollback and
//! "0 failed of N" requests for each proxy, and leave no container behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deploy_test_support as util;

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_deploys_and_rolls_back_under_load_with_no_failed_request() {
    util::require_haproxy();
    util::require_nginx();
    let image = util::fake_image();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_odoo-bluegreen"))
        .parent()
        .unwrap()
        .to_path_buf();
    let root = util::workspace_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .current_dir(&root)
        .env("DEMO_BIN_DIR", &bin_dir)
        .env("DEMO_IMAGE", &image)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/demo.sh failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for proxy in ["haproxy", "nginx"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{proxy}: deploy demo-1, deploy demo-2, rollback")))
            .unwrap_or_else(|| panic!("no summary line for {proxy}:\n{stdout}"));
        let sent: u64 = line
            .split(" failed of ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count in {line:?}"));
        assert!(line.contains(": 0 failed of "), "{line}");
        assert!(sent > 0, "the load sent requests: {line}");
        // Each slot answered part of the load: the traffic really moved.
        assert!(
            !line.contains("blue=0 ") && !line.contains("green=0)"),
            "{line}"
        );
    }
    for step in ["deploy --image odoo-fake:demo-2", "rollback", "status"] {
        assert!(
            stderr.contains(&format!("$ odoo-bluegreen {step}")),
            "{stderr}"
        );
    }
    assert!(
        stdout.contains("rolled_back"),
        "the history shows the rollback:\n{stdout}"
    );
    for proxy in ["haproxy", "nginx"] {
        let left = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=com.deployment.stack=demo-{proxy}"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&left.stdout).trim().is_empty(),
            "the demo removed its containers"
        );
    }
}
