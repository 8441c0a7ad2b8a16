//! Request bodies at the HTTP edge: bytes → a JSON object (refusing a key given twice at
//! any depth) → a typed [`JobDraft`], reporting every field of the wrong JSON type at once.
//! The rules of each field's value are the domain's (`JobDraft::check_new` / `check_patch`).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::domain::{
    BackfillRange, FieldErrors, InputError, JobDraft, PauseReason, WRITABLE_FIELDS,
};

/// Parses a request body that must be one JSON object. A key repeated in any object is an
/// error: parsers disagree on which of the two wins, so a proxy or validator in front of
/// Krafter could check one value while Krafter used the other.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, FieldErrors> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de
        .deserialize_any(UniqueKeys)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| FieldErrors::single("body", e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(FieldErrors::single("body", "must be a JSON object")),
    }
}

/// Builds a `serde_json::Value` like its own `Deserialize`, except that a repeated object
/// key is an error naming it.
struct UniqueKeys;

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(UniqueKeysSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(UniqueKeysSeed)?;
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears more than once"
                )));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

struct UniqueKeysSeed;

impl<'de> de::DeserializeSeed<'de> for UniqueKeysSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

/// Reads a job draft from a JSON object: each writable field with its JSON type checked
/// (every wrong type reported at once, as `InputError::Types`), other names kept for the
/// domain to refuse as read-only or unknown.
pub fn read_job_draft(map: &Map<String, Value>) -> Result<JobDraft, InputError> {
    let mut r = Reader {
        map,
        types: FieldErrors::default(),
    };
    let draft = JobDraft {
        name: r.string("name"),
        schedule_type: r.string("schedule_type"),
        schedule: r.string("schedule"),
        timezone: r.string("timezone"),
        url: r.string("url"),
        method: r.string("method"),
        headers: r.string_map("headers"),
        body: r.nullable_string("body"),
        timeout_ms: r.integer("timeout_ms"),
        max_retries: r.integer("max_retries"),
        enabled: r.boolean("enabled"),
        failure_notify: r.boolean("failure_notify"),
        retry_backoff: r.string("retry_backoff"),
        retry_base_ms: r.nullable(Reader::integer, "retry_base_ms"),
        retry_max_ms: r.nullable(Reader::integer, "retry_max_ms"),
        expect_status: r.nullable(Reader::string_list, "expect_status"),
        expect_body: r.nullable_string("expect_body"),
        tags: r.nullable(Reader::string_list, "tags"),
        notify_after_failures: r.integer("notify_after_failures"),
        auto_disable_after_failures: r.nullable(Reader::integer, "auto_disable_after_failures"),
        notify_url: r.nullable_string("notify_url"),
        notify_format: r.string("notify_format"),
        starts_at: r.nullable_string("starts_at"),
        ends_at: r.nullable_string("ends_at"),
        catchup_window_s: r.nullable(Reader::integer, "catchup_window_s"),
        overlap: r.string("overlap"),
        jitter_s: r.integer("jitter_s"),
        other_fields: map
            .keys()
            .filter(|k| !WRITABLE_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect(),
    };
    if r.types.is_empty() {
        Ok(draft)
    } else {
        Err(InputError::Types(r.types))
    }
}

/// The fields of a job a schedule preview takes.
pub const PREVIEW_FIELDS: [&str; 6] = [
    "schedule_type",
    "schedule",
    "timezone",
    "starts_at",
    "ends_at",
    "jitter_s",
];

/// A schedule preview request: `schedule_type`, `schedule`, `timezone` (as a job's) and
/// `count`, JSON types checked like a job draft's.
pub fn read_preview(map: &Map<String, Value>) -> Result<(JobDraft, Option<i64>), InputError> {
    const FIELDS: [&str; 7] = [
        PREVIEW_FIELDS[0],
        PREVIEW_FIELDS[1],
        PREVIEW_FIELDS[2],
        PREVIEW_FIELDS[3],
        PREVIEW_FIELDS[4],
        PREVIEW_FIELDS[5],
        "count",
    ];
    let mut r = Reader {
        map,
        types: FieldErrors::default(),
    };
    let draft = JobDraft {
        schedule_type: r.string("schedule_type"),
        schedule: r.string("schedule"),
        timezone: r.string("timezone"),
        starts_at: r.nullable_string("starts_at"),
        ends_at: r.nullable_string("ends_at"),
        jitter_s: r.integer("jitter_s"),
        other_fields: map
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .cloned()
            .collect(),
        ..JobDraft::default()
    };
    let count = r.integer("count");
    if r.types.is_empty() {
        Ok((draft, count))
    } else {
        Err(InputError::Types(r.types))
    }
}

/// A backfill request's body: `{"from": timestamp, "until": timestamp}` (RFC 3339), `from`
/// before `until`.
pub fn read_backfill(map: &Map<String, Value>) -> Result<BackfillRange, InputError> {
    let mut r = Reader {
        map,
        types: FieldErrors::default(),
    };
    let (from, until) = (r.string("from"), r.string("until"));
    if !r.types.is_empty() {
        return Err(InputError::Types(r.types));
    }
    let mut errors = FieldErrors::default();
    for key in map
        .keys()
        .filter(|k| !["from", "until"].contains(&k.as_str()))
    {
        errors.add(key, "is not a known field");
    }
    let mut time = |name: &str, v: Option<String>| match v {
        None => errors.refuse(name, "can't be blank"),
        Some(v) => match chrono::DateTime::parse_from_rfc3339(&v) {
            Ok(t) => Some(t.with_timezone(&chrono::Utc)),
            Err(_) => errors.refuse(name, "must be an ISO 8601 timestamp (2026-01-31T09:00:00Z)"),
        },
    };
    let (from, until) = (time("from", from), time("until", until));
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        errors.add("until", "must be after from");
    }
    match (from, until) {
        (Some(from), Some(until)) if errors.is_empty() => Ok(BackfillRange { from, until }),
        _ => Err(InputError::Invalid(errors)),
    }
}

