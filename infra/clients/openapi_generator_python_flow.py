"""The quickstart flow through the `python` client openapi-generator makes from
docs/openapi.json (package `krafter_oag`). Environment: KRAFTER_URL (the API's base,
.../api/v1/cron), KRAFTER_KEY, RECEIVER_URL (a local webhook receiver)."""

import json
import os
import time
import uuid

import krafter_oag
from krafter_oag.models import JobCreate, JobPatch, PauseRequest

config = krafter_oag.Configuration(host=os.environ["KRAFTER_URL"],
                                   access_token=os.environ["KRAFTER_KEY"])
jobs = krafter_oag.JobsApi(krafter_oag.ApiClient(config))
receiver = os.environ["RECEIVER_URL"]
tag = "flow-" + uuid.uuid4().hex[:8]  # this run's jobs alone

cron = jobs.create_job(JobCreate(
    name="Nightly report", schedule_type="cron", schedule="0 3 * * *",
    timezone="Europe/Berlin", url=receiver + "/report", method="POST",
    headers={"X-Team": "ops"}, body='{"kind":"nightly"}', timeout_ms=5000, max_retries=0,
    tags=[tag])).data
assert cron.schedule == "0 3 * * *" and cron.timezone == "Europe/Berlin"
assert cron.headers == {"X-Team": "ops"} and cron.body == '{"kind":"nightly"}'
assert cron.method == "POST" and cron.tags == [tag]

interval = jobs.create_job(JobCreate(
    name="Health Check", schedule_type="interval", schedule="every_5m",
    url=receiver + "/health", method="GET", max_retries=0)).data
once = jobs.create_job(JobCreate(
    name="Launch", schedule_type="once", schedule="2099-01-15T10:00:00Z",
    url=receiver + "/launch")).data
assert once.next_run_at.year == 2099

try:
    jobs.create_job(JobCreate(name="Bad", schedule_type="cron", schedule="61 * * * *",
                              url=receiver))
    raise AssertionError("an invalid cron expression was accepted")
except krafter_oag.ApiException as refused:
    assert refused.status == 422, refused
    assert json.loads(refused.body)["details"]["schedule"] == ["is not a valid cron expression"]

got = jobs.get_job(interval.id).data
assert got.name == "Health Check" and got.schedule == "every_5m"
assert {j.id for j in jobs.list_jobs().data} >= {cron.id, interval.id, once.id}
assert [j.id for j in jobs.list_jobs(tag=[tag]).data] == [cron.id]

updated = jobs.update_job(interval.id, JobPatch(name="Health Check (1m)", schedule="every_1m")).data
assert updated.name == "Health Check (1m)" and updated.schedule == "every_1m"

paused = jobs.pause_job(interval.id, pause_request=PauseRequest(reason="deploy")).data
assert paused.enabled is False and paused.paused_reason == "deploy"
assert jobs.resume_job(interval.id).data.enabled is True

assert jobs.trigger_job(cron.id).ok is True
for _ in range(100):
    runs = jobs.list_executions(cron.id).data
    if runs and runs[0].status == "success":
        break
    time.sleep(0.1)
else:
    raise AssertionError(f"no successful execution: {runs!r}")
assert runs[0].http_status == 200 and runs[0].trigger == "manual"
sent = json.loads(runs[0].response_body)
assert sent["method"] == "POST" and sent["path"] == "/report", sent
assert sent["headers"]["x-team"] == "ops" and sent["body"] == '{"kind":"nightly"}', sent

for job in (cron, interval, once):
    assert jobs.delete_job(job.id).ok is True
try:
    jobs.get_job(interval.id)
    raise AssertionError("a deleted job was found")
except krafter_oag.ApiException as gone:
    assert gone.status == 404 and json.loads(gone.body)["code"] == "not_found"
print("openapi-generator python: the quickstart flow passed")
