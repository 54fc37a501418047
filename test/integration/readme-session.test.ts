// The README's by-hand cattle-cni session keeps working as written.
//
// The session is the ```console block under "cattle-cni: a cnitool you can run
// by hand": every line starting with "# " is a command, the lines up to the
// next command are its shown output. All commands run, unchanged and in order,
// in one bash (so the `export` line holds for the rest):
//  * "the machine" is a fresh test netns, entered with `nsenter --net` (not
//    `ip netns exec`: its private /sys and mounts would hide the session's own
//    `ip netns add demo` from its next command), so the bridge, the host veth
//    and the iptables rules are that netns's, and the traffic stays in
//    namespaces made here;
//  * the bash runs in a private mount namespace (`unshare --mount`) in which
//    every directory the session writes is a fresh tmpfs: /etc/cni/net.d
//    (NETCONFPATH), /opt/cni/bin (CNI_PATH; install.sh fills it from the build
//    under test, CATTLE_CNI_BIN), /var/lib/cni (the result cache, host-local's
//    leases), /run/cattle-cni (plugin state and locks) and /run/netns (so the
//    namespace "demo" is private too). Nothing in the text is substituted: the
//    paths, the netns name and therefore the cnitool container id are the
//    README's own, and nothing reaches the machine's real directories. A
//    directory missing on this machine is created as a mount point and removed
//    again afterwards; everything mounted goes with the mount namespace.
// Output is compared line by line (trailing blanks ignored), except what
// differs from run to run: a line "…" stands for any number of lines, a MAC
// inside `"mac": "…"` for any MAC, and ping's `time=… ms` for any time. A
// command whose shown output is a cattle-cni error message must fail; every
// other command must succeed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { baseEnv, BIN, makeNetns, ROOT, rootLinkNames } from '../helpers/harness.ts';

const SECTION = '### cattle-cni: a cnitool you can run by hand';
/** What the session writes; each a private tmpfs while it runs. */
const PRIVATE_DIRS = ['/etc/cni/net.d', '/opt/cni/bin', '/var/lib/cni', '/run/cattle-cni', '/run/netns'];
/** Where the session would leave its marks on a real machine (other tests use the directories meanwhile). */
const FOOTPRINTS = [
  '/etc/cni/net.d/87-cattle-bridge.conflist', '/opt/cni/bin/cattle-cni', '/var/lib/cni/results/cattle-bridge-cnitool-81e3a71f81544407538e-eth0',
  '/var/lib/cni/networks/cattle-bridge', '/run/netns/demo', '/run/cattle-cni/state/cattle-bridge',
];

interface Step {
  command: string;
  shown: string[];
}

/** The session's commands and shown output, from the README. */
function readmeSession(readme: string): Step[] {
  const at = readme.indexOf(SECTION);
  assert.ok(at >= 0, `README has no section "${SECTION}"`);
  const lines = readme.slice(at).split('\n');
  const open = lines.findIndex((l) => l.trim() === '```console');
  assert.ok(open >= 0, 'no ```console block in the by-hand section');
  const close = lines.findIndex((l, i) => i > open && l.trim() === '```');
  const steps: Step[] = [];
  for (const line of lines.slice(open + 1, close)) {
    if (line.startsWith('# ')) steps.push({ command: line.slice(2), shown: [] });
    else {
      assert.ok(steps.length > 0, `output before the first command: ${line}`);
      steps.at(-1)!.shown.push(line);
    }
  }
  return steps;
}

/** One line as compared: what varies from run to run replaced by a placeholder. */
function normalise(line: string): string {
  return line
    .replace(/\s+$/, '')
    .replace(/"mac": "[0-9a-f]{2}(:[0-9a-f]{2}){5}"/g, '"mac": "…"')
    .replace(/time=[0-9.]+ ms/g, 'time=… ms');
}

/** Shown lines against actual ones; a shown "…" matches any run of lines. */
function matches(shown: string[], actual: string[]): boolean {
  const [first, ...rest] = shown;
  if (first === undefined) return actual.length === 0;
  if (first === '…') return actual.some((_, i) => matches(rest, actual.slice(i))) || matches(rest, []);
  return actual.length > 0 && actual[0] === first && matches(rest, actual.slice(1));
}

function trimEnd(lines: string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && out.at(-1)!.trim() === '') out.pop();
  return out;
}

/** Directories (outermost first) that mkdir -p would create for `dir`. */
function missingAncestors(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  return missing;
}