/// A pause request's body: `{"reason": "..."}` (1 to 200 characters), or `{}`.
pub fn read_pause(map: &Map<String, Value>) -> Result<Option<PauseReason>, InputError> {
    let mut r = Reader {
        map,
        types: FieldErrors::default(),
    };
    let reason = r.nullable_string("reason");
    if !r.types.is_empty() {
        return Err(InputError::Types(r.types));
    }
    let mut errors = FieldErrors::default();
    for key in map.keys().filter(|k| k.as_str() != "reason") {
        errors.add(key, "is not a known field");
    }
    let reason = match reason.flatten() {
        Some(text) => PauseReason::parse(&text)
            .map_err(|m| errors.add("reason", m))
            .ok(),
        None => None,
    };
    match errors.is_empty() {
        true => Ok(reason),
        false => Err(InputError::Invalid(errors)),
    }
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    types: FieldErrors,
}

impl Reader<'_> {
    fn string(&mut self, f: &str) -> Option<String> {
        match self.map.get(f)? {
            Value::String(s) => Some(s.clone()),
            _ => self.wrong(f, "must be a string"),
        }
    }
    fn nullable_string(&mut self, f: &str) -> Option<Option<String>> {
        match self.map.get(f)? {
            Value::String(s) => Some(Some(s.clone())),
            Value::Null => Some(None),
            _ => self.wrong(f, "must be a string or null"),
        }
    }
    /// `read`'s value, or `Some(None)` for an explicit `null`.
    fn nullable<T>(
        &mut self,
        read: fn(&mut Self, &str) -> Option<T>,
        f: &str,
    ) -> Option<Option<T>> {
        match self.map.get(f)? {
            Value::Null => Some(None),
            _ => read(self, f).map(Some),
        }
    }
    fn string_list(&mut self, f: &str) -> Option<Vec<String>> {
        let list = match self.map.get(f)? {
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => None,
        };
        match list {
            Some(list) => Some(list),
            None => self.wrong(f, "must be an array of strings"),
        }
    }
    fn integer(&mut self, f: &str) -> Option<i64> {
        match self.map.get(f)? {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            // Larger than any limit: the domain refuses it with the field's range.
            Value::Number(n) if n.is_u64() => Some(i64::MAX),
            _ => self.wrong(f, "must be an integer"),
        }
    }
    fn boolean(&mut self, f: &str) -> Option<bool> {
        match self.map.get(f)? {
            Value::Bool(b) => Some(*b),
            _ => self.wrong(f, "must be a boolean"),
        }
    }
    fn string_map(&mut self, f: &str) -> Option<Vec<(String, String)>> {
        let Value::Object(m) = self.map.get(f)? else {
            return self.wrong(f, "must be an object of strings");
        };
        let mut out = Vec::with_capacity(m.len());
        for (k, v) in m {
            match v {
                Value::String(s) => out.push((k.clone(), s.clone())),
                _ => self.types.add(f, format!("{k} must be a string")),
            }
        }
        Some(out)
    }
    fn wrong<T>(&mut self, f: &str, message: &str) -> Option<T> {
        self.types.add(f, message);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body_error(raw: &str) -> String {
        parse_object(raw.as_bytes())
            .unwrap_err()
            .get("body")
            .unwrap()[0]
            .clone()
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        for (raw, key) in [
            (r#"{"url": "a", "url": "b"}"#, "url"),
            (r#"{"headers": {"X": "1", "X": "2"}}"#, "X"),
            (r#"{"a": [{"k": 1, "k": 2}]}"#, "k"),
        ] {
            let message = body_error(raw);
            assert!(
                message.starts_with(&format!("the key {key:?} appears more than once")),
                "{message}"
            );
        }
        let ok = parse_object(br#"{"a": {"k": 1}, "b": {"k": 2}, "n": 1.5, "x": [null, true]}"#);
        assert_eq!(
            Value::Object(ok.unwrap()),
            json!({"a": {"k": 1}, "b": {"k": 2}, "n": 1.5, "x": [null, true]})
        );
    }

    #[test]
    fn only_one_json_object_is_a_body() {
        assert_eq!(body_error("[1, 2]"), "must be a JSON object");
        assert!(body_error("{not json").contains("line 1"));
        assert!(body_error(r#"{"a": 1} {"b": 2}"#).contains("trailing characters"));
    }

    #[test]
    fn wrong_json_types_are_type_errors() {
        let map = json!({
            "name": "x", "timeout_ms": "30000", "enabled": 1, "headers": {"X-A": 1}
        });
        match read_job_draft(map.as_object().unwrap()) {
            Err(InputError::Types(e)) => {
                assert_eq!(e.get("timeout_ms").unwrap(), ["must be an integer"]);
                assert_eq!(e.get("enabled").unwrap(), ["must be a boolean"]);
                assert_eq!(e.get("headers").unwrap(), ["X-A must be a string"]);
                assert_eq!(e.get("name"), None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_names_are_kept_for_the_domain_to_refuse() {
        let map = json!({"name": "x", "colour": "blue", "id": "1"});
        let draft = read_job_draft(map.as_object().unwrap()).unwrap();
        assert_eq!(draft.other_fields, ["colour", "id"]);
        assert_eq!(draft.name.as_deref(), Some("x"));
    }
}
