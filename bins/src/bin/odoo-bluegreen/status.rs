//! `status`: the stack as it is (slots, traffic, requests through the proxy, lock, last
//! operation); exit 3 when it does not serve as it should.

use std::io::Write;

use deploy_bluegreen::lock::LockState;
use deploy_bluegreen::orchestrator::{Operation, SlotRole, StackHealth, StatusReport};
use deploy_bluegreen::StackConfig;

use crate::{connect, Cli};

/// Runs `status`.
pub(crate) async fn run(
    cli: &Cli,
    config: StackConfig,
    history: Option<deploy_rollback::History>,
) -> u8 {
    let (orchestrator, progress) = match connect(cli, config, history).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let status = orchestrator.status().await;
    progress.finish();
    print_status(cli, &status);
    if status.health == StackHealth::Ok {
        0
    } else {
        3
    }
}

fn print_status(cli: &Cli, status: &StatusReport) {
    if cli.json {
        crate::render::print_json("status", status);
        return;
    }
    let mut out = std::io::stdout().lock();
    let serving = match (status.serving, &status.live_release) {
        (Some(slot), Some(release)) => format!("{slot} serves {release}"),
        (Some(slot), None) => format!("{slot} takes the traffic"),
        (None, _) => "no slot takes all traffic".to_owned(),
    };
    let health = match status.health {
        StackHealth::Ok => "ok",
        StackHealth::Degraded => "DEGRADED",
    };
    let _ = writeln!(
        out,
        "stack {} ({} at {}): {health}, {serving}",
        status.stack, status.proxy, status.proxy_url
    );
    let mut table = odoo_deploy::table::Table::new(&[
        "SLOT", "ROLE", "SHARE", "STATUS", "RELEASE", "ADDRESS", "ANSWERS",
    ]);
    table.align_right(2);
    for slot in &status.slots {
        let role = match slot.role {
            SlotRole::Live => "live",
            SlotRole::Partial => "partial",
            SlotRole::Idle => "idle",
            SlotRole::Stopped => "stopped",
            SlotRole::Absent => "absent",
        };
        let share = slot
            .share
            .map_or_else(|| "?".to_owned(), |s| format!("{s}%"));
        let (state, release, address) = match &slot.container {
            Some(c) => (
                format!("{:?}", c.status).to_lowercase(),
                c.release.clone(),
                c.http.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let answers = match slot.answers {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        table.row([
            slot.slot.as_str().to_owned(),
            role.to_owned(),
            share,
            state,
            release,
            address,
            answers.to_owned(),
        ]);
    }
    let _ = write!(out, "{}", table.render());
    if !status.through_proxy.is_empty() {
        let seen: Vec<String> = status
            .through_proxy
            .iter()
            .map(|(label, n)| format!("{label} x{n}"))
            .collect();
        let _ = writeln!(out, "through the proxy: {}", seen.join(", "));
    }
    let lock = match &status.lock {
        Some(LockState::Free) => "free".to_owned(),
        Some(LockState::Held { holder }) => format!("held by {holder}"),
        Some(LockState::Stale { holder }) => format!("stale (left by {holder})"),
        None => "unknown".to_owned(),
    };
    let _ = writeln!(out, "lock: {lock}");
    if let Some(entry) = &status.last_operation {
        let outcome = match (&entry.result, &entry.error, entry.finished) {
            (Some(result), _, _) => result.to_string(),
            (_, Some(error), _) => format!("error: {error}"),
            (_, _, false) if status.interrupted => format!("interrupted at step {}", entry.step),
            _ => format!("under way, at step {}", entry.step),
        };
        let _ = writeln!(
            out,
            "last operation: {}{} by {}, started {}: {outcome}",
            entry.operation,
            match (entry.operation, entry.release.as_deref()) {
                (Operation::Rollback | Operation::Switch | Operation::Redeploy, Some(r)) => {
                    format!(" to {r}")
                }
                (_, Some(r)) => format!(" of {r}"),
                (_, None) => String::new(),
            },
            entry.operator,
            entry
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    for problem in &status.problems {
        let _ = writeln!(out, "problem: {problem}");
    }
    for note in &status.notes {
        let _ = writeln!(out, "note: {note}");
    }
}
