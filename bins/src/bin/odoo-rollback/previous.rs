//! `previous`: the last good release redeployed through the blue-green stack.

use super::*;

#[derive(Debug, Args)]
pub(crate) struct PreviousArgs {
    /// The history directory [default: the stack file's history_dir].
    #[arg(long, value_name = "DIR")]
    pub(crate) history: Option<PathBuf>,
    /// The stack [default: the stack file's].
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
    /// The environment: dev, staging, uat, production [default: the stack file's].
    #[arg(long, value_name = "ENV", value_parser = parse_environment)]
    pub(crate) env: Option<Environment>,
    /// The blue-green stack file (odoo-bluegreen's); required unless --dry-run.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The release being rolled back [default: the latest in the history].
    #[arg(long, value_name = "LABEL")]
    pub(crate) bad_release: Option<String>,
    /// Only resolve and print the release that would go live again.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Who runs the rollback, for the history [default: $USER].
    #[arg(long, env = "ODOO_ROLLBACK_OPERATOR", value_name = "NAME")]
    pub(crate) operator: Option<String>,
}

/// The deployer `previous` redeploys through: the blue-green orchestrator, or none
/// (a dry run only plans, which never calls it).
pub(crate) enum StackDeployer {
    PlanOnly,
    BlueGreen(Box<Orchestrator>),
}

#[async_trait]
impl Deployer for StackDeployer {
    async fn redeploy(&self, release: &ReleaseRef) -> Result<RedeployReport, DeployerError> {
        match self {
            StackDeployer::PlanOnly => {
                Err("no deployer: pass --config with a blue-green stack file".into())
            }
            StackDeployer::BlueGreen(orchestrator) => orchestrator.redeploy(release).await,
        }
    }
}

pub(crate) async fn previous(out: &Output, args: PreviousArgs) -> Result<(), Failure> {
    let config = match &args.config {
        Some(path) => Some(StackConfig::load(path).map_err(|e| {
            Failure::Usage(format!(
                "--config {}: {}",
                path.display(),
                cli::error_chain(&e)
            ))
        })?),
        None => None,
    };
    let stack = match (&args.stack, &config) {
        (Some(stack), Some(c)) if *stack != c.stack => {
            return Err(Failure::Usage(format!(
                "--stack {stack} does not match the stack file's stack {}",
                c.stack
            )))
        }
        (Some(stack), _) => stack.clone(),
        (None, Some(c)) => c.stack.clone(),
        (None, None) => return Err(Failure::Usage("give --stack NAME (or --config)".to_owned())),
    };
    let environment = match (args.env, &config) {
        (Some(env), Some(c)) if env != c.environment => {
            return Err(Failure::Usage(format!(
                "--env {env} does not match the stack file's environment {}",
                c.environment
            )))
        }
        (Some(env), _) => env,
        (None, Some(c)) => c.environment,
        (None, None) => return Err(Failure::Usage("give --env ENV (or --config)".to_owned())),
    };
    let history_dir = args
        .history
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.history_dir.clone()))
        .ok_or_else(|| {
            Failure::Usage("give --history DIR (or a stack file with history_dir)".to_owned())
        })?;
    existing_dir("--history", &history_dir)?;
    let history = History::open(&history_dir)?;
    let operator = args.operator.clone().unwrap_or_else(cli::default_operator);
    deploy_rollback::history::check_operator(&operator)
        .map_err(|e| Failure::Usage(format!("--operator: {e}")))?;
    let mut ctx = RollbackContext::new(&stack, environment, &operator);
    if let Some(bad) = &args.bad_release {
        ctx = ctx.with_bad_release(bad);
    }

    if args.dry_run {
        let strategy = PreviousRelease::new(history, StackDeployer::PlanOnly);
        let plan = strategy.plan(&ctx).await?;
        if out.json {
            return out.json(serde_json::to_value(
                odoo_deploy::output::PreviousPlanOutput {
                    plan,
                    dry_run: true,
                },
            ));
        }
        return out.text(&plan_text(&plan));
    }

    let Some(config) = config else {
        // Resolve the target first: "nothing to roll back to" is worth knowing either way.
        let strategy = PreviousRelease::new(history, StackDeployer::PlanOnly);
        let plan = strategy.plan(&ctx).await?;
        return Err(Failure::Usage(format!(
            "previous needs --config with a blue-green stack file to redeploy {} \
             (use --dry-run to only show the target)",
            plan.target_release
                .as_deref()
                .unwrap_or("the last good release")
        )));
    };
    let events = Arc::new(odoo_deploy::progress::Progress::new(
        out.style,
        "odoo-rollback",
    ));
    let orchestrator = match Orchestrator::connect(config).await {
        Ok(o) => o.with_operator(&operator).with_events(events.clone()),
        Err(e) => {
            events.finish();
            return Err(e.into());
        }
    };
    let strategy = PreviousRelease::new(
        history.clone(),
        StackDeployer::BlueGreen(Box::new(orchestrator)),
    );
    let plan = strategy.plan(&ctx).await;
    if let Ok(plan) = &plan {
        events.line(&plan.summary);
    }
    let result = execute_recorded(&strategy, &ctx, &history).await;
    events.finish();
    let outcome = result?;
    if out.json {
        return out.json(serde_json::to_value(&outcome));
    }
    out.text(&outcome_text(&outcome))
}

pub(crate) fn plan_text(plan: &RollbackPlan) -> String {
    let mut text = format!("dry run: {}\n", plan.summary);
    if let Some(target) = &plan.target_release {
        text.push_str(&format!("  target    {target}\n"));
    }
    for step in &plan.steps {
        text.push_str(&format!("  step      {step}\n"));
    }
    text
}

pub(crate) fn outcome_text(o: &RollbackOutcome) -> String {
    let mut text = format!("{}\n", o.summary);
    if let Some(live) = &o.live_release {
        text.push_str(&format!("  live      {live}\n"));
    }
    if let OutcomeDetail::Redeployed(report) = &o.detail {
        let how = match report.method {
            RedeployMethod::WarmSwitch => "traffic switched back to the warm slot",
            RedeployMethod::AlreadyLive => "it was live already: nothing changed",
            RedeployMethod::Started => "its slot was started and gated, then traffic switched",
        };
        text.push_str(&format!("  how       {how}\n"));
    }
    text.push_str(&format!("  took      {}\n", human_duration(o.duration)));
    text
}
