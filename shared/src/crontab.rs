//! Crontab lines that call `curl` or `wget`, read as job drafts: the schedule (five fields or
//! an `@daily`-style macro), the timezone of the last `CRON_TZ=`/`TZ=` line, and the request
//! (method, headers, body, timeout, URL). A line that cannot be a job is kept with the reason,
//! so that the plan lists it. The drafts go through the API's own rules when they are created.

use crate::domain::JobDraft;

/// One line of the crontab, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrontabLine {
    /// A job to create (line number, from 1).
    Job { line: usize, draft: Box<JobDraft> },
    /// A line with a command that is not one webhook call, with why.
    Skipped { line: usize, reason: String },
}

/// Reads a crontab's text.
pub fn read_crontab(text: &str) -> Vec<CrontabLine> {
    let mut timezone: Option<String> = None;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = assignment(trimmed) {
            match name {
                "CRON_TZ" | "TZ" => timezone = Some(value.to_owned()),
                _ => out.push(CrontabLine::Skipped {
                    line,
                    reason: format!("the variable {name} has no equivalent in a job"),
                }),
            }
            continue;
        }
        out.push(match job_of(trimmed, timezone.as_deref()) {
            Ok(draft) => CrontabLine::Job {
                line,
                draft: Box::new(draft),
            },
            Err(reason) => CrontabLine::Skipped { line, reason },
        });
    }
    out
}

/// `NAME=value` (a crontab environment line).
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| (name, value.trim().trim_matches('"').trim_matches('\'')))
}

/// The schedule and the command of a line, made a draft.
fn job_of(line: &str, timezone: Option<&str>) -> Result<JobDraft, String> {
    let (schedule, command) = split_schedule(line)?;
    let words = shell_words::split(command).map_err(|e| format!("cannot read the command: {e}"))?;
    let words = without_redirections(words)?;
    let program = words
        .first()
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .unwrap_or("");
    let mut draft = match program {
        "curl" => curl(&words[1..])?,
        "wget" => wget(&words[1..])?,
        "" => return Err("no command".into()),
        other => return Err(format!("the command is {other}, not curl or wget")),
    };
    let url = draft.url.clone().ok_or("the command names no URL")?;
    draft.name = Some(name_of(&url));
    draft.schedule_type = Some("cron".into());
    draft.schedule = Some(schedule);
    draft.timezone = timezone.map(str::to_owned);
    Ok(draft)
}

/// The five schedule fields (or a macro) and the rest of the line.
fn split_schedule(line: &str) -> Result<(String, &str), String> {
    if line.starts_with('@') {
        let (macro_, rest) = line.split_once(char::is_whitespace).ok_or("no command")?;
        if macro_ == "@reboot" {
            return Err("@reboot runs at boot, not on a schedule".into());
        }
        return Ok((macro_.to_owned(), rest.trim()));
    }
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..5 {
        let (field, tail) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or("fewer than five schedule fields and a command")?;
        // `* * * * curl …`: a field short, the command read as the fifth field.
        if ["curl", "wget"].contains(&field.rsplit('/').next().unwrap_or(field)) {
            return Err(format!("the schedule has {} fields, not 5", fields.len()));
        }
        fields.push(field);
        rest = tail;
    }
    Ok((fields.join(" "), rest.trim()))
}

/// The words without output redirections; anything else a shell does is refused.
fn without_redirections(words: Vec<String>) -> Result<Vec<String>, String> {
    let mut kept = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        if matches!(w.as_str(), "&&" | "||" | ";" | "|" | "&")
            || w.contains('`')
            || w.contains("$(")
        {
            return Err(
                "the command is more than one webhook call (a pipe, a list or a substitution)"
                    .into(),
            );
        }
        let redirect = w.trim_start_matches(['1', '2', '&']);
        if redirect.starts_with('>') || redirect.starts_with('<') {
            // `>/dev/null` is one word; `> /dev/null` takes the next.
            skip_next = redirect.trim_start_matches(['>', '<', '&']).is_empty();
            continue;
        }
        kept.push(w);
    }
    Ok(kept)
}

fn header(draft: &mut JobDraft, h: &str) -> Result<(), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("the header {h:?} has no ':'"))?;
    draft
        .headers
        .get_or_insert_with(Vec::new)
        .push((name.trim().to_owned(), value.trim().to_owned()));
    Ok(())
}

