import stylistic from '@stylistic/eslint-plugin';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

// The rooms of the house and what each may import (docs/ARCHITECTURE.md):
// entries → programs → lib, never back; programs never import each other.
const PROGRAMS = ['plugins', 'ipam', 'metadata', 'cniglue', 'cli', 'agent'];
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
  // Formatting is the linter's job, not the reviewer's: `npm run lint -- --fix` applies it.
  {
    plugins: { '@stylistic': stylistic, 'simple-import-sort': simpleImportSort },
    rules: {
      '@stylistic/indent': ['error', 2, { SwitchCase: 1, ignoredNodes: ['TemplateLiteral *'] }],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      '@stylistic/semi': ['error', 'always'],
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/eol-last': 'error',
      '@stylistic/no-trailing-spaces': 'error',
      '@stylistic/no-multiple-empty-lines': ['error', { max: 1, maxBOF: 0, maxEOF: 0 }],
      '@stylistic/arrow-parens': ['error', 'always'],
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      '@stylistic/keyword-spacing': 'error',
      '@stylistic/space-infix-ops': 'error',
      '@stylistic/comma-spacing': 'error',
      '@stylistic/key-spacing': 'error',
      '@stylistic/space-before-blocks': 'error',
      '@stylistic/member-delimiter-style': 'error',
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
    },
  },
  { files: ['lib/**/*.ts'], rules: mayNotImport(PROGRAMS, [...TOP, '**/gen/**']) },
  ...PROGRAMS.map((room) => ({
    files: [`${room}/**/*.ts`],
    rules: mayNotImport(PROGRAMS.filter((r) => r !== room), TOP),
  })),
);
