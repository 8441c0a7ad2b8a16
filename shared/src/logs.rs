//! Log output for both runtimes, one shape: text for a terminal, or JSON, one object per
//! line, with the event's fields at the top level (`job_id`, `run_id`, `execution_id`,
//! `status`, ...) and the fields of the span it happened in under `span` (an API request's
//! `request_id`, `method`, `path`, `team`), so CloudWatch Logs Insights or any JSON log
//! tool can query by job, run and request id. The hosted functions always log JSON; the
//! embedded server does with `KRAFTER_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `KRAFTER_LOG_FORMAT`'s value (unset or blank: text).
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).unwrap_or("") {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "invalid value {other:?} for KRAFTER_LOG_FORMAT: must be text or json"
            )),
        }
    }
}

/// Where and how: the filter, the format, the writer, and whether the text may be coloured
/// (a terminal) and carry a time (Lambda adds its own).
pub struct LogOutput<W> {
    pub filter: EnvFilter,
    pub format: LogFormat,
    pub writer: W,
    pub ansi: bool,
    pub time: bool,
}

impl<W> LogOutput<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    /// Installs the output as the global subscriber (once; later calls do nothing).
    pub fn init(self) {
        let _ = tracing::subscriber::set_global_default(self.subscriber());
    }

    /// The subscriber, for `init` or a test's `with_default`.
    pub fn subscriber(self) -> Box<dyn tracing::Subscriber + Send + Sync> {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(self.filter)
            .with_writer(self.writer);
        match (self.format, self.time) {
            (LogFormat::Json, true) => Box::new(json(builder).finish()),
            (LogFormat::Json, false) => Box::new(json(builder).without_time().finish()),
            (LogFormat::Text, true) => Box::new(builder.with_ansi(self.ansi).finish()),
            (LogFormat::Text, false) => Box::new(
                builder
                    .with_ansi(self.ansi)
                    .without_time()
                    .with_target(false)
                    .finish(),
            ),
        }
    }
}

type Builder<W> = tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    EnvFilter,
    W,
>;

fn json<W>(
    b: Builder<W>,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    EnvFilter,
    W,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    b.json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_events_ids_at_the_top_and_the_requests_in_its_span() {
        let buffer = Buffer::default();
        let out = LogOutput {
            filter: EnvFilter::new("info"),
            format: LogFormat::Json,
            writer: {
                let b = buffer.clone();
                move || b.clone()
            },
            ansi: false,
            time: false,
        };
        tracing::subscriber::with_default(out.subscriber(), || {
            let span = tracing::info_span!("request", request_id = "r-1", path = "/jobs");
            let _in = span.enter();
            tracing::info!(job_id = "j-1", run_id = "u-1", "attempt finished");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["job_id"], "j-1");
        assert_eq!(line["run_id"], "u-1");
        assert_eq!(line["message"], "attempt finished");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"]["request_id"], "r-1");
    }

    #[test]
    fn the_format_is_text_or_json() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("json")), Ok(LogFormat::Json));
        assert!(
            LogFormat::parse(Some("xml"))
                .unwrap_err()
                .contains("must be text or json")
        );
    }
}
