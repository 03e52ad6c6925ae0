//! Slots on the real Docker engine, with the locally built fake Odoo image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use deploy_test_support as util;

use std::process::Command;
use std::time::Duration;

use deploy_bluegreen::docker::{
    CreateOutcome, DockerSlots, ReadyOptions, RemoveOutcome, StartOutcome, StopOutcome,
};
use deploy_bluegreen::error::StartFailure;
use deploy_bluegreen::slot::{
    ContainerStatus, Limits, Mount, MountSource, LABEL_IMAGE, LABEL_RELEASE, LABEL_SLOT,
    LABEL_STACK,
};
use deploy_bluegreen::{Error, Slot, SlotSpec};
use secrecy::SecretString;
use util::{docker, fake_args, fake_image, StackGuard};

fn spec(stack: &str, slot: Slot, release: &str) -> SlotSpec {
    let mut spec = SlotSpec::new(stack, slot, &fake_image(), release);
    spec.args = fake_args(release);
    spec.secret_env
        .insert("ODOO_PASSWORD".to_owned(), SecretString::from("admin"));
    // The fake serves /websocket on its HTTP port.
    spec.realtime = None;
    spec
}

fn ready() -> ReadyOptions {
    ReadyOptions {
        timeout: Duration::from_secs(30),
        ..ReadyOptions::default()
    }
}

fn docker_inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn release_at(addr: std::net::SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/web/health"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.headers()["X-Odoo-Release"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_slot_is_created_started_inspected_stopped_and_removed() {
    let guard = StackGuard::new();
    let stack = guard.stack.as_str();
    let docker = docker().await;
    let network = format!("{stack}-net");
    let made = Command::new("docker")
        .args(["network", "create", &network])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let mut blue = spec(stack, Slot::Blue, "r1");
    blue.env.insert("ODOO_STAGE".to_owned(), "test".to_owned());
    blue.mounts.push(Mount {
        source: MountSource::Volume(format!("{stack}-filestore")),
        target: "/var/lib/odoo".to_owned(),
        read_only: false,
    });
    blue.network = Some(network.clone());
    blue.limits = Limits {
        memory_bytes: Some(256 * 1024 * 1024),
        cpus: Some(0.5),
    };

    let info = docker.launch(&blue, &ready()).await.unwrap();
    assert_eq!(info.name, format!("{stack}-blue"));
    assert_eq!(info.slot, Slot::Blue);
    assert_eq!(info.release, "r1");
    assert_eq!(info.image, fake_image());
    assert_eq!(info.status, ContainerStatus::Running);
    let http = info.http.expect("the HTTP port is published");
    assert!(
        http.ip().is_loopback(),
        "published on 127.0.0.1 only: {http}"
    );
    assert_ne!(http.port(), 0, "the ephemeral port is read back");
    assert_eq!(release_at(http).await, "r1");

    // What Docker holds is what was asked for.
    let name = &info.name;
    assert_eq!(docker_inspect(name, "{{.HostConfig.Memory}}"), "268435456");
    assert_eq!(
        docker_inspect(name, "{{.HostConfig.NanoCpus}}"),
        "500000000"
    );
    assert_eq!(
        docker_inspect(
            name,
            "{{(index (index .HostConfig.PortBindings \"8069/tcp\") 0).HostIp}}"
        ),
        "127.0.0.1"
    );
    assert!(
        docker_inspect(name, "{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}")
            .contains(&format!("{stack}-filestore:/var/lib/odoo"))
    );
    assert!(docker_inspect(
        name,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
    )
    .contains(&network));
    let env = docker_inspect(name, "{{range .Config.Env}}{{.}} {{end}}");
    assert!(env.contains("ODOO_STAGE=test") && env.contains("ODOO_PASSWORD="));
    for (label, value) in [
        (LABEL_STACK, stack),
        (LABEL_SLOT, "blue"),
        (LABEL_RELEASE, "r1"),
        (LABEL_IMAGE, fake_image().as_str()),
    ] {
        assert_eq!(
            info.labels.get(label).map(String::as_str),
            Some(value),
            "{label}"
        );
    }

    // The state comes from Docker.
    let state = docker.state(stack).await.unwrap();
    assert_eq!(state.running(), vec![Slot::Blue]);
    assert!(state.green.is_none());
    assert_eq!(state.blue.as_ref(), Some(&info));

    // Idempotent steps.
    assert_eq!(
        docker.start(stack, Slot::Blue).await.unwrap(),
        StartOutcome::AlreadyRunning
    );
    let grace = Duration::from_secs(5);
    assert_eq!(
        docker.stop(stack, Slot::Blue, grace).await.unwrap(),
        StopOutcome::Stopped
    );
    assert_eq!(
        docker.stop(stack, Slot::Blue, grace).await.unwrap(),
        StopOutcome::AlreadyStopped
    );
    let stopped = docker.inspect(stack, Slot::Blue).await.unwrap().unwrap();
    assert_eq!(stopped.status, ContainerStatus::Exited);
    assert_eq!(stopped.http, None, "a stopped slot publishes nothing");
    assert_eq!(
        docker.start(stack, Slot::Blue).await.unwrap(),
        StartOutcome::Started
    );
    let restarted = docker
        .wait_slot_ready(stack, Slot::Blue, "/web/health", &ready())
        .await
        .unwrap();
    assert_eq!(release_at(restarted.http.unwrap()).await, "r1");

    let logs = docker.logs(stack, Slot::Blue, 20).await.unwrap();
    assert!(logs.contains("listening on"), "{logs}");

    assert_eq!(
        docker.remove(stack, Slot::Blue).await.unwrap(),
        RemoveOutcome::Removed
    );
    assert_eq!(
        docker.remove(stack, Slot::Blue).await.unwrap(),
        RemoveOutcome::AlreadyGone
    );
    assert!(docker.inspect(stack, Slot::Blue).await.unwrap().is_none());
    assert!(docker.state(stack).await.unwrap().running().is_empty());
    assert!(matches!(
        docker.stop(stack, Slot::Blue, grace).await,
        Err(Error::SlotNotFound {
            slot: Slot::Blue,
            ..
        })
    ));
    assert!(matches!(
        docker.logs(stack, Slot::Blue, 5).await,
        Err(Error::SlotNotFound { .. })
    ));
}

