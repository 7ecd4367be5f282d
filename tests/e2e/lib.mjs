// Shared helpers for browser tests: start the real binary on a free port, launch Debian's
// Chromium headless through playwright-core, count checks.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

// A loopback port nothing listens on, never one this process handed out before: the kernel may
// give a just-closed port again, and a topology with two nodes on one port cannot start.
const handedOut = new Set();
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
      srv.on('error', reject);
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

// Starts `$MILLIONS_BIN single --port PORT --data DIR` exactly as CONTRACT.md section 2 spells it,
// from the repository root (where the default topologies/single.toml lives).
export async function startServer() {
  const bin = process.env.MILLIONS_BIN;
  if (!bin) throw new Error('MILLIONS_BIN is not set');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'millions-e2e-'));
  const port = await freePort();
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'a');
  const proc = spawn(path.resolve(bin), ['single', '--port', String(port), '--data', path.join(dir, 'data')],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', log] });
  fs.closeSync(log);
  const base = `http://127.0.0.1:${port}`;
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) { resolve(); return; }
    const hard = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => { clearTimeout(hard); resolve(); });
    proc.kill('SIGTERM');
  });
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const r = await fetch(base + '/readyz');
      if (r.status === 200) break;
    } catch (e) { /* not up yet */ }
    if (Date.now() > deadline || proc.exitCode !== null) {
      await stop();
      throw new Error('server did not become ready: ' + fs.readFileSync(logPath, 'utf8').slice(-2000));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, dir, proc, logPath, stop };
}

export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Every console error or warning and every page error fails the test.
export function watchConsole(page, problems) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
}

export class Checks {
  constructor() { this.passed = 0; this.failed = 0; }
  check(cond, what) {
    if (cond) this.passed++;
    else { this.failed++; console.error('FAIL:', what); }
    return cond;
  }
  finish() {
    console.log(`${this.passed} passed, ${this.failed} failed`);
    process.exitCode = this.failed ? 1 : 0;
  }
}

// A w x h RGB PNG with a gradient, made with zlib only.
export function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 8) & 255; raw[o + 1] = (y * 8) & 255; raw[o + 2] = 128;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
