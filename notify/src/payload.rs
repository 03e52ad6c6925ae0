//! The JSON each service expects.
//!
//! - Slack's incoming webhook: `text` (the notification's fallback) and `blocks` (a
//!   header, the summary, the facts, a context line).
//! - Teams Workflows: `{"type": "message", "attachments": [{"contentType":
//!   "application/vnd.microsoft.card.adaptive", "content": {AdaptiveCard 1.4}}]}` (the
//!   legacy `{"text": ...}` of the retired connectors fails there).
//! - A generic webhook: Alertmanager's webhook payload, version 4, one alert per notice
//!   (`status` `resolved` for a success, `firing` otherwise), so that anything that takes
//!   Alertmanager's webhooks takes ours.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{ChannelKind, Notice, NoticeKind};

/// The body for `kind`.
pub(crate) fn render(kind: ChannelKind, notice: &Notice) -> Value {
    match kind {
        ChannelKind::Slack => slack(notice),
        ChannelKind::Teams => teams(notice),
        ChannelKind::Webhook => webhook(notice),
    }
}

fn emoji(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Started => ":rocket:",
        NoticeKind::Succeeded => ":white_check_mark:",
        NoticeKind::Refused | NoticeKind::Inconclusive => ":warning:",
        NoticeKind::Alert => ":rotating_light:",
        NoticeKind::Failed | NoticeKind::RolledBack | NoticeKind::BackupFailed => ":x:",
    }
}

/// Slack's mrkdwn escapes: `&`, `<`, `>`.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn headline(notice: &Notice) -> String {
    format!("{}: {}", notice.kind.title(), notice.stack)
}

fn slack(notice: &Notice) -> Value {
    let fields: Vec<Value> = notice
        .all_facts()
        .iter()
        .take(10)
        .map(|(name, value)| {
            json!({"type": "mrkdwn", "text": format!("*{}*\n{}", mrkdwn(name), mrkdwn(value))})
        })
        .collect();
    json!({
        "text": format!("{} {}: {}", emoji(notice.kind), headline(notice), notice.summary),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline(notice), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{} {}", emoji(notice.kind), mrkdwn(&notice.summary))}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("odoo-deploy · {} · {}", notice.kind.severity(), notice.at.to_rfc3339())}
            ]}
        ]
    })
}

fn teams(notice: &Notice) -> Value {
    let facts: Vec<Value> = notice
        .all_facts()
        .iter()
        .map(|(name, value)| json!({"title": name, "value": value}))
        .collect();
    let colour = match notice.kind.severity() {
        "critical" => "Attention",
        "warning" => "Warning",
        _ => "Good",
    };
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": headline(notice), "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true},
                    {"type": "TextBlock", "text": notice.summary, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "text": format!("odoo-deploy · {}", notice.at.to_rfc3339()), "isSubtle": true, "size": "Small", "wrap": true}
                ]
            }
        }]
    })
}

fn webhook(notice: &Notice) -> Value {
    let alertname = format!(
        "OdooDeploy{}",
        notice
            .kind
            .as_str()
            .split('_')
            .map(|w| {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>()
    );
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(alertname));
    labels.insert("stack".into(), json!(notice.stack));
    labels.insert("severity".into(), json!(notice.kind.severity()));
    labels.insert("notice".into(), json!(notice.kind.as_str()));
    if let Some(release) = &notice.to_release {
        labels.insert("release".into(), json!(release));
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".into(), json!(notice.summary));
    let description = notice
        .all_facts()
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join("\n");
    annotations.insert("description".into(), json!(description));
    let fingerprint: String = Sha256::digest(
        format!(
            "{}\0{}\0{}",
            notice.stack,
            notice.kind.as_str(),
            notice.at.to_rfc3339()
        )
        .as_bytes(),
    )
    .iter()
    .take(8)
    .map(|b| format!("{b:02x}"))
    .collect();
    let status = if notice.kind == NoticeKind::Succeeded {
        "resolved"
    } else {
        "firing"
    };
    let ends_at = if status == "resolved" {
        notice.at.to_rfc3339()
    } else {
        "0001-01-01T00:00:00Z".to_owned()
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{stack=\"{}\"}}", notice.stack),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "odoo-deploy",
        "groupLabels": {"stack": notice.stack},
        "commonLabels": Value::Object(labels.clone()),
        "commonAnnotations": Value::Object(annotations.clone()),
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": Value::Object(labels),
            "annotations": Value::Object(annotations),
            "startsAt": notice.at.to_rfc3339(),
            "endsAt": ends_at,
            "generatorURL": "",
            "fingerprint": fingerprint
        }]
    })
}
