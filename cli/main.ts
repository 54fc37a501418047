// `cattle-cni`: the operator's command (cnitool-compatible add/check/del/gc/status)
// and the internal netlink self-test.
import { SUPPORTED_VERSIONS } from '../lib/cni/versions.ts';
import { SUITE_VERSION } from '../lib/version.ts';

const USAGE = `Usage: cattle-cni <command> [args]

Commands:
  add|check|del|gc|status <net> <netns-path>
                               run network <net> for the netns as cnitool does
                               (same container ID, result cache and environment:
                               NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS, CNI_IFNAME;
                               CNI_CACHE_DIR moves the cache from /var/lib/cni)
  version                      print the suite version and the CNI versions it speaks
  netlink-selftest <netns>     create a veth into <netns>, address and route it,
                               read it back and delete it; prints a JSON report
  names                        list the names this executable answers to
  help                         this text

Exit status: 0 done, 1 the command failed (the reason on stderr), 2 usage error.

The same executable is each plugin of the suite: link it under a plugin's name
(dist/bin and scripts/install.sh do that).
`;

/** Exit status of a usage error (unknown command, missing or extra arguments); failures are 1. */
const EXIT_USAGE = 2;

function usageError(message: string): number {
  process.stderr.write(`cattle-cni: ${message}\nRun "cattle-cni help" for the commands and their arguments.\n`);
  return EXIT_USAGE;
}

/** Commands without arguments refuse extra ones: a typo should not silently do something else. */
function extraArguments(command: string, rest: string[]): string {
  return `"${command}" takes no arguments, got ${rest.map((a) => JSON.stringify(a)).join(' ')}`;
}

export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case 'version':
    case '--version':
      if (rest.length > 0) return usageError(extraArguments(command, rest));
      process.stdout.write(`cattle-cni ${SUITE_VERSION} (CNI spec versions ${SUPPORTED_VERSIONS.join(', ')})\n`);
      return 0;
    case undefined:
      // No command is a usage error: the text goes to stderr, nothing to stdout.
      process.stderr.write(USAGE);
      return EXIT_USAGE;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    case 'names': {
      if (rest.length > 0) return usageError(extraArguments(command, rest));
      // The names this executable answers to: the build makes a link per name.
      const { PROGRAM_NAMES } = await import('../names.ts');
      process.stdout.write(`${PROGRAM_NAMES.join('\n')}\n`);
      return 0;
    }
    case 'add':
    case 'check':
    case 'del':
    case 'gc':
    case 'status': {
      const { runCnitool } = await import('./cnitool.ts');
      return runCnitool(command, rest);
    }
    case 'netlink-selftest': {
      if (rest.length !== 1 || rest[0] === '') {
        process.stderr.write('usage: cattle-cni netlink-selftest <netns-path>\n'
          + 'e.g.: ip netns add selftest && cattle-cni netlink-selftest /var/run/netns/selftest && ip netns del selftest\n');
        return EXIT_USAGE;
      }
      const { netlinkSelftest } = await import('./selftest.ts');
      const report = netlinkSelftest(rest[0]!);
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return report.ok ? 0 : 1;
    }
    default:
      return usageError(`unknown command ${JSON.stringify(command)}`);
  }
}
