// The quickstart flow through types openapi-typescript makes from docs/openapi.json
// (./schema.ts), used by the openapi-fetch client: every path, parameter and body below is
// checked against the document by the compiler. Environment: KRAFTER_URL (the API's base,
// .../api/v1/cron), KRAFTER_KEY, RECEIVER_URL (a local webhook receiver).
import * as assert from "node:assert/strict";
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const api = createClient<paths>({
  baseUrl: env("KRAFTER_URL"),
  headers: { Authorization: `Bearer ${env("KRAFTER_KEY")}` },
});
const receiver = env("RECEIVER_URL");
const tag = `flow-${Math.random().toString(16).slice(2, 10)}`; // this run's jobs alone
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  assert.ok(result.data !== undefined, `${result.response.status} ${JSON.stringify(result.error)}`);
  return result.data;
}

async function main() {
  const cron = ok(await api.POST("/jobs", { body: {
    name: "Nightly report", schedule_type: "cron", schedule: "0 3 * * *",
    timezone: "Europe/Berlin", url: `${receiver}/report`, method: "POST",
    headers: { "X-Team": "ops" }, body: '{"kind":"nightly"}', timeout_ms: 5000, max_retries: 0,
    tags: [tag],
  } })).data;
  assert.equal(cron.schedule, "0 3 * * *");
  assert.deepEqual(cron.headers, { "X-Team": "ops" });
  assert.equal(cron.body, '{"kind":"nightly"}');
  assert.deepEqual(cron.tags, [tag]);

  const interval = ok(await api.POST("/jobs", { body: {
    name: "Health Check", schedule_type: "interval", schedule: "every_5m",
    url: `${receiver}/health`, method: "GET", max_retries: 0,
  } })).data;
  const once = ok(await api.POST("/jobs", { body: {
    name: "Launch", schedule_type: "once", schedule: "2099-01-15T10:00:00Z", url: `${receiver}/launch`,
  } })).data;
  assert.ok(once.next_run_at?.startsWith("2099-01-15T10:00:00"));

  const bad = await api.POST("/jobs", { body: {
    name: "Bad", schedule_type: "cron", schedule: "61 * * * *", url: receiver,
  } });
  assert.equal(bad.response.status, 422);
  assert.deepEqual((bad.error as any).details.schedule, ["is not a valid cron expression"]);

  const id = { params: { path: { id: interval.id } } };
  assert.equal(ok(await api.GET("/jobs/{id}", id)).data.name, "Health Check");
  const all = ok(await api.GET("/jobs")).data.map((j) => j.id);
  for (const job of [cron.id, interval.id, once.id]) assert.ok(all.includes(job), job);
  const tagged = ok(await api.GET("/jobs", { params: { query: { tag: [tag] } } }));
  assert.deepEqual(tagged.data.map((j) => j.id), [cron.id]);

  const updated = ok(await api.PATCH("/jobs/{id}", { ...id,
    body: { name: "Health Check (1m)", schedule: "every_1m" } })).data;
  assert.equal(updated.schedule, "every_1m");

  const paused = ok(await api.POST("/jobs/{id}/pause", { ...id, body: { reason: "deploy" } })).data;
  assert.equal(paused.enabled, false);
  assert.equal(paused.paused_reason, "deploy");
  assert.equal(ok(await api.POST("/jobs/{id}/resume", id)).data.enabled, true);

  const cronId = { params: { path: { id: cron.id } } };
  assert.equal(ok(await api.POST("/jobs/{id}/trigger", cronId)).ok, true);
  let runs = ok(await api.GET("/jobs/{id}/executions", cronId)).data;
  for (let i = 0; i < 100 && runs[0]?.status !== "success"; i++) {
    await sleep(100);
    runs = ok(await api.GET("/jobs/{id}/executions", cronId)).data;
  }
  assert.equal(runs[0]?.status, "success", JSON.stringify(runs));
  assert.equal(runs[0].http_status, 200);
  const sent = JSON.parse(runs[0].response_body ?? "null");
  assert.equal(sent.path, "/report");
  assert.equal(sent.headers["x-team"], "ops");
  assert.equal(sent.body, '{"kind":"nightly"}');

  for (const job of [cron, interval, once]) {
    assert.equal(ok(await api.DELETE("/jobs/{id}", { params: { path: { id: job.id } } })).ok, true);
  }
  const gone = await api.GET("/jobs/{id}", id);
  assert.equal(gone.response.status, 404);
  assert.equal((gone.error as any).code, "not_found");
  console.log("openapi-typescript + openapi-fetch: the quickstart flow passed");
}

main().catch((e) => { console.error(e); process.exit(1); });
