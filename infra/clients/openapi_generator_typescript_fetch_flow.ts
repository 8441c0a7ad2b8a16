// The quickstart flow through the `typescript-fetch` client openapi-generator makes from
// docs/openapi.json (in ./client). Environment: KRAFTER_URL (the API's base,
// .../api/v1/cron), KRAFTER_KEY, RECEIVER_URL (a local webhook receiver).
import * as assert from "node:assert/strict";
import { Configuration, JobsApi, ResponseError } from "./client";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const jobs = new JobsApi(
  new Configuration({ basePath: env("KRAFTER_URL"), accessToken: env("KRAFTER_KEY") }),
);
const receiver = env("RECEIVER_URL");
const tag = `flow-${Math.random().toString(16).slice(2, 10)}`; // this run's jobs alone
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function refusal(call: Promise<unknown>): Promise<{ status: number; body: any }> {
  try {
    await call;
  } catch (e) {
    if (e instanceof ResponseError) return { status: e.response.status, body: await e.response.json() };
    throw e;
  }
  throw new Error("the call was not refused");
}

async function main() {
  const cron = (await jobs.createJob({ jobCreate: {
    name: "Nightly report", scheduleType: "cron", schedule: "0 3 * * *",
    timezone: "Europe/Berlin", url: `${receiver}/report`, method: "POST",
    headers: { "X-Team": "ops" }, body: '{"kind":"nightly"}', timeoutMs: 5000, maxRetries: 0,
    tags: new Set([tag]), // `uniqueItems` arrays are Sets in this generator
  } })).data;
  assert.equal(cron.schedule, "0 3 * * *");
  assert.equal(cron.timezone, "Europe/Berlin");
  assert.deepEqual(cron.headers, { "X-Team": "ops" });
  assert.equal(cron.body, '{"kind":"nightly"}');
  assert.deepEqual(cron.tags, new Set([tag]));

  const interval = (await jobs.createJob({ jobCreate: {
    name: "Health Check", scheduleType: "interval", schedule: "every_5m",
    url: `${receiver}/health`, method: "GET", maxRetries: 0,
  } })).data;
  const once = (await jobs.createJob({ jobCreate: {
    name: "Launch", scheduleType: "once", schedule: "2099-01-15T10:00:00Z", url: `${receiver}/launch`,
  } })).data;
  assert.equal(once.nextRunAt?.getUTCFullYear(), 2099);

  const bad = await refusal(jobs.createJob({ jobCreate: {
    name: "Bad", scheduleType: "cron", schedule: "61 * * * *", url: receiver,
  } }));
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.details.schedule, ["is not a valid cron expression"]);

  const got = (await jobs.getJob({ id: interval.id })).data;
  assert.equal(got.name, "Health Check");
  const all = (await jobs.listJobs()).data.map((j) => j.id);
  for (const id of [cron.id, interval.id, once.id]) assert.ok(all.includes(id), id);
  assert.deepEqual((await jobs.listJobs({ tag: [tag] })).data.map((j) => j.id), [cron.id]);

  const updated = (await jobs.updateJob({ id: interval.id,
    jobPatch: { name: "Health Check (1m)", schedule: "every_1m" } })).data;
  assert.equal(updated.name, "Health Check (1m)");
  assert.equal(updated.schedule, "every_1m");

  const paused = (await jobs.pauseJob({ id: interval.id, pauseRequest: { reason: "deploy" } })).data;
  assert.equal(paused.enabled, false);
  assert.equal(paused.pausedReason, "deploy");
  assert.equal((await jobs.resumeJob({ id: interval.id })).data.enabled, true);

  assert.equal((await jobs.triggerJob({ id: cron.id })).ok, true);
  let runs = (await jobs.listExecutions({ id: cron.id })).data;
  for (let i = 0; i < 100 && runs[0]?.status !== "success"; i++) {
    await sleep(100);
    runs = (await jobs.listExecutions({ id: cron.id })).data;
  }
  assert.equal(runs[0]?.status, "success", JSON.stringify(runs));
  assert.equal(runs[0].httpStatus, 200);
  assert.equal(runs[0].trigger, "manual");
  const sent = JSON.parse(runs[0].responseBody ?? "null");
  assert.equal(sent.method, "POST");
  assert.equal(sent.path, "/report");
  assert.equal(sent.headers["x-team"], "ops");
  assert.equal(sent.body, '{"kind":"nightly"}');

  for (const job of [cron, interval, once]) assert.equal((await jobs.deleteJob({ id: job.id })).ok, true);
  const gone = await refusal(jobs.getJob({ id: interval.id }));
  assert.equal(gone.status, 404);
  assert.equal(gone.body.code, "not_found");
  console.log("openapi-generator typescript-fetch: the quickstart flow passed");
}

main().catch((e) => { console.error(e); process.exit(1); });
