//! The deployment runbook of a stack, in Markdown, written from its stack file and its
//! gate plans (`odoo-bluegreen runbook`): what to check before a deploy, what the deploy
//! does step by step with this configuration, how to go back and when, what is watched,
//! what to do in an incident, and the Docker layout it drives.
//!
//! It is true to the configuration because it is made from it: regenerate it after
//! every change of the stack file. No secret value ever appears in it: secrets are named
//! by where they come from (an environment variable, a file), the slots' plain
//! environment by its variable names only, and argument values that look like
//! credentials are masked.

use std::fmt::Write as _;
use std::path::Path;

use deploy_gates::{GateKind, Mode, Plan};

use crate::config::{ProxyDriver, RollbackWindow, StackConfig};
use crate::slot::MountSource;
use crate::switch::nginx::NginxMode;
use crate::update::{ModuleSelection, SelectionKeyword, UpdateStrategy};

/// A path as the stack file gives it: relative to the stack file's directory when it
/// lies under it, so that the runbook does not depend on where the stack is checked out.
fn shown(config: &StackConfig, path: &Path) -> String {
    let base = config
        .path
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty());
    match base.and_then(|b| path.strip_prefix(b).ok()) {
        Some(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// An argument with its value masked when its name says it is a credential.
fn masked(arg: &str) -> String {
    let lower = arg.to_ascii_lowercase();
    let secret = ["password", "passwd", "secret", "token", "api_key", "apikey"]
        .iter()
        .any(|w| lower.contains(w));
    match arg.split_once('=') {
        Some((name, _)) if secret => format!("{name}=***"),
        _ => arg.to_owned(),
    }
}

fn args(list: &[String]) -> String {
    let mut out = Vec::with_capacity(list.len());
    let mut hide_next = false;
    for arg in list {
        if hide_next {
            out.push("***".to_owned());
            hide_next = false;
            continue;
        }
        let lower = arg.to_ascii_lowercase();
        hide_next = arg.starts_with('-')
            && !arg.contains('=')
            && ["password", "passwd", "secret", "token"]
                .iter()
                .any(|w| lower.contains(w))
            && !lower.ends_with("-env")
            && !lower.ends_with("-file");
        out.push(masked(arg));
    }
    out.join(" ")
}

fn modules(selection: &ModuleSelection) -> String {
    match selection {
        ModuleSelection::Named(names) => format!("the modules {}", names.join(", ")),
        ModuleSelection::Keyword(SelectionKeyword::All) => {
            "every installed module (`-u all`)".to_owned()
        }
        _ => "the installed modules whose addon folder changed since the last successful update (checksums stored in the database)".to_owned(),
    }
}

fn plan_table(out: &mut String, plan: &Plan) {
    let run = &plan.run;
    let _ = writeln!(
        out,
        "Run: {}, timeout {}{}.\n",
        match run.mode {
            Mode::WaitUntil => format!(
                "rounds every {} until every gate has passed for {}",
                duration(run.interval),
                duration(run.stable_for)
            ),
            _ => "one round".to_owned(),
        },
        duration(run.timeout),
        if run.fail_fast { ", fail-fast" } else { "" }
    );
    let _ = writeln!(out, "| gate | kind | target | timeout | depends on |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for gate in &plan.gates {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            gate.name,
            gate.kind(),
            gate.target,
            duration(gate.timeout),
            if gate.depends_on.is_empty() {
                "–".to_owned()
            } else {
                gate.depends_on.join(", ")
            }
        );
    }
    let _ = writeln!(out);
}

/// The runbook of `config`'s stack, in Markdown.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn render(config: &StackConfig) -> String {
    let mut out = String::new();
    let stack = &config.stack;
    let file = config
        .path
        .as_deref()
        .and_then(Path::file_name)
        .map_or_else(
            || "stack.toml".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
    let cli = format!("odoo-bluegreen --config {file}");
    let proxy = config.proxy.kind();
    let update = config.update.as_ref();
    let backup = config.backup.as_ref();
    let window = match config.deploy.rollback_window {
        RollbackWindow::Keep => "until the next deploy (kept running)".to_owned(),
        RollbackWindow::StopAfter(d) if d.is_zero() => "none: stopped once drained".to_owned(),
        RollbackWindow::StopAfter(d) => duration(d),
    };
    let image = config.image.clone().unwrap_or_else(|| "IMAGE".to_owned());

    let _ = writeln!(
        out,
        "# Deployment runbook: `{stack}` ({})\n",
        config.environment
    );
    let _ = writeln!(
        out,
        "Written by `odoo-bluegreen runbook` from `{file}`: true to that file when it was written. Write it again after every change of the stack file or of its gate plans; do not edit it by hand.\n"
    );

    // ------------------------------------------------------------------ at a glance
    let _ = writeln!(out, "## At a glance\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| public URL | {} ({proxy}) |", config.proxy.url);
    let _ = writeln!(
        out,
        "| slots | `{stack}-blue` on 127.0.0.1:{}, `{stack}-green` on 127.0.0.1:{} |",
        config.slots.blue.http_port, config.slots.green.http_port
    );
    let _ = writeln!(
        out,
        "| zero-downtime switch | {} |",
        match &config.proxy.driver {
            ProxyDriver::Haproxy { .. } => "HAProxy's runtime API (no reload)",
            ProxyDriver::Nginx(o) => match o.mode {
                NginxMode::StateFile { .. } => "nginx, reload-free (marker files read per request)",
                NginxMode::Reload =>
                    "nginx graceful reload (loses requests racing idle keep-alive connections)",
            },
            ProxyDriver::Traefik(_) => "Traefik's watched dynamic file",
        }
    );
    let _ = writeln!(
        out,
        "| module update | {} |",
        update.map_or_else(
            || "none (`[update]` absent): releases must not need `odoo -u`".to_owned(),
            |u| format!("`{}`, {}", u.strategy.as_str(), modules(&u.modules))
        )
    );
    let _ = writeln!(
        out,
        "| pre-deploy backup | {} |",
        backup.map_or_else(
            || "none (`[backup]` absent)".to_owned(),
            |b| format!(
                "`{}`{}",
                shown(config, &b.store),
                if b.required {
                    ", required"
                } else {
                    ", optional"
                }
            )
        )
    );
    let _ = writeln!(out, "| rollback window | {window} |");
    let _ = writeln!(
        out,
        "| history | {} |\n",
        config.history_dir.as_deref().map_or_else(
            || "none (`history_dir` absent): `rollback` knows only the two slots".to_owned(),
            |d| format!("`{}`", shown(config, d))
        )
    );

    // ------------------------------------------------------------------ checklist
    let _ = writeln!(out, "## Before the deploy\n");
    let _ = writeln!(
        out,
        "- [ ] The release's image `{image}` is built once, tagged by commit, and on the engine or in its registry (pull policy `{}`).",
        config.deploy.pull.as_str()
    );
    let _ = writeln!(
        out,
        "- [ ] `{cli} status` says `ok`: one slot serves, no maintenance, no operation interrupted, the lock free."
    );
    let _ = writeln!(
        out,
        "- [ ] `{cli} deploy --image {image} --dry-run` lists the stages below and no problem."
    );
    if let Some(u) = update {
        let _ = writeln!(
            out,
            "- [ ] The dry run's `would_update` lines name the modules this release changes, each with its version bumped in its manifest, and a migration script where a field is dropped or renamed."
        );
        match u.strategy {
            UpdateStrategy::Maintenance => {
                let _ = writeln!(
                    out,
                    "- [ ] Users are told of a maintenance window of about the update's own time (the proxy answers 503 with `Retry-After`; try the update on a copy to know it)."
                );
            }
            UpdateStrategy::Online => {
                let _ = writeln!(
                    out,
                    "- [ ] The changes are safe for the old code, which serves during the update (added columns and views only; no rename, no drop, no data it misreads)."
                );
            }
        }
    }
    if let Some(b) = backup {
        let _ = writeln!(
            out,
            "- [ ] The backup store `{}` has room for one more backup, and the database URL is in {}.",
            shown(config, &b.store),
            b.database_url.describe()
        );
    }
    for (name, secret) in &config.slots.secret_env {
        let _ = writeln!(
            out,
            "- [ ] The slots' secret `{name}` is in {}.",
            secret.describe()
        );
    }
    if let Some(p) = &config.odoo.password {
        let _ = writeln!(
            out,
            "- [ ] The gates' Odoo password is in {}.",
            p.describe()
        );
    }
    for hook in &config.hooks {
        let _ = writeln!(
            out,
            "- [ ] The hook `{}` (`{}`) can run on this machine.",
            hook.name,
            hook.command.first().map_or("", String::as_str)
        );
    }
    if config.pre_switch.is_some() || config.post_switch.is_some() {
        let _ = writeln!(
            out,
            "- [ ] The same gates passed on staging for this release (below)."
        );
    }
    let _ = writeln!(
        out,
        "- [ ] Someone who can run the rollback is there for the rollback window ({window}).\n"
    );

    // ------------------------------------------------------------------ gates
    let _ = writeln!(out, "## The gates\n");
    match &config.pre_switch {
        Some(plan) => {
            let _ = writeln!(
                out,
                "**Before the switch**, against the new slot directly:\n"
            );
            plan_table(&mut out, plan);
        }
        None => {
            let _ = writeln!(
                out,
                "**Before the switch**: no plan: the new slot is only checked for readiness on `{}`.\n",
                config.slots.health_path
            );
        }
    }
    match &config.post_switch {
        Some(plan) => {
            let _ = writeln!(out, "**After the switch**, through the proxy:\n");
            plan_table(&mut out, plan);
        }
        None => {
            let _ = writeln!(
                out,
                "**After the switch**: no plan: only the check that requests through the proxy reach the new release.\n"
            );
        }
    }
    if let Some(plan) = config.pre_switch.as_ref().or(config.post_switch.as_ref()) {
        if plan.gates.iter().any(|g| g.kind() == GateKind::Coverage) {
            let _ = writeln!(
                out,
                "The `coverage` gate reads coverage.py's report of the release's test run.\n"
            );
        }
    }

    // ------------------------------------------------------------------ procedure
    let _ = writeln!(out, "## The production procedure\n");
    let _ = writeln!(out, "```sh\n{cli} deploy --image {image}\n```\n");
    let _ = writeln!(
        out,
        "What it does, in order, under the stack's lock (a second deploy is refused at once; a killed one is repaired by the next):\n"
    );
    let mut n = 0;
    let mut step = |out: &mut String, text: String| {
        n += 1;
        let _ = writeln!(out, "{n}. {text}");
    };
    step(
        &mut out,
        format!(
            "The image `{image}` on the engine (pulled when missing, policy `{}`).",
            config.deploy.pull.as_str()
        ),
    );
    let hooks_at = |point: deploy_core::StagePoint| -> Vec<String> {
        config
            .hooks
            .iter()
            .filter(|h| h.at == point)
            .map(|h| format!("`{}`", h.name))
            .collect()
    };
    let before_start = hooks_at(deploy_core::StagePoint::BeforeStart);
    if !before_start.is_empty() {
        step(
            &mut out,
            format!(
                "The hooks {} (a refusal stops the deploy).",
                before_start.join(", ")
            ),
        );
    }
    if let Some(b) = backup {
        step(
            &mut out,
            format!(
                "The pre-deploy backup into `{}` (the database{}; verified){}.",
                shown(config, &b.store),
                if b.data_dir.is_some() {
                    " and its filestore"
                } else {
                    ""
                },
                if b.required {
                    ": a failed backup stops the deploy (exit 3)"
                } else {
                    ": a failed backup is a warning"
                }
            ),
        );
    }
    if let Some(u) = update {
        let how = match u.strategy {
            UpdateStrategy::Maintenance => "In maintenance: the proxy answers every request with 503 and `Retry-After` (its health path with 200), the serving slot is stopped, then",
            UpdateStrategy::Online => "Online: while the old release goes on serving,",
        };
        step(
            &mut out,
            format!(
                "{how} Odoo's module update of {} in a one-off container of the new image (`{}`), killed after {}{}; a module left `to upgrade` or at another version than the image's fails it, whatever its exit status. A failed update restores the pre-deploy backup and the old release serves again (exit 1).",
                modules(&u.modules),
                u.command
                    .as_ref()
                    .map_or_else(|| "odoo -d {db} -u {modules} --stop-after-init --no-http --workers 0".to_owned(), |c| c.join(" ")),
                duration(u.timeout),
                u.lock_wait.map_or_else(String::new, |w| format!(
                    ", or when a session waits {} on a lock",
                    duration(w)
                ))
            ),
        );
    }
    step(
        &mut out,
        format!(
            "The new release starts in the idle slot and must answer `{}` within {}.",
            config.slots.health_path,
            duration(config.slots.ready_timeout)
        ),
    );
    step(
        &mut out,
        if config.pre_switch.is_some() {
            "The pre-switch gates, against the new slot: a failure stops it and nothing moves (exit 1).".to_owned()
        } else {
            "No pre-switch gates.".to_owned()
        },
    );
    let before_switch = hooks_at(deploy_core::StagePoint::BeforeSwitch);
    if !before_switch.is_empty() {
        step(&mut out, format!("The hooks {}.", before_switch.join(", ")));
    }
    step(
        &mut out,
        format!(
            "The switch: all new requests to the new slot in {proxy}; requests in flight finish on the old one{}.",
            if update.is_some_and(|u| u.strategy == UpdateStrategy::Maintenance) {
                "; maintenance ends here"
            } else {
                ""
            }
        ),
    );
    if config.deploy.verify_release {
        step(
            &mut out,
            format!(
                "The check through the proxy: {} responses in a row from the new release within {}; otherwise traffic goes back.",
                config.deploy.verify_consecutive,
                duration(config.deploy.verify_timeout)
            ),
        );
    }
    step(
        &mut out,
        if config.post_switch.is_some() {
            "The post-switch gates, through the proxy: a failure sends traffic back to the old slot (exit 1).".to_owned()
        } else {
            "No post-switch gates.".to_owned()
        },
    );
    let after_switch = hooks_at(deploy_core::StagePoint::AfterSwitch);
    if !after_switch.is_empty() {
        step(
            &mut out,
            format!(
                "The hooks {} (a refusal sends traffic back).",
                after_switch.join(", ")
            ),
        );
    }
    step(
        &mut out,
        format!(
            "The old slot is drained (up to {}) and kept for the rollback window ({window}); the outcome is recorded{}.",
            duration(config.deploy.drain_timeout),
            if config.history_dir.is_some() {
                " in the history"
            } else {
                ""
            }
        ),
    );
    let finish = hooks_at(deploy_core::StagePoint::Finish);
    if !finish.is_empty() {
        step(
            &mut out,
            format!("The hooks {}, whatever the outcome.", finish.join(", ")),
        );
    }
    let _ = writeln!(
        out,
        "\nExit codes: 0 live and gated; 1 refused or rolled back (the old release serves); 2 a configuration error, nothing changed; 3 an infrastructure failure (`status` tells the state).\n"
    );

    // ------------------------------------------------------------------ rollback
    let _ = writeln!(out, "## Going back\n");
    let _ = writeln!(out, "| when | how | what it gives back |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| the deploy fails before or during the switch | nothing to do: the deploy goes back itself{} | everything: the old release serves as before |",
        if update.is_some() {
            " (the pre-deploy backup restored when the update changed the database)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "| a problem after a deploy that did not change the database | `{cli} rollback` | the previous release at once while its slot is warm ({window}), else it is started and gated first |"
    );
    if update.is_some() {
        let _ = writeln!(
            out,
            "| a problem after a deploy that updated the database | `odoo-rollback restore --backup <the deploy's backup id>` then `{cli} rollback` (a plain `rollback` is refused and names the backup) | code and database as before the deploy; what was written since is lost |"
        );
        let _ = writeln!(
            out,
            "| the old code must run now, on the new schema | `{cli} rollback --code-only` | the old code only: it must understand the updated schema |"
        );
    }
    let _ = writeln!(
        out,
        "| a release deployed from a git branch | `odoo-rollback revert` (a `git revert` pushed) | the code, through the normal deploy |"
    );
    if backup.is_some() {
        let _ = writeln!(
            out,
            "| data damaged | `odoo-rollback restore --backup <id>` (the rename swap: the damaged database is kept under a dated name) | the database and filestore of that backup |"
        );
    }
    let _ = writeln!(out);

    // ------------------------------------------------------------------ monitoring
    let _ = writeln!(out, "## What is watched\n");
    let _ = writeln!(
        out,
        "- During the deploy: readiness on `{}`, the gates above, the release seen through the proxy.",
        config.slots.health_path
    );
    let _ = writeln!(
        out,
        "- After it: `{cli} status` (exit 3 when the stack does not serve as it should: a slot down, traffic split, maintenance left on, an interrupted operation). Run it from your monitoring."
    );
    if config.notify.is_empty() {
        let _ = writeln!(
            out,
            "- Nobody is told automatically: no `[[notify]]` channel. Announce deploys and rollbacks yourself."
        );
    } else {
        for channel in &config.notify {
            let events = channel.events.as_ref().map_or_else(
                || "every notice".to_owned(),
                |events| {
                    events
                        .iter()
                        .map(|e| format!("`{}`", e.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            );
            let _ = writeln!(
                out,
                "- `{}` ({}, URL from {}) is told of {events}; a notification that fails is a warning in the report, never a failed deploy.",
                channel.name,
                channel.kind.as_str(),
                channel.url.describe()
            );
        }
    }
    let _ = writeln!(
        out,
        "- Not watched by this version: traffic after the post-switch gates (error rate, latency) and alerts. Watch the proxy's logs and metrics yourself during the rollback window.\n"
    );

    // ------------------------------------------------------------------ incident
    let _ = writeln!(out, "## In an incident\n");
    let _ = writeln!(
        out,
        "1. `{cli} status`: which slot serves, the proxy's routing and maintenance, the lock, the last operation and how it ended."
    );
    let _ = writeln!(
        out,
        "2. The slot's own words: `docker logs --tail 200 {stack}-<blue|green>`; a failed deploy's report has the failed slot's log excerpt and the update's last lines."
    );
    let _ = writeln!(
        out,
        "3. Back to the release that served: see *Going back*. An interrupted deploy is repaired by the next `deploy` or `rollback` (its lock is taken over, a half-updated database restored from its backup)."
    );
    if update.is_some_and(|u| u.strategy == UpdateStrategy::Maintenance) {
        let _ = writeln!(
            out,
            "4. Maintenance left on (a deploy could not put the database back, exit 3): restore a backup taken before that deploy (`odoo-rollback restore`), start the slot that served (`docker start {stack}-<slot>`), then `{cli} maintenance off`."
        );
    }
    let _ = writeln!(out);

    // ------------------------------------------------------------------ layout
    let _ = writeln!(out, "## The Docker layout\n");
    let _ = writeln!(
        out,
        "- Containers `{stack}-blue` and `{stack}-green`, labelled `com.deployment.stack={stack}`, ports published on 127.0.0.1 only: blue {}, green {} (container port {}{}).",
        config.slots.blue.http_port,
        config.slots.green.http_port,
        config.slots.container_http_port,
        config
            .slots
            .container_realtime_port
            .map_or_else(String::new, |p| format!(", real-time {p}"))
    );
    if !config.slots.args.is_empty() {
        let _ = writeln!(out, "- Command: `{}`.", args(&config.slots.args));
    }
    if !config.slots.env.is_empty() || !config.slots.secret_env.is_empty() {
        let names: Vec<String> = config
            .slots
            .env
            .keys()
            .chain(config.slots.secret_env.keys())
            .map(|k| format!("`{k}`"))
            .collect();
        let _ = writeln!(out, "- Environment: {}.", names.join(", "));
    }
    for mount in &config.slots.volumes {
        let source = match &mount.source {
            MountSource::Volume(name) => format!("volume `{name}`"),
            MountSource::Bind(path) => format!("host directory `{}`", shown(config, path)),
        };
        let _ = writeln!(
            out,
            "- {source} at `{}`{}.",
            mount.target,
            if mount.read_only { " (read-only)" } else { "" }
        );
    }
    if let Some(network) = &config.slots.network {
        let _ = writeln!(out, "- Network `{network}`.");
    }
    if config.slots.limits.memory_bytes.is_some() || config.slots.limits.cpus.is_some() {
        let _ = writeln!(
            out,
            "- Limits: {}{}.",
            config
                .slots
                .limits
                .memory_bytes
                .map_or_else(String::new, |m| format!(
                    "{} MiB of memory",
                    m / (1024 * 1024)
                )),
            config
                .slots
                .limits
                .cpus
                .map_or_else(String::new, |c| format!(" {c} CPUs"))
        );
    }
    if update.is_some() {
        let _ = writeln!(
            out,
            "- The module update runs in `{stack}-oneoff-*` containers of the new image with the same environment, volumes and network, removed afterwards."
        );
    }
    let _ = writeln!(
        out,
        "- The proxy's configuration: `{cli} proxy-config` prints it; the lock and the journal are in `{}`.",
        shown(config, &config.state_dir)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_arguments_are_masked() {
        let list: Vec<String> = [
            "--db_password=hunter2",
            "--db_user",
            "odoo",
            "--admin-passwd",
            "x",
            "--password-env",
            "VAR",
        ]
        .map(str::to_owned)
        .to_vec();
        let shown = args(&list);
        assert!(
            !shown.contains("hunter2") && !shown.contains(" x "),
            "{shown}"
        );
        assert!(shown.contains("--db_password=***") && shown.contains("--admin-passwd ***"));
        assert!(shown.contains("--password-env VAR"), "{shown}");
    }

    /// The runbook of the example stack file is the committed one
    /// (`UPDATE_RUNBOOK=1 cargo test -p deploy-bluegreen runbook` writes it again).
    #[test]
    fn the_example_runbook_is_up_to_date_and_holds_no_secret() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let config = StackConfig::load(&dir.join("stack.toml")).unwrap();
        let text = render(&config);
        let committed = dir.join("RUNBOOK.md");
        if std::env::var_os("UPDATE_RUNBOOK").is_some() {
            std::fs::write(&committed, &text).unwrap();
        }
        let expected = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            text == expected,
            "examples/RUNBOOK.md is not the runbook of examples/stack.toml: run `UPDATE_RUNBOOK=1 cargo test -p deploy-bluegreen runbook` and review the diff"
        );
        for checkbox in [
            "- [ ] The release's image",
            "- [ ] Someone who can run the rollback",
        ] {
            assert!(text.contains(checkbox), "{checkbox}");
        }
        assert!(
            text.contains("`maintenance`"),
            "the update strategy is named"
        );
        assert!(
            !text.contains("/work/") && !text.contains("/home/"),
            "no checkout path"
        );
    }
}
