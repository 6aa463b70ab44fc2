// Architecture rules, checked by `npm run lint` (dependency-cruiser). The layers, lowest first:
//   core (versions, matching, OSV types, the package and package-key types matching works on,
//         the SecurityAction contract, errors): pure, no I/O
//   ← inventory, vulndb ← scanner, functions, enforcement ← cli, up
// A lower layer never imports a higher one; `cli` is imported by nothing but bin/; production code
// never imports test code. Imports that break a rule today are listed in
// .dependency-cruiser-known-violations.json (npx depcruise-baseline src to regenerate): lint
// ignores those and fails on any new one, so the list can only shrink.
const CORE =
  '^src/(versions/|matching/|errors[.]ts$|vulndb/osv[.]ts$|inventory/types[.]ts$|vulndb/package-key[.]ts$|enforcement/security-action[.]ts$|workload-names[.]ts$)';
const TEST = '([.]test[.]ts|[.]test-helper[.]ts)$|^src/testing/';
const IO_MODULES =
  '^(node:)?(fs|fs/promises|child_process|net|http|https|http2|dgram|dns|dns/promises|tls|worker_threads|cluster|os|readline|readline/promises|inspector|process)$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'core-no-io',
      comment:
        'The pure core (versions, matching, OSV types, the SecurityAction contract, errors) does no I/O.',
      severity: 'error',
      from: { path: CORE, pathNot: TEST },
      to: { dependencyTypes: ['core'], path: IO_MODULES },
    },
    {
      name: 'core-imports-only-core',
      comment: 'The core imports no store, adapter or other part: only itself and libraries.',
      severity: 'error',
      from: { path: CORE, pathNot: TEST },
      to: { path: '^src/', pathNot: CORE },
    },
    {
      name: 'inventory-vulndb-below-services',
      comment: 'inventory and vulndb sit below scanner, functions, enforcement, cli and up.',
      severity: 'error',
      from: { path: '^src/(inventory|vulndb)/', pathNot: TEST },
      to: { path: '^src/(scanner|functions|enforcement|cli|up)/', pathNot: CORE },
    },
    {
      name: 'services-below-cli-up',
      comment: 'scanner, functions and enforcement sit below cli and up.',
      severity: 'error',
      from: { path: '^src/(scanner|functions|enforcement)/', pathNot: TEST },
      to: { path: '^src/(cli|up)/' },
    },
    {
      name: 'cli-only-from-bin',
      comment: 'The command line is the top: only bin/ (and cli itself) import it.',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/cli/|${TEST}` },
      to: { path: '^src/cli/' },
    },
    {
      name: 'no-test-code-in-production',
      comment: 'Test helpers and node:test stay out of dist/: see docs/testing.md for the convention.',
      severity: 'error',
      from: { path: '^(src|bin)/', pathNot: TEST },
      to: { path: `${TEST}|^(node:)?test$` },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.check.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.d.mts'] },
  },
};