fn timeout(draft: &mut JobDraft, secs: &str) -> Result<(), String> {
    let s: f64 = secs
        .parse()
        .map_err(|_| format!("the timeout {secs:?} is not a number"))?;
    draft.timeout_ms = Some((s * 1000.0).round() as i64);
    Ok(())
}

/// curl's options that matter to a webhook; output and progress options are ignored.
fn curl(args: &[String]) -> Result<JobDraft, String> {
    const IGNORED: [&str; 5] = [
        "--silent",
        "--show-error",
        "--fail",
        "--insecure",
        "--verbose",
    ];
    // Short flags that only change what curl prints or its exit status, alone or together.
    let quiet = |s: &str| {
        s.len() > 1 && !s.starts_with("--") && s[1..].chars().all(|c| "sSfkqv".contains(c))
    };
    let mut draft = JobDraft::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-X" | "--request" => draft.method = Some(value()?.to_uppercase()),
            "-H" | "--header" => header(&mut draft, &value()?)?,
            "-d" | "--data" | "--data-binary" => draft.body = Some(Some(file_free(value()?)?)),
            "--data-raw" => draft.body = Some(Some(value()?)),
            "-I" | "--head" => draft.method = Some("HEAD".into()),
            "-u" | "--user" => basic_auth(&mut draft, &value()?),
            "-m" | "--max-time" => timeout(&mut draft, &value()?)?,
            "-o" | "--output" | "--connect-timeout" | "--retry" => {
                value()?;
            }
            "-L" | "--location" => {
                return Err("follows redirects (-L), which a job does not".into());
            }
            s if IGNORED.contains(&s) || quiet(s) => {}
            s if s.starts_with('-') => {
                return Err(format!("the curl option {s} has no equivalent"));
            }
            url => set_url(&mut draft, url)?,
        }
    }
    if draft.body.is_some() && draft.method.is_none() {
        draft.method = Some("POST".into());
    }
    Ok(draft)
}

/// wget's options that matter to a webhook.
fn wget(args: &[String]) -> Result<JobDraft, String> {
    let mut draft = JobDraft::default();
    let args = split_quiet_flags(args);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            // A short option with its value attached: `-O-`, `-T5`.
            _ if a.len() > 2 && ["-O", "-o", "-T", "-t"].contains(&&a[..2]) => {
                (&a[..2], Some(a[2..].to_owned()))
            }
            _ => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag {
            "--method" => draft.method = Some(value()?.to_uppercase()),
            "--header" => header(&mut draft, &value()?)?,
            "--post-data" | "--body-data" => draft.body = Some(Some(value()?)),
            "-T" | "--timeout" => timeout(&mut draft, &value()?)?,
            "-O" | "--output-document" | "-o" | "--output-file" | "-t" | "--tries" => {
                value()?;
            }
            "-q" | "--quiet" | "-nv" | "--no-verbose" | "--spider" => {}
            s if s.starts_with('-') => {
                return Err(format!("the wget option {s} has no equivalent"));
            }
            url => set_url(&mut draft, url)?,
        }
    }
    if draft.body.is_some() && draft.method.is_none() {
        draft.method = Some("POST".into());
    }
    Ok(draft)
}

/// curl reads `-d @file` from a file, which a job cannot do.
fn file_free(data: String) -> Result<String, String> {
    match data.strip_prefix('@') {
        Some(file) => Err(format!("the body is read from the file {file}")),
        None => Ok(data),
    }
}

/// `-u user:password` as the `Authorization: Basic` header curl sends for it.
fn basic_auth(draft: &mut JobDraft, user: &str) {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(user);
    let headers = draft.headers.get_or_insert_with(Vec::new);
    headers.push(("Authorization".into(), format!("Basic {token}")));
}

