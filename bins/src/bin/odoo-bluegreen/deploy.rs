//! `deploy` and `canary`: a release into the idle slot, then traffic to it, with the
//! stack file's stages (its `[[hooks]]` and the `[backup]` pre-deploy backup) run by the
//! orchestrator under the stack's lock.

use std::path::PathBuf;
use std::sync::Arc;

use deploy_bluegreen::config::{BackupConfig, RollbackWindow, UpdateConfig};
use deploy_bluegreen::docker::DockerSlots;
use deploy_bluegreen::orchestrator::{default_release, DeployRequest};
use deploy_bluegreen::update::{UpdateSettings, UpdateStage};
use deploy_bluegreen::{Error, StackConfig};
use deploy_core::SecretRef;
use deploy_core::Slot;
use deploy_rollback::{BackupRestorer, BackupStage, History};

use crate::{connect, fail, finish, render, Cli};

#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// The image to run (default: the stack file's `image`). Pulled from its registry
    /// when the engine does not have it (`[deploy] pull`; credentials from the
    /// environment or Docker's config.json, never the command line).
    #[arg(long)]
    image: Option<String>,
    /// The release label (default: the image's tag).
    #[arg(long)]
    release: Option<String>,
    /// The git commit, for the history.
    #[arg(long)]
    git_sha: Option<String>,
    /// Keep the old slot running this long (`0s`, `15m`) or `keep`; default: the stack
    /// file's `deploy.rollback_window`.
    #[arg(long, value_parser = crate::parse_window)]
    rollback_window: Option<RollbackWindow>,
    /// Refuse (exit 1) instead of replacing the idle slot when it holds the rollback
    /// target (a release that passed its gates here). Without it the deploy replaces
    /// it and says so first.
    #[arg(long)]
    keep_rollback_target: bool,
    /// Take no pre-deploy backup this time, whatever the stack file's [backup] says.
    #[arg(long, conflicts_with_all = ["backup_store", "backup_db_url_env", "backup_data_dir"])]
    no_backup: bool,
    /// Take the pre-deploy backup into this store (default: [backup] store). Without
    /// [backup] in the stack file, give --backup-db-url-env too.
    #[arg(long, value_name = "DIR")]
    backup_store: Option<PathBuf>,
    /// Environment variable holding the postgres://user[:password]@host[:port]/db URL
    /// of the database to back up (default: [backup] database_url).
    #[arg(long, value_name = "VAR")]
    backup_db_url_env: Option<String>,
    /// Odoo's data_dir: the backup also archives <DIR>/filestore/<db>/ (default:
    /// [backup] data_dir).
    #[arg(long, value_name = "DIR")]
    backup_data_dir: Option<PathBuf>,
    /// Print the stages the deploy would run, with their settings, and change nothing
    /// (Docker and the proxy are only read).
    #[arg(long)]
    dry_run: bool,
}

/// Runs `deploy` (`steps` is `None`) or `canary`.
pub(crate) async fn run(
    cli: &Cli,
    config: StackConfig,
    history: Option<History>,
    args: &DeployArgs,
    steps: Option<&Vec<u8>>,
) -> u8 {
    // The request and the backup's settings are checked before anything runs.
    let request = match deploy_request(&config, args, steps) {
        Ok(request) => request,
        Err(e) => return fail(cli, &e, None),
    };
    let backup = match backup_config(config.backup.as_ref(), args) {
        Ok(backup) => backup,
        Err(e) => return fail(cli, &e, None),
    };
    let update = match (&config.update, &backup) {
        (Some(_), None) => {
            let e = Error::Config {
                field: "update".to_owned(),
                reason: "the module update needs the pre-deploy backup (it restores it when the update fails): deploy without --no-backup".to_owned(),
            };
            return fail(cli, &e, None);
        }
        (Some(update), Some(backup)) => Some((update.clone(), backup.clone(), config.clone())),
        (None, _) => None,
    };
    let (mut orchestrator, progress) = match connect(cli, config, history.clone()).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    if let Some(backup) = &backup {
        orchestrator = orchestrator.with_stage(Arc::new(backup_stage(backup, history)));
    }
    if let Some((update, backup, config)) = update {
        match update_stage(&update, &backup, config).await {
            Ok(stage) => orchestrator = orchestrator.with_stage(Arc::new(stage)),
            Err(e) => return fail(cli, &e, None),
        }
    }
    if args.dry_run {
        let plan = orchestrator.plan(&request).await;
        progress.finish();
        return match plan {
            Ok(plan) => {
                render::print_plan(cli, &plan);
                // A deploy that cannot pass whatever the release does is a
                // configuration error, found before anything starts.
                if plan.problems.is_empty() {
                    0
                } else {
                    2
                }
            }
            Err(e) => fail(cli, &e, None),
        };
    }
    let result = orchestrator.deploy(&request).await;
    finish(cli, &progress, result)
}

