import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Starts one real Kafka broker for the whole run unless KAFKA_BROKERS names one; the
    // projects below share it.
    globalSetup: ["tests/setup/kafka.global.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: one worker per core keeps the broker, the embedded databases and the tests from starving each other.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      // Each project names its files; a root `include` would be added to both.
      { extends: true, test: { name: "default", include: ["tests/**/*.test.ts"] } },
      // The query tests again in a time zone with daylight saving time, because responses must
      // not depend on the process time zone.
      { extends: true, test: { name: "query-tz-berlin", include: ["tests/query/**/*.test.ts"], env: { TZ: "Europe/Berlin" } } }
    ]
  }
})
