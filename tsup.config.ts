import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    msgpack: 'src/serializers/msgpack.ts',
    cli: 'src/cli/main.ts',
    prometheus: 'src/metrics/prometheus.ts',
    fastify: 'src/http/fastify.ts',
    express: 'src/http/express.ts',
    opentelemetry: 'src/metrics/opentelemetry.ts',
    testing: 'src/testing/index.ts',
    extend: 'src/extend.ts',
    keyv: 'src/keyv/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: false,
  treeshake: true,
});
