//! Gate plans run with their target names pointed at the stack.

use super::*;

impl Orchestrator {
    /// Runs `plan` with its target names pointed at the stack; `None` when it passed,
    /// the reason when it did not.
    pub(super) async fn run_plan(
        &self,
        run: &mut Run,
        which: &'static str,
        plan: &Plan,
        urls: &PlanUrls,
        share: Option<u8>,
    ) -> Result<Option<String>> {
        let plan = bind_plan(plan, urls, &self.config.proxy.url);
        let factory = (self.gates)();
        let runner =
            Runner::from_plan(&plan, &*factory, &*self.events).map_err(|source| Error::Plan {
                plan: which,
                source,
            })?;
        let started = Instant::now();
        let report = runner.run(Arc::clone(&self.events)).await;
        run.report.timings.gates += started.elapsed();
        let passed = report.passed();
        let reason = (!passed).then(|| gate_reason(which, &report));
        run.report.gates.push(GateRun {
            plan: which.to_owned(),
            share,
            passed,
            report,
        });
        Ok(reason)
    }
}

/// A copy of `plan` whose `slot`, `previous` and `proxy` targets point at the stack.
pub(super) fn bind_plan(plan: &Plan, urls: &PlanUrls, proxy: &Url) -> Plan {
    let mut plan = plan.clone();
    for target in &mut plan.targets {
        let url = match target.name.as_str() {
            TARGET_SLOT => urls.slot.clone(),
            TARGET_PREVIOUS => urls.previous.clone(),
            TARGET_PROXY => Some(proxy.clone()),
            _ => None,
        };
        if let Some(url) = url {
            target.url = url;
        }
    }
    plan
}

/// Why a gate run did not pass, in a sentence.
pub(super) fn gate_reason(which: &str, report: &Report) -> String {
    let failures: Vec<String> = if report.failures.is_empty() {
        report
            .gates
            .iter()
            .filter(|g| !g.passed())
            .map(|g| {
                let last = g.last.as_ref().map_or_else(
                    || "not evaluated".to_owned(),
                    |l| format!("{:?}: {}", l.status, l.message),
                );
                format!("{} ({last})", g.name)
            })
            .collect()
    } else {
        report
            .failures
            .iter()
            .map(|f| format!("{} ({})", f.gate, f.message))
            .collect()
    };
    format!(
        "{which} gates {}: {}",
        report.result,
        if failures.is_empty() {
            "no gate passed in time".to_owned()
        } else {
            failures.join("; ")
        }
    )
}
