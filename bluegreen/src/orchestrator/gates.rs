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
                cause: source,
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
        let (url, realtime) = match target.name.as_str() {
            TARGET_SLOT => (urls.slot.clone(), urls.slot_realtime.clone()),
            TARGET_PREVIOUS => (urls.previous.clone(), urls.previous_realtime.clone()),
            // The proxy routes `/websocket` to the real-time ports itself.
            TARGET_PROXY => (Some(proxy.clone()), None),
            _ => continue,
        };
        if let Some(url) = url {
            target.url = url;
            target.realtime_url = realtime;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn container(http: u16, realtime: Option<u16>) -> ContainerInfo {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        ContainerInfo {
            id: "c".to_owned(),
            name: "shop-green".to_owned(),
            stack: "shop".to_owned(),
            slot: Slot::Green,
            release: "r2".to_owned(),
            image: "odoo:r2".to_owned(),
            status: crate::slot::ContainerStatus::Running,
            created: None,
            exit_code: None,
            health: crate::slot::HealthStatus::None,
            http: Some(addr(http)),
            realtime: realtime.map(addr),
            labels: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn the_slot_target_gets_the_real_time_port_when_the_stack_has_one() {
        let plan = Plan::from_toml(
            r#"
[[targets]]
name = "slot"
url = "http://127.0.0.1:1"
[[targets]]
name = "proxy"
url = "http://127.0.0.1:2"
[[gates]]
name = "websocket"
kind = "websocket-health"
target = "slot"
"#,
        )
        .unwrap();
        let proxy = Url::parse("http://127.0.0.1:8080").unwrap();
        let prefork = container(28069, Some(28072));
        let bound = bind_plan(&plan, &PlanUrls::of(Some(&prefork), None), &proxy);
        let slot = bound.targets.iter().find(|t| t.name == "slot").unwrap();
        assert_eq!(slot.url.as_str(), "http://127.0.0.1:28069/");
        assert_eq!(
            slot.realtime_url.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:28072/")
        );
        let through = bound.targets.iter().find(|t| t.name == "proxy").unwrap();
        assert_eq!(
            through.realtime_url, None,
            "the proxy routes /websocket itself"
        );
        // One port for both (threaded, or no real-time port published): no realtime_url.
        let threaded = container(28069, Some(28069));
        let bound = bind_plan(&plan, &PlanUrls::of(Some(&threaded), None), &proxy);
        assert_eq!(bound.targets[0].realtime_url, None);
    }
}
