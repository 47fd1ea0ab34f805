import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {ignores: ['node_modules/', 'bundle/dist/', 'bundle/out/', 'bundle/.pkg-home/', 'coverage/', '**/*.d.ts']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
        setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', clearImmediate: 'readonly',
        URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', structuredClone: 'readonly',
        TextDecoder: 'readonly', TextEncoder: 'readonly', queueMicrotask: 'readonly', performance: 'readonly', fetch: 'readonly',
        WebSocket: 'readonly', require: 'readonly', exports: 'readonly', module: 'readonly', __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', {checkLoops: false}],
      'prefer-const': 'error',
      'eqeqeq': ['error', 'smart'],
    },
  },
  {
    // The daemon's timestamps: V8's toISOString pages in ICU's time-zone data (+0.8 MB of RSS).
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-properties': ['error', {property: 'toISOString', message: 'Use isoTime() (src/util/iso-time.ts): V8\'s toISOString loads ICU\'s time-zone data into the daemon.'}],
    },
  },
  {
    files: ['test/fixtures/**/*.js', 'test/fixtures/**/*.cjs', 'docs/examples/**/*.js', 'bin/**/*.js', 'integrations/**/*.js'],
    rules: {'@typescript-eslint/no-require-imports': 'off'},
  },
);