/// The module update as a stage of the deploy, after the backup: the one-off container
/// is made as the slots are (environment, volumes, network), and a failed update
/// restores the pre-deploy backup.
async fn update_stage(
    update: &UpdateConfig,
    backup: &BackupConfig,
    config: StackConfig,
) -> Result<UpdateStage, Error> {
    let docker = DockerSlots::connect().await?;
    let config = Arc::new(config);
    let spec = Arc::new(move |image: &str, release: &str| {
        config.slot_spec(Slot::Green, image, release, &deploy_core::NullSink)
    });
    let mut restorer = BackupRestorer::new(&backup.store, backup.database_url.clone());
    if let Some(dir) = &backup.data_dir {
        restorer = restorer.with_data_dir(dir);
    }
    if let Some(dir) = &backup.pg_bin {
        restorer = restorer.with_pg_bin(dir);
    }
    let mut settings = UpdateSettings {
        timeout: update.timeout,
        lock_wait: update.lock_wait,
        ..UpdateSettings::default()
    };
    if let Some(command) = &update.command {
        settings.command.clone_from(command);
    }
    Ok(UpdateStage::new(docker, spec, backup.database_url.clone())
        .with_strategy(update.strategy)
        .with_modules(update.modules.clone(), update.install.clone())
        .with_settings(settings)
        .with_addons_path(&update.addons_path)
        .with_restorer(Arc::new(restorer)))
}

/// The pre-deploy backup as a stage of the deploy.
fn backup_stage(backup: &BackupConfig, history: Option<History>) -> BackupStage {
    let mut stage =
        BackupStage::new(&backup.store, backup.database_url.clone()).required(backup.required);
    if let Some(dir) = &backup.data_dir {
        stage = stage.with_data_dir(dir);
    }
    if let Some(dir) = &backup.pg_bin {
        stage = stage.with_pg_bin(dir);
    }
    if let Some(history) = history {
        stage = stage.with_history(history);
    }
    stage
}

/// The stack file's `[backup]` with the command line's overrides, or `None` for no
/// backup (none configured, or `--no-backup`).
fn backup_config(
    stack_file: Option<&BackupConfig>,
    args: &DeployArgs,
) -> Result<Option<BackupConfig>, Error> {
    if args.no_backup {
        return Ok(None);
    }
    let mut backup = match (stack_file, &args.backup_store, &args.backup_db_url_env) {
        (Some(backup), _, _) => backup.clone(),
        (None, Some(store), Some(var)) => BackupConfig {
            store: store.clone(),
            database_url: SecretRef::env(var.as_str()),
            data_dir: None,
            pg_bin: None,
            required: true,
        },
        (None, None, None) if args.backup_data_dir.is_none() => return Ok(None),
        (None, _, _) => {
            return Err(Error::Config {
                field: "--backup-store".to_owned(),
                reason: "without a [backup] table in the stack file, a pre-deploy backup \
                         needs both --backup-store DIR and --backup-db-url-env VAR"
                    .to_owned(),
            })
        }
    };
    if let Some(store) = &args.backup_store {
        backup.store.clone_from(store);
    }
    if let Some(var) = &args.backup_db_url_env {
        backup.database_url = SecretRef::env(var.as_str());
    }
    if let Some(dir) = &args.backup_data_dir {
        backup.data_dir = Some(dir.clone());
    }
    Ok(Some(backup))
}

fn deploy_request(
    config: &StackConfig,
    args: &DeployArgs,
    steps: Option<&Vec<u8>>,
) -> Result<DeployRequest, Error> {
    let image = args
        .image
        .clone()
        .or_else(|| config.image.clone())
        .ok_or_else(|| Error::Config {
            field: "image".to_owned(),
            reason: "give --image or set `image` in the stack file".to_owned(),
        })?;
    let release = args
        .release
        .clone()
        .unwrap_or_else(|| default_release(&image));
    let mut request = DeployRequest::new(&image, &release);
    if let Some(steps) = steps {
        request = request.canary(steps);
    }
    request.release.git_sha.clone_from(&args.git_sha);
    request.rollback_window = args.rollback_window;
    request.keep_rollback_target = args.keep_rollback_target;
    request.validate()?;
    Ok(request)
}