#[tokio::test]
async fn a_name_in_use_is_reused_when_the_labels_match_and_refused_otherwise() {
    let guard = StackGuard::new();
    let stack = guard.stack.as_str();
    let docker = docker().await;
    let green = spec(stack, Slot::Green, "r7");
    let (outcome, first) = docker.create(&green).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
    assert_eq!(first.status, ContainerStatus::Created);
    let (outcome, second) = docker.create(&green).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Reused);
    assert_eq!(second.id, first.id);

    let other = spec(stack, Slot::Green, "r8");
    match docker.create(&other).await {
        Err(Error::NameConflict {
            container,
            expected_release,
            found_labels,
            ..
        }) => {
            assert_eq!(container, format!("{stack}-green"));
            assert_eq!(expected_release, "r8");
            assert!(found_labels.contains(&(LABEL_RELEASE.to_owned(), "r7".to_owned())));
        }
        other => panic!("expected NameConflict, got {other:?}"),
    }
    // The existing container was left alone.
    assert_eq!(
        docker
            .inspect(stack, Slot::Green)
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
}

#[tokio::test]
async fn a_slot_that_exits_at_once_fails_with_its_logs() {
    let guard = StackGuard::new();
    let stack = guard.stack.as_str();
    let docker = docker().await.with_log_tail(20);
    let mut broken = spec(stack, Slot::Green, "bad");
    broken.args.push("--no-such-flag".to_owned());
    match docker.launch(&broken, &ready()).await {
        Err(Error::SlotFailedToStart {
            slot,
            container,
            reason: StartFailure::Exited { exit_code, .. },
            logs,
        }) => {
            assert_eq!(slot, Slot::Green);
            assert_eq!(container, format!("{stack}-green"));
            assert_ne!(exit_code, Some(0));
            assert!(
                logs.contains("no-such-flag"),
                "the container's logs are in the error: {logs:?}"
            );
        }
        other => panic!("expected SlotFailedToStart/Exited, got {other:?}"),
    }
    let state = docker.state(stack).await.unwrap();
    assert_eq!(state.green.unwrap().status, ContainerStatus::Exited);
}

#[tokio::test]
async fn a_slot_whose_health_never_answers_fails_with_its_logs() {
    let guard = StackGuard::new();
    let stack = guard.stack.as_str();
    let docker = docker().await;
    let mut deaf = spec(stack, Slot::Blue, "deaf");
    // It listens, but not on the published port.
    deaf.args[1] = "0.0.0.0:9999".to_owned();
    let options = ReadyOptions {
        timeout: Duration::from_secs(2),
        ..ReadyOptions::default()
    };
    match docker.launch(&deaf, &options).await {
        Err(Error::SlotFailedToStart {
            reason: StartFailure::NotReady { url, .. },
            logs,
            ..
        }) => {
            assert!(url.ends_with("/web/health"), "{url}");
            assert!(logs.contains("listening on"), "{logs:?}");
        }
        other => panic!("expected SlotFailedToStart/NotReady, got {other:?}"),
    }
}

#[tokio::test]
async fn a_host_port_in_use_is_a_refused_start_with_docker_status() {
    let guard = StackGuard::new();
    let stack = guard.stack.as_str();
    let docker = docker().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut clash = spec(stack, Slot::Blue, "clash");
    clash.http.host_port = taken.local_addr().unwrap().port();
    match docker.launch(&clash, &ready()).await {
        Err(Error::SlotFailedToStart {
            reason:
                StartFailure::StartRefused {
                    status_code,
                    message,
                },
            ..
        }) => {
            assert_eq!(status_code, Some(500), "{message}");
        }
        other => panic!("expected SlotFailedToStart/StartRefused, got {other:?}"),
    }
}

#[tokio::test]
async fn the_state_is_read_back_from_docker_labels() {
    let guard = StackGuard::new();
    let stack = guard.stack.as_str();
    let docker = docker().await;
    let (blue_spec, green_spec) = (
        spec(stack, Slot::Blue, "2024.1"),
        spec(stack, Slot::Green, "2024.2"),
    );
    let options = ready();
    let (blue, green) = tokio::join!(
        docker.launch(&blue_spec, &options),
        docker.launch(&green_spec, &options),
    );
    let (blue, green) = (blue.unwrap(), green.unwrap());

    // A new client, nothing remembered: everything comes from Docker.
    let fresh = DockerSlots::connect().await.unwrap();
    let state = fresh.state(stack).await.unwrap();
    assert_eq!(state.stack, stack);
    assert_eq!(state.running(), vec![Slot::Blue, Slot::Green]);
    let (b, g) = (state.blue.unwrap(), state.green.unwrap());
    assert_eq!(
        (b.release.as_str(), g.release.as_str()),
        ("2024.1", "2024.2")
    );
    assert_eq!((b.http, g.http), (blue.http, green.http));
    assert_eq!(release_at(g.http.unwrap()).await, "2024.2");

    // Another stack's containers are not ours.
    let other = StackGuard::new();
    assert!(fresh.state(&other.stack).await.unwrap().blue.is_none());
}
