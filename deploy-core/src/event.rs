//! Progress events: how libraries say what they do without printing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// What kind of thing an [`Event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EventKind {
    /// Something began (a run, a gate check, a container start).
    Started,
    /// Something is under way and has news (a round finished, a retry).
    Progress,
    /// Something ended; its outcome is in the message and fields.
    Finished,
    /// Something a person should look at, that did not stop the work.
    Warning,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Started => "started",
            EventKind::Progress => "progress",
            EventKind::Finished => "finished",
            EventKind::Warning => "warning",
        })
    }
}

/// The value of a structured [`Event`] field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(v) => write!(f, "{v}"),
            FieldValue::Int(v) => write!(f, "{v}"),
            FieldValue::Float(v) => write!(f, "{v}"),
            FieldValue::Text(v) => f.write_str(v),
        }
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::Int(v)
    }
}

impl From<i32> for FieldValue {
    fn from(v: i32) -> Self {
        FieldValue::Int(i64::from(v))
    }
}

impl From<u32> for FieldValue {
    fn from(v: u32) -> Self {
        FieldValue::Int(i64::from(v))
    }
}

impl From<u64> for FieldValue {
    /// Values above `i64::MAX` saturate.
    fn from(v: u64) -> Self {
        FieldValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for FieldValue {
    /// Values above `i64::MAX` saturate.
    fn from(v: usize) -> Self {
        FieldValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::Float(v)
    }
}

impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Text(v)
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Text(v.to_owned())
    }
}

/// One thing a library reports: a kind, a subject, a message and structured fields.
///
/// The subject names what the event is about, in a form a person can read and a
/// program can group by: `"gates"`, `"gate health"`, `"slot green"`, `"secret"`.
/// Fields carry measurements and identifiers (`elapsed_ms`, `round`, `outcome`);
/// they never carry secrets.
///
/// ```
/// use deploy_core::{Event, EventKind};
///
/// let event = Event::finished("gate health", "passed")
///     .with_field("elapsed_ms", 12_u64)
///     .with_field("outcome", "pass");
/// assert_eq!(event.kind, EventKind::Finished);
/// assert_eq!(event.to_string(), "finished gate health: passed (elapsed_ms=12 outcome=pass)");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What kind of event this is.
    pub kind: EventKind,
    /// What it is about, e.g. `"gate health"`.
    pub subject: String,
    /// A short, lower-case, human-readable message.
    pub message: String,
    /// Structured fields, sorted by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
}

impl Event {
    /// An event with no fields.
    #[must_use]
    pub fn new(kind: EventKind, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Event {
            kind,
            subject: subject.into(),
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    /// An [`EventKind::Started`] event.
    #[must_use]
    pub fn started(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Event::new(EventKind::Started, subject, message)
    }

    /// An [`EventKind::Progress`] event.
    #[must_use]
    pub fn progress(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Event::new(EventKind::Progress, subject, message)
    }

    /// An [`EventKind::Finished`] event.
    #[must_use]
    pub fn finished(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Event::new(EventKind::Finished, subject, message)
    }

    /// An [`EventKind::Warning`] event.
    #[must_use]
    pub fn warning(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Event::new(EventKind::Warning, subject, message)
    }

    /// Adds (or replaces) a field.
    #[must_use]
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// The value of field `name`, if present.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)
    }
}

impl fmt::Display for Event {
    /// `kind subject: message (name=value ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.subject, self.message)?;
        if !self.fields.is_empty() {
            f.write_str(" (")?;
            for (i, (name, value)) in self.fields.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{name}={value}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Where libraries send [`Event`]s.
///
/// Libraries never print: they call [`EventSink::emit`] and let the binary decide
/// (progress bar, log line, JSON stream, nothing). Implementations must be cheap and
/// must not block for long or panic: `emit` is called from inside async tasks, often
/// while other work waits. They receive events from several threads at once.
///
/// ```
/// use deploy_core::{Event, EventSink, RecordingSink};
///
/// fn work(events: &dyn EventSink) {
///     events.emit(&Event::started("backup", "dumping database"));
/// }
///
/// let sink = RecordingSink::new();
/// work(&sink);
/// assert_eq!(sink.events()[0].subject, "backup");
/// ```
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn emit(&self, event: &Event);
}

impl<T: EventSink + ?Sized> EventSink for &T {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

impl<T: EventSink + ?Sized> EventSink for Arc<T> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

impl<T: EventSink + ?Sized> EventSink for Box<T> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

/// An [`EventSink`] that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: &Event) {}
}

/// An [`EventSink`] that keeps every event in memory, for tests.
///
/// ```
/// use deploy_core::{Event, EventSink, RecordingSink};
///
/// let sink = RecordingSink::new();
/// sink.emit(&Event::warning("secret", "plaintext in use"));
/// assert_eq!(sink.len(), 1);
/// assert_eq!(sink.take().len(), 1);
/// assert!(sink.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
}

/// Another name for [`RecordingSink`].
pub type VecSink = RecordingSink;

impl RecordingSink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        RecordingSink::default()
    }

    // A panic while holding the lock cannot leave a Vec half-pushed in a way that
    // matters here, so a poisoned lock is simply used.
    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the events received so far, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Removes and returns the events received so far.
    #[must_use]
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }

    /// How many events were received (and not taken).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event was received (or all were taken).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &Event) {
        self.lock().push(event.clone());
    }
}

