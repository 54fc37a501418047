import tseslint from 'typescript-eslint';

// The rooms of the house and what each may import (docs/ARCHITECTURE.md):
// entries → programs → lib, never back; programs never import each other.
const PROGRAMS = ['plugins', 'ipam', 'metadata', 'cniglue', 'cli'];
const TOP = ['**/entries.ts', '../main.ts', '../../main.ts'];

function mayNotImport(rooms, extra = []) {
  return {
    'no-restricted-imports': ['error', {
      patterns: [{
        group: [...rooms.flatMap((r) => [`**/${r}/**`, `../${r}`, `../../${r}`]), ...extra],
        message: 'import boundary: entries → programs → lib only (docs/ARCHITECTURE.md)',
      }],
    }],
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'native/build/', 'build/', 'gen/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  { files: ['lib/**/*.ts'], rules: mayNotImport(PROGRAMS, [...TOP, '**/gen/**']) },
  ...PROGRAMS.map((room) => ({
    files: [`${room}/**/*.ts`],
    rules: mayNotImport(PROGRAMS.filter((r) => r !== room), TOP),
  })),
);
