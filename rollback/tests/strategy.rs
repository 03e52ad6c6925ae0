//! The previous-release strategy over a `Deployer`, recording in the history, and the
//! rollback policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use deploy_rollback::strategy::{
    execute_recorded, Condition, Incident, OutcomeDetail, PreviousRelease, RollbackContext,
    StrategyKind,
};
use deploy_rollback::{
    DeployStatus, Deployer, DeployerError, DeploymentRecord, Environment, Error, History,
    HistoryFilter, RedeployMethod, RedeployReport, ReleaseRef, RollbackPolicy, RollbackStrategy,
};

/// A deployer that records what it was asked to redeploy.
#[derive(Clone, Default)]
struct RecordingDeployer {
    calls: Arc<Mutex<Vec<ReleaseRef>>>,
    fail: bool,
}

#[async_trait]
impl Deployer for RecordingDeployer {
    async fn redeploy(&self, release: &ReleaseRef) -> Result<RedeployReport, DeployerError> {
        self.calls.lock().unwrap().push(release.clone());
        if self.fail {
            return Err("slot green did not become healthy".into());
        }
        Ok(
            RedeployReport::new(release.release.as_str(), RedeployMethod::WarmSwitch)
                .with_details(serde_json::json!({ "slot": "blue" })),
        )
    }
}

fn history_with_bad_release() -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    let t = |h| Utc.with_ymd_and_hms(2025, 3, 1, h, 0, 0).unwrap();
    for (release, status, h) in [
        ("r1", DeployStatus::Started, 9),
        ("r1", DeployStatus::Succeeded, 9),
        ("r2", DeployStatus::Started, 10),
        ("r2", DeployStatus::Succeeded, 10),
        ("r3", DeployStatus::Started, 11),
        ("r3", DeployStatus::Succeeded, 11),
    ] {
        let mut r =
            DeploymentRecord::new("shop", release, Environment::Production, status, "ci").at(t(h));
        r.git_sha = Some(format!("sha-{release}"));
        history.append(&r).unwrap();
    }
    (dir, history)
}

#[tokio::test]
async fn previous_release_redeploys_the_last_good_one_and_records_the_rollback() {
    let (_dir, history) = history_with_bad_release();
    let deployer = RecordingDeployer::default();
    let strategy = PreviousRelease::new(history.clone(), deployer.clone());
    let ctx = RollbackContext::new("shop", Environment::Production, "alice");
    assert_eq!(strategy.name(), "previous_release");

    let plan = strategy.plan(&ctx).await.unwrap();
    assert_eq!(plan.target_release.as_deref(), Some("r2"));
    assert!(!plan.destructive);
    assert!(
        deployer.calls.lock().unwrap().is_empty(),
        "plan must not deploy"
    );

    let outcome = execute_recorded(&strategy, &ctx, &history).await.unwrap();
    assert_eq!(outcome.live_release.as_deref(), Some("r2"));
    let OutcomeDetail::Redeployed(report) = &outcome.detail else {
        panic!("{outcome:?}");
    };
    assert!(report.warm_switch);
    let calls = deployer.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![ReleaseRef {
            stack: "shop".into(),
            environment: Environment::Production,
            release: "r2".into(),
            git_sha: Some("sha-r2".into()),
        }]
    );
    // r3 is recorded as rolled back; r2 is the last good release again.
    let latest = history
        .latest("shop", Environment::Production)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            latest.release.as_str(),
            latest.status,
            latest.operator.as_str()
        ),
        ("r3", DeployStatus::RolledBack, "alice")
    );
    assert_eq!(
        latest.outcome.gate_summary.unwrap()["strategy"],
        "previous_release"
    );
    assert_eq!(
        history
            .last_good("shop", Environment::Production)
            .unwrap()
            .unwrap()
            .release,
        "r2"
    );
    let figures = history.figures(&HistoryFilter::default()).unwrap();
    assert_eq!((figures.succeeded, figures.rolled_back), (2, 1));

    // Rolling back again (from r2, now the latest good) goes to r1.
    let ctx = ctx.with_bad_release("r2");
    assert_eq!(
        strategy.plan(&ctx).await.unwrap().target_release.as_deref(),
        Some("r1")
    );
}

#[tokio::test]
async fn a_failing_deployer_is_an_error_and_nothing_is_recorded() {
    let (_dir, history) = history_with_bad_release();
    let deployer = RecordingDeployer {
        fail: true,
        ..RecordingDeployer::default()
    };
    let strategy = PreviousRelease::new(history.clone(), deployer);
    let ctx = RollbackContext::new("shop", Environment::Production, "alice");
    let err = execute_recorded(&strategy, &ctx, &history)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Deployer { release, .. } if release == "r2"),
        "{err:?}"
    );
    assert_eq!(
        history
            .latest("shop", Environment::Production)
            .unwrap()
            .unwrap()
            .status,
        DeployStatus::Succeeded
    );
}

