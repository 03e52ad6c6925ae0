//! The operation report and the deploy plan, as a table or JSON on stdout.

use std::io::Write;
use std::time::Duration;

use deploy_bluegreen::orchestrator::{DeployPlan, Operation, OperationReport};

use crate::Cli;

/// Prints `value` as pretty JSON on stdout (or says on stderr why it cannot).
pub(crate) fn print_json<T: serde::Serialize>(what: &str, value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "odoo-bluegreen: cannot render the {what}: {e}"
            );
        }
    }
}

/// Prints an operation's report: JSON with `--json`, else a table.
pub(crate) fn print_report(cli: &Cli, report: &OperationReport) {
    if cli.json {
        print_json("report", report);
        return;
    }
    let mut out = std::io::stdout().lock();
    let about = match (report.operation, report.release.as_deref()) {
        (Operation::Rollback | Operation::Switch | Operation::Redeploy, Some(release)) => {
            format!(" to {release}")
        }
        (_, Some(release)) => format!(" of {release}"),
        (_, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "{}{about} on stack {}: {}",
        report.operation, report.stack, report.result
    );
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "  reason    {reason}");
    }
    if let Some(pulled) = &report.pulled {
        let _ = writeln!(
            out,
            "  pulled    {} ({}) in {:.1} s",
            pulled.image,
            pulled.digest.as_deref().unwrap_or(&pulled.id),
            report.timings.image_pull.as_secs_f64()
        );
    }
    if let Some(id) = &report.backup_id {
        let _ = writeln!(out, "  backup    {id} (taken before the deploy)");
    }
    for stage in &report.stages {
        let summary = stage
            .summary
            .as_deref()
            .map_or_else(String::new, |s| format!(": {s}"));
        let _ = writeln!(
            out,
            "  stage     {} ({}) {}{summary}",
            stage.name, stage.point, stage.result
        );
    }
    if let Some(serving) = report.serving {
        let serving_release = [&report.to, &report.from]
            .into_iter()
            .flatten()
            .find(|s| s.slot == serving)
            .map_or_else(String::new, |s| format!(" ({})", s.release));
        let _ = writeln!(out, "  serving   {serving}{serving_release}");
    }
    if let Some(from) = &report.from {
        let _ = writeln!(
            out,
            "  from      {} ({}, {})",
            from.slot, from.release, from.image
        );
    }
    if let Some(to) = &report.to {
        let _ = writeln!(
            out,
            "  to        {} ({}, {})",
            to.slot, to.release, to.image
        );
    }
    for run in &report.gates {
        let share = run.share.map_or_else(String::new, |s| format!(" at {s} %"));
        let _ = writeln!(
            out,
            "  gates     {}{share}: {}",
            run.plan,
            odoo_deploy::render::summary_line(&run.report)
        );
    }
    if let Some(stopped) = report.stopped {
        let _ = writeln!(out, "  stopped   {stopped}");
    }
    for repair in &report.repairs {
        let _ = writeln!(out, "  repaired  {repair}");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "  warning   {warning}");
    }
    if let Some(logs) = &report.slot_logs {
        let _ = writeln!(out, "  last log lines of the failed slot:");
        for line in logs.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    let t = &report.timings;
    let parts: Vec<String> = [
        ("container start", t.container_start),
        ("gates", t.gates),
        ("drain", t.drain),
        ("rollback window", t.window),
        ("orchestration", t.overhead),
    ]
    .into_iter()
    .filter(|(_, d)| !d.is_zero())
    .map(|(name, d)| format!("{name} {}", ms(d)))
    .collect();
    let visible = if t.switch_visible.is_zero() {
        String::new()
    } else {
        format!(
            "; new requests reached the new slot {} after the switch call",
            ms(t.switch_visible)
        )
    };
    let _ = writeln!(
        out,
        "  time      {} total: {}{visible}",
        ms(t.total),
        parts.join(", ")
    );
}

pub(crate) fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Prints what a deploy would run (`--dry-run`): JSON with `--json`, else a list.
pub(crate) fn print_plan(cli: &Cli, plan: &DeployPlan) {
    if cli.json {
        print_json("plan", plan);
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "deploy of {} ({}) on stack {}: dry run, nothing was changed",
        plan.release, plan.image, plan.stack
    );
    match (&plan.unreadable, plan.serving, plan.target) {
        (Some(why), _, _) => {
            let _ = writeln!(out, "  slots     cannot tell: {why}");
        }
        (None, Some(serving), Some(target)) => {
            let _ = writeln!(
                out,
                "  slots     {serving} serves; the release would start in {target}"
            );
        }
        (None, _, Some(target)) => {
            let _ = writeln!(
                out,
                "  slots     none serves; the release would start in {target}"
            );
        }
        (None, _, None) => {}
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        let kind = if stage.builtin { "step" } else { "stage" };
        let _ = writeln!(out, "  {:>2}. {} [{kind}, {}]", i + 1, stage.name, stage.at);
        for (name, value) in &stage.settings {
            let _ = writeln!(out, "        {name} = {value}");
        }
    }
    for problem in &plan.problems {
        let _ = writeln!(out, "  problem   {problem}");
    }
    for note in &plan.notes {
        let _ = writeln!(out, "  note      {note}");
    }
}