/// wget's short options given together (`-qO-`, `-qO file`, `-nvO-`): the quiet ones apart.
fn split_quiet_flags(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match ["-nv", "-q"]
            .iter()
            .find(|q| a.len() > q.len() && a.starts_with(*q))
        {
            Some(q) if !a.starts_with("--") => {
                out.push((*q).to_owned());
                out.push(format!("-{}", &a[q.len()..]));
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

fn set_url(draft: &mut JobDraft, url: &str) -> Result<(), String> {
    if draft.url.is_some() {
        return Err("the command calls more than one URL".into());
    }
    draft.url = Some(url.to_owned());
    Ok(())
}

/// A job name from the URL: its host and path, at most 200 characters.
fn name_of(url: &str) -> String {
    let bare = url.split_once("://").map_or(url, |(_, rest)| rest);
    let bare = bare.split(['?', '#']).next().unwrap_or(bare);
    bare.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(line: &CrontabLine) -> &JobDraft {
        match line {
            CrontabLine::Job { draft, .. } => draft,
            other => panic!("not a job: {other:?}"),
        }
    }

    #[test]
    fn curl_and_wget_lines_become_jobs_with_their_requests() {
        let tab = r#"
# nightly report
CRON_TZ=Europe/Berlin
0 2 * * * curl -fsS -X PUT -H 'Authorization: Bearer t' -H "X-A: 1" -d '{"a":1}' -m 20 https://example.com/report >/dev/null 2>&1
@hourly /usr/bin/wget -q -O /dev/null --post-data='x=1' --timeout=5 https://example.com/hook?src=cron
TZ=UTC
*/5 * * * * curl https://example.com/ping
"#;
        let lines = read_crontab(tab);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        let report = job(&lines[0]);
        assert_eq!(report.schedule.as_deref(), Some("0 2 * * *"));
        assert_eq!(report.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(report.method.as_deref(), Some("PUT"));
        assert_eq!(report.body, Some(Some(r#"{"a":1}"#.into())));
        assert_eq!(report.timeout_ms, Some(20_000));
        assert_eq!(
            report.headers.as_ref().unwrap()[0],
            ("Authorization".into(), "Bearer t".into())
        );
        assert_eq!(report.name.as_deref(), Some("example.com/report"));
        let hook = job(&lines[1]);
        assert_eq!(hook.schedule.as_deref(), Some("@hourly"));
        assert_eq!(hook.method.as_deref(), Some("POST"));
        assert_eq!(hook.timeout_ms, Some(5_000));
        assert_eq!(
            hook.url.as_deref(),
            Some("https://example.com/hook?src=cron")
        );
        let ping = job(&lines[2]);
        assert_eq!(ping.timezone.as_deref(), Some("UTC"));
        assert_eq!(ping.method, None, "GET, the default");
    }

    #[test]
    fn curls_head_and_user_and_wgets_grouped_flags_are_understood() {
        let tab = "@weekly curl -I https://example.com/head\n\
                   0 8 * * * curl -u user:pass https://example.com/auth\n\
                   @hourly wget -qO /dev/null https://example.com/quiet\n\
                   @hourly wget -qO- https://example.com/stdout\n";
        let lines = read_crontab(tab);
        assert_eq!(job(&lines[0]).method.as_deref(), Some("HEAD"));
        let auth = &job(&lines[1]).headers.as_ref().unwrap()[0];
        assert_eq!(*auth, ("Authorization".into(), "Basic dXNlcjpwYXNz".into()));
        assert_eq!(
            job(&lines[2]).url.as_deref(),
            Some("https://example.com/quiet")
        );
        assert_eq!(
            job(&lines[3]).url.as_deref(),
            Some("https://example.com/stdout")
        );
    }

    #[test]
    fn lines_that_are_not_one_webhook_call_are_listed_with_the_reason() {
        let tab = "MAILTO=ops@example.com\n\
                   @reboot curl https://example.com/up\n\
                   0 * * * * /usr/local/bin/backup.sh\n\
                   0 * * * * curl https://a.example/ && curl https://b.example/\n\
                   0 * * * * curl -L https://example.com/\n\
                   0 * *\n\
                   * * * * curl https://example.com/four\n\
                   0 * * * * curl -d @body.json https://example.com/file\n";
        let reasons: Vec<String> = read_crontab(tab)
            .into_iter()
            .map(|l| match l {
                CrontabLine::Skipped { line, reason } => format!("{line}: {reason}"),
                CrontabLine::Job { line, .. } => format!("{line}: converted"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "1: the variable MAILTO has no equivalent in a job",
                "2: @reboot runs at boot, not on a schedule",
                "3: the command is backup.sh, not curl or wget",
                "4: the command is more than one webhook call (a pipe, a list or a substitution)",
                "5: follows redirects (-L), which a job does not",
                "6: fewer than five schedule fields and a command",
                "7: the schedule has 4 fields, not 5",
                "8: the body is read from the file body.json",
            ]
        );
    }
}