#[tokio::test]
async fn no_good_release_to_go_back_to() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path()).unwrap();
    let strategy = PreviousRelease::new(history.clone(), RecordingDeployer::default());
    let ctx = RollbackContext::new("shop", Environment::Production, "alice");
    assert!(matches!(
        strategy.plan(&ctx).await,
        Err(Error::NoGoodRelease { .. })
    ));
    history
        .append(&DeploymentRecord::new(
            "shop",
            "r1",
            Environment::Production,
            DeployStatus::Succeeded,
            "ci",
        ))
        .unwrap();
    // The only good release is the bad one.
    assert!(matches!(
        strategy.execute(&ctx).await,
        Err(Error::NoGoodRelease { .. })
    ));
}

#[test]
fn the_default_policy_maps_incidents_to_strategies() {
    let policy = RollbackPolicy::default();
    let choose = |i: Incident| policy.choose(&i);
    assert_eq!(
        choose(Incident {
            health_failing: true,
            ..Incident::default()
        }),
        Some(StrategyKind::PreviousRelease)
    );
    assert_eq!(
        choose(Incident {
            error_rate: Some(0.06),
            ..Incident::default()
        }),
        Some(StrategyKind::PreviousRelease)
    );
    assert_eq!(
        choose(Incident {
            error_rate: Some(0.01),
            ..Incident::default()
        }),
        None
    );
    assert_eq!(
        choose(Incident {
            migration_failed: true,
            health_failing: true,
            ..Incident::default()
        }),
        Some(StrategyKind::DatabaseRestore)
    );
    assert_eq!(
        choose(Incident {
            odoo_sh_branch: Some("production".into()),
            migration_failed: true,
            ..Incident::default()
        }),
        Some(StrategyKind::GitRevert)
    );
    assert_eq!(
        choose(Incident {
            odoo_sh_branch: Some("staging".into()),
            ..Incident::default()
        }),
        None
    );
}

#[test]
fn policies_parse_from_toml_and_bad_ones_are_refused() {
    let policy = RollbackPolicy::from_toml(
        "[[rule]]\nwhen = \"odoo_sh_branch\"\nstrategy = \"git_revert\"\n\n[[rule]]\nwhen = \"always\"\nstrategy = \"previous_release\"\n",
    )
    .unwrap();
    assert_eq!(
        policy.rules[0].condition,
        Condition::OdooShBranch { branch: None }
    );
    assert_eq!(
        policy.choose(&Incident {
            odoo_sh_branch: Some("main".into()),
            ..Incident::default()
        }),
        Some(StrategyKind::GitRevert)
    );
    assert_eq!(
        policy.choose(&Incident::default()),
        Some(StrategyKind::PreviousRelease)
    );
    // Round trip through TOML.
    let text = toml::to_string(&RollbackPolicy::default()).unwrap();
    assert_eq!(
        RollbackPolicy::from_toml(&text).unwrap(),
        RollbackPolicy::default()
    );
    for bad in [
        "[[rule]]\nwhen = \"moon_phase\"\nstrategy = \"git_revert\"\n",
        "[[rule]]\nwhen = \"health_failing\"\nstrategy = \"pray\"\n",
        "[[rule]]\nwhen = \"error_rate\"\nabove = 5.0\nstrategy = \"previous_release\"\n",
        "[[rule]]\nwhen = \"error_rate\"\nstrategy = \"previous_release\"\n",
    ] {
        assert!(
            matches!(RollbackPolicy::from_toml(bad), Err(Error::Policy { .. })),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_second_rollback_in_a_row_is_refused_instead_of_redone() {
    let (_dir, history) = history_with_bad_release();
    let deployer = RecordingDeployer::default();
    let strategy = PreviousRelease::new(history.clone(), deployer.clone());
    let ctx = RollbackContext::new("shop", Environment::Production, "alice");
    let first = execute_recorded(&strategy, &ctx, &history).await.unwrap();
    assert_eq!(first.live_release.as_deref(), Some("r2"));
    let records_after_first = history.read_stack("shop").unwrap().len();

    let err = execute_recorded(&strategy, &ctx, &history)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyRolledBack { release, .. } if release == "r3"),
        "{err:?}"
    );
    assert_eq!(
        deployer.calls.lock().unwrap().len(),
        1,
        "nothing redeployed twice"
    );
    assert_eq!(
        history.read_stack("shop").unwrap().len(),
        records_after_first,
        "no duplicate rolled_back record"
    );

    // Naming the release to replace rolls back further, on purpose.
    let further = ctx.clone().with_bad_release("r2");
    let outcome = strategy.execute(&further).await.unwrap();
    assert_eq!(outcome.live_release.as_deref(), Some("r1"));
}
