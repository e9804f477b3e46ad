// The Prometheus metrics: exact counts after real traffic over HTTP, label values that never carry
// a username, id or token, and a listener of their own that main.ts starts (never the public port).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { loginRaw, PASSWORD, refreshRaw, registerUser } from "./helpers/api.js";
import { killRunningServers, ServerProcess, useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";
import { freePort } from "./helpers/processes.js";

after(() => killRunningServers());

/** The value of one sample in Prometheus' text format, `name{labels} value`; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const rendered = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(",");
  const prefix = rendered === "" ? `${name} ` : `${name}{${rendered}} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

const ME = `{ me { id } }`;

for (const kind of DATABASES) {
  describe(`metrics after test traffic (${kind})`, () => {
    // Strict single use, so that presenting a rotated refresh token again is a detected reuse.
    const t = useTestApp(kind, { env: { REFRESH_TOKEN_REUSE_INTERVAL: "0s" } });
    const username = `metrics-${kind}-user`;

    it("counts logins, rejections, refreshes, ended sessions, registrations and operations exactly, with bounded labels only", async () => {
      const registered = await registerUser(t, username);
      const signedIn = await loginRaw(t, username);
      assert.equal(signedIn.body.errors, undefined);
      const { refreshToken, accessToken } = signedIn.body.data.login;
      const wrong = await loginRaw(t, username, { password: `${PASSWORD} but wrong` });
      assert.equal(wrong.body.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
      const junk = await t.gql(ME, { token: "not-a-token" });
      assert.equal(junk.status, 401);
      const rotated = await refreshRaw(t, refreshToken);
      assert.equal(rotated.body.errors, undefined);
      const reused = await refreshRaw(t, refreshToken);
      assert.equal(reused.body.errors?.[0]?.extensions?.reason, "REFRESH_TOKEN_INVALID");
      const invalid = await refreshRaw(t, "rt_nothing-of-the-kind");
      assert.equal(invalid.body.errors?.[0]?.extensions?.reason, "REFRESH_TOKEN_INVALID");
      // The session ended at the reuse: its access tokens are refused from now on.
      assert.equal((await t.gql(ME, { token: rotated.body.data.refreshToken.accessToken })).status, 401);
      const query = await t.gql(ME, { token: registered.accessToken });
      assert.equal(query.body.data.me.id, registered.userId);

      const text = await t.app.metrics.text();
      assert.equal(sample(text, "gta_logins_total", { outcome: "succeeded" }), 1);
      assert.equal(sample(text, "gta_logins_total", { outcome: "failed" }), 1);
      assert.equal(sample(text, "gta_logins_total", { outcome: "throttled" }), 0);
      assert.equal(sample(text, "gta_registrations_total"), 1);
      assert.equal(sample(text, "gta_token_rejections_total", { reason: "MALFORMED" }), 1);
      assert.equal(sample(text, "gta_token_rejections_total", { reason: "SESSION_ENDED" }), 1);
      assert.equal(sample(text, "gta_token_rejections_total", { reason: "EXPIRED" }), 0);
      assert.equal(sample(text, "gta_refreshes_total", { outcome: "rotated" }), 1);
      assert.equal(sample(text, "gta_refreshes_total", { outcome: "reuse_detected" }), 1);
      assert.equal(sample(text, "gta_refreshes_total", { outcome: "invalid" }), 1);
      assert.equal(sample(text, "gta_refreshes_total", { outcome: "reuse_interval" }), 0);
      assert.equal(sample(text, "gta_sessions_ended_total", { cause: "refresh_token_reused" }), 1);
      assert.equal(sample(text, "gta_sessions_ended_total", { cause: "logout" }), 0);
      assert.equal(sample(text, "gta_rate_limit_hits_total", { limit: "REGISTER_MAX_PER_IP" }), 0);
      assert.equal(sample(text, "gta_rate_limit_fallbacks_total"), 0);
      // register, login, refresh: ok; the wrong password, the reuse, the invalid token: error. The
      // two 401s never reach GraphQL.
      assert.equal(sample(text, "gta_graphql_operations_total", { type: "mutation", outcome: "ok" }), 3);
      assert.equal(sample(text, "gta_graphql_operations_total", { type: "mutation", outcome: "error" }), 3);
      assert.equal(sample(text, "gta_graphql_operations_total", { type: "query", outcome: "ok" }), 1);
      assert.equal(sample(text, "gta_graphql_operation_duration_seconds_count", { type: "mutation" }), 6);
      assert.equal(sample(text, "gta_subscription_connections"), 0);
      assert.ok(sample(text, "gta_process_cpu_user_seconds_total")! >= 0);
      assert.ok(sample(text, "gta_nodejs_eventloop_lag_seconds") !== undefined);

      const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1]!);
      for (const secret of [username, registered.userId, registered.accessToken, accessToken, refreshToken]) {
        assert.ok(!text.includes(secret), "a username, id or token appears in the metrics");
        assert.ok(!labelValues.some((value) => value.includes(secret)));
      }
    });

    it("serves /metrics on a listener of its own, never on the public port", async () => {
      const metricsServer = t.app.metrics.createServer();
      await new Promise<void>((resolve) => metricsServer.listen(0, "127.0.0.1", resolve));
      try {
        const base = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}`;
        const response = await fetch(`${base}/metrics`);
        assert.equal(response.status, 200);
        assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
        assert.equal(sample(await response.text(), "gta_logins_total", { outcome: "succeeded" }), 1);
        assert.equal((await fetch(`${base}/graphql`)).status, 404);
        assert.equal((await fetch(t.url.replace("/graphql", "/metrics"))).status, 404);
      } finally {
        await new Promise((resolve) => metricsServer.close(resolve));
      }
    });
  });
}

describe("the metrics listener of the server process (main.js)", () => {
  const dir = mkdtempSync(join(tmpdir(), "gta-metrics-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("listens on METRICS_HOST (default 127.0.0.1):METRICS_PORT, and the public port answers 404 for /metrics", async () => {
    const metricsPort = await freePort();
    const server = await ServerProcess.start(
      { DATA_DIR: join(dir, "on"), NODE_ENV: "development", METRICS_PORT: String(metricsPort) },
      dir,
    );
    try {
      const ready = server.logs().find((line) => line.msg === "server ready")!;
      assert.equal(ready.metrics, `http://127.0.0.1:${metricsPort}/metrics`);
      const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(response.status, 200);
      const text = await response.text();
      assert.equal(sample(text, "gta_logins_total", { outcome: "succeeded" }), 0);
      assert.ok(sample(text, "gta_process_resident_memory_bytes")! > 0);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status, 404);
    } finally {
      await server.stop();
    }
  });

  it("serves no metrics listener with METRICS_PORT=0", async () => {
    const server = await ServerProcess.start(
      { DATA_DIR: join(dir, "off"), NODE_ENV: "development", METRICS_PORT: "0" },
      dir,
    );
    try {
      assert.equal(server.logs().find((line) => line.msg === "server ready")!.metrics, "off");
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status, 404);
    } finally {
      await server.stop();
    }
  });
});
