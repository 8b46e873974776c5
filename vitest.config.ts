import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // Starts one real Kafka broker for the whole run unless KAFKA_BROKERS names one.
    globalSetup: ["tests/setup/kafka.global.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: one worker per core keeps the broker, the embedded databases and the tests from starving each other.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } }
  }
})