/// An [`EventSink`] that turns events into `tracing` events (target `deploy_core::event`).
///
/// Levels: [`EventKind::Warning`] → `WARN`, [`EventKind::Started`] and
/// [`EventKind::Finished`] → `INFO`, [`EventKind::Progress`] → `DEBUG`. The subject and
/// kind become the `subject` and `kind` fields, the structured fields are rendered into
/// one `fields` field (`name=value ...`), and the message is the log message.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: &Event) {
        let fields = event
            .fields
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(" ");
        let subject = event.subject.as_str();
        let kind = event.kind;
        let message = event.message.as_str();
        match event.kind {
            EventKind::Warning => {
                tracing::warn!(subject, %kind, fields, "{message}");
            }
            EventKind::Progress => {
                tracing::debug!(subject, %kind, fields, "{message}");
            }
            EventKind::Started | EventKind::Finished => {
                tracing::info!(subject, %kind, fields, "{message}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_sink_keeps_order_through_arc() {
        let sink = Arc::new(RecordingSink::new());
        let dyn_sink: Arc<dyn EventSink> = sink.clone();
        dyn_sink.emit(&Event::started("a", "one"));
        dyn_sink.emit(&Event::finished("a", "two"));
        let events = sink.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].message, "one");
        assert_eq!(events[1].kind, EventKind::Finished);
    }

    #[test]
    fn fields_convert_and_display() {
        let event = Event::progress("gates", "round 2")
            .with_field("round", 2_u32)
            .with_field("ratio", 0.5)
            .with_field("ok", true)
            .with_field("huge", u64::MAX);
        assert_eq!(event.field("round"), Some(&FieldValue::Int(2)));
        assert_eq!(event.field("huge"), Some(&FieldValue::Int(i64::MAX)));
        assert_eq!(
            event.to_string(),
            format!(
                "progress gates: round 2 (huge={} ok=true ratio=0.5 round=2)",
                i64::MAX
            )
        );
    }

    #[test]
    fn event_serde_round_trip() {
        let event = Event::warning("gate health", "slow")
            .with_field("p95_ms", 2500.5)
            .with_field("route", "/web/login");
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"warning","subject":"gate health","message":"slow","fields":{"p95_ms":2500.5,"route":"/web/login"}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }

    #[test]
    fn null_and_tracing_sinks_accept_events() {
        let event = Event::warning("x", "y").with_field("n", 1_i64);
        NullSink.emit(&event);
        TracingSink.emit(&event);
        TracingSink.emit(&Event::progress("x", "y"));
        TracingSink.emit(&Event::started("x", "y"));
    }
}
