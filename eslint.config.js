// Lint: typescript-eslint's recommended rules over our sources. Layering (which room may
// import which) is checked by scripts/check-layers.mjs, run by `npm run lint` too.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // src/xds/gen: generated from proto/ (npm run proto), checked by scripts/check-proto.mjs.
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'src/xds/gen/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Time goes through the injectable Clock, so tests can drive it instead of sleeping.
    files: ['src/**/*.ts'],
    ignores: ['src/core/clock.ts'],
    rules: {
      'no-restricted-globals': ['error',
        ...['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'].map((name) => ({
          name, message: 'Use a Clock (src/core/clock.ts): clock.setTimeout, delay(clock, ms), or systemClock where no clock is wired.',
        })),
      ],
      'no-restricted-imports': ['error', { paths: [{ name: 'node:timers', message: 'Use a Clock (src/core/clock.ts).' }] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