/** A path's identity: gone, or which file it is and when it last changed. */
function footprint(p: string): string {
  try {
    const st = fs.lstatSync(p);
    return `${p} ${st.ino} ${st.mtimeMs}`;
  } catch {
    return `${p} absent`;
  }
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

test('the README session parses: commands, shown output, the config it installs', () => {
  const steps = readmeSession(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  const install = steps.find((s) => s.command.startsWith('scripts/install.sh'));
  assert.ok(install, 'the session installs its config');
  const conf = /--conf (\S+)/.exec(install.command)?.[1];
  assert.ok(conf && fs.existsSync(path.join(ROOT, 'conf-examples', conf)), `--conf ${conf} is in conf-examples/`);
  const name = (JSON.parse(fs.readFileSync(path.join(ROOT, 'conf-examples', conf), 'utf8')) as { name: string }).name;
  const used = steps.map((s) => /cattle-cni \w+ (\S+) /.exec(s.command)?.[1]).filter((n) => n !== undefined);
  assert.ok(used.length >= 4);
  assert.deepEqual([...new Set(used)], [name], 'every cattle-cni command uses the network the session installed');
  assert.match(steps[0]!.command, /^export NETCONFPATH=\S+ CNI_PATH=\S+/);
});

test('the README session runs as written and prints what the README shows', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const tools = ['nsenter', 'unshare', 'iptables'].filter((c) => !which(c));
  if (!fs.existsSync('/usr/lib/cni/host-local') || !fs.existsSync('/usr/lib/cni/portmap')) tools.push('containernetworking-plugins');
  if (tools.length) return t.skip(`missing ${tools.join(', ')} (scripts/ensure-deps.sh test)`);

  const steps = readmeSession(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  const linksBefore = rootLinkNames();
  const footprintsBefore = FOOTPRINTS.map(footprint);
  const created: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-readme-'));
  const machine = makeNetns('ccni-readme');
  try {
    for (const dir of PRIVATE_DIRS) {
      const missing = missingAncestors(dir);
      fs.mkdirSync(dir, { recursive: true });
      created.push(...missing);
    }
    // Markers around each command: its output and exit status, from one bash run.
    const marker = `@@readme-${process.pid}`;
    const script = ['exec 2>&1', ...steps.flatMap((s, i) => [`echo '${marker} ${i}'`, s.command, `echo "${marker} rc $?"`])].join('\n');
    fs.writeFileSync(path.join(tmp, 'session.sh'), `${script}\n`);
    const mountAll = 'set -e; for d in "$@"; do mount -t tmpfs -o mode=0755 ccni-readme "$d"; done; set +e; exec bash --noprofile --norc "$SESSION"';
    const r = spawnSync('nsenter', [`--net=${machine.path}`, 'unshare', '--mount', '--propagation', 'private',
      'bash', '-c', mountAll, 'mount-private', ...PRIVATE_DIRS], {
      cwd: ROOT, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL',
      env: { ...baseEnv(), SESSION: path.join(tmp, 'session.sh'), CATTLE_CNI_BIN: BIN },
    });
    assert.equal(r.status, 0, `session did not run to the end (${r.status} ${r.signal}):\n${r.stdout}${r.stderr}`);

    // Split the transcript at the markers.
    const outputs: { lines: string[]; rc?: number }[] = [];
    for (const line of r.stdout.split('\n')) {
      const m = line.startsWith(marker) ? line.slice(marker.length + 1) : undefined;
      if (m === undefined) outputs.at(-1)?.lines.push(line);
      else if (m.startsWith('rc ')) outputs.at(-1)!.rc = Number(m.slice(3));
      else outputs.push({ lines: [] });
    }
    assert.equal(outputs.length, steps.length, r.stdout);
    steps.forEach((step, i) => {
      const out = outputs[i]!;
      const actual = trimEnd(out.lines).map(normalise);
      const shown = trimEnd(step.shown).map(normalise);
      const shouldFail = shown.length > 0 && /^cattle-cni \w+: /.test(shown[0]!);
      const transcript = `# ${step.command}\n--- README shows:\n${shown.join('\n')}\n--- got (exit ${out.rc}):\n${actual.join('\n')}`;
      if (shouldFail) assert.notEqual(out.rc, 0, transcript);
      else assert.equal(out.rc, 0, transcript);
      assert.ok(matches(shown, actual), transcript);
    });
  } finally {
    machine.destroy();
    for (const dir of created.reverse()) {
      try {
        fs.rmdirSync(dir); // only our empty mount points
      } catch {
        // someone else put something there meanwhile: theirs now
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // The machine's own network and directories never saw the session.
  assert.deepEqual(rootLinkNames(), linksBefore);
  assert.deepEqual(FOOTPRINTS.map(footprint), footprintsBefore);
  assert.deepEqual(created.filter((d) => fs.existsSync(d)), []);
});
