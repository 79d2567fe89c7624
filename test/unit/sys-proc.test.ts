// /proc/<pid>/stat and status parsing (src/sys/proc.ts): command names with spaces and
// parentheses, and this process read for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isProcessAlive, parseProcStat, parseProcStatus, readCmdline, readProcMemory, readProcStat } from '../../src/sys/proc.js';

/** A stat line as the kernel writes it: pid (comm) state ppid pgrp ... with utime/stime/starttime placed. */
function statLine(pid: number, comm: string, state: string, ppid: number, pgrp: number, utime: number, stime: number, start: number): string {
  const rest = [state, ppid, pgrp, 0, 0, -1, 4194560, 100, 0, 0, 0, utime, stime, 0, 0, 20, 0, 1, 0, start, 1000, 50];
  return `${pid} (${comm}) ${rest.join(' ')} 0 0 0\n`;
}

const cases: [string, string][] = [
  ['plain', 'node'],
  ['spaces', 'my app worker'],
  ['parentheses', 'a) (b'],
  ['a closing parenthesis last', 'x)'],
  ['digits and a state-like word', '1 Z 2'],
];
for (const [name, comm] of cases) {
  test(`parseProcStat: a command name with ${name}`, () => {
    assert.deepEqual(parseProcStat(statLine(42, comm, 'S', 7, 42, 150, 30, 123456)), {
      pid: 42, comm, state: 'S', ppid: 7, pgrp: 42, utimeTicks: 150, stimeTicks: 30, startTime: '123456',
    });
  });
}

test('parseProcStat: text that is not a stat line', () => {
  for (const bad of ['', 'garbage', '12 (x', '(x) S 1 2', '12 (x) S 1']) assert.equal(parseProcStat(bad), undefined, bad);
});

test('parseProcStat: any command name round-trips (property)', () => {
  fc.assert(fc.property(
    fc.string({ maxLength: 16 }).filter((s) => !s.includes('\n')), fc.nat(), fc.constantFrom('R', 'S', 'Z', 'D'), fc.nat(), fc.nat(), fc.nat(),
    (comm, ppid, state, utime, stime, start) => {
      const st = parseProcStat(statLine(1234, comm, state, ppid, 99, utime, stime, start));
      assert.deepEqual([st?.comm, st?.state, st?.ppid, st?.utimeTicks, st?.stimeTicks, st?.startTime], [comm, state, ppid, utime, stime, String(start)]);
    },
  ));
});

test('parseProcStatus: VmRSS and VmHWM in KiB', () => {
  assert.deepEqual(parseProcStatus('Name:\tnode\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n'), { rssKiB: 80000, hwmKiB: 81234 });
  assert.deepEqual(parseProcStatus('Name:\tkthread\n'), { rssKiB: 0, hwmKiB: 0 });
});

test('this process, read from /proc', () => {
  const st = readProcStat(process.pid);
  assert.ok(st);
  assert.deepEqual([st.pid, st.ppid, isProcessAlive(process.pid)], [process.pid, process.ppid, true]);
  assert.ok(readProcMemory(process.pid)!.rssKiB > 1000);
  assert.equal(readCmdline(process.pid)?.[0], process.argv0.includes('/') ? process.argv0 : readCmdline(process.pid)?.[0]);
  assert.equal(readProcStat(2 ** 30), undefined, 'no such process');
  assert.equal(isProcessAlive(2 ** 30), false);
});
