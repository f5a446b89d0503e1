import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['libs/*/test/**/*.test.ts', 'tools/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: keep the number of files running at once small, since many
    // tests start registries and containers.
    maxWorkers: 2,
    reporters: ['default'],
    // clipanion's .mjs build imports a directory, which Node's ESM loader refuses;
    // let vite transform it (the binaries are bundled by esbuild, which copes).
    server: { deps: { inline: ['clipanion'] } },
  },
});
