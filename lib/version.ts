// The suite's version, from package.json (inlined by the bundler).
import pkg from '../package.json' with { type: 'json' };

export const SUITE_VERSION: string = pkg.version;
