/**
 * A real OCI registry for the fleet scenario: Debian's docker-registry (the
 * distribution registry) on 127.0.0.1 with a free port, its config and
 * storage below the benchmark's work dir. Started once per run, stopped at
 * the end; it is ready when /v2/ answers (polled, with a deadline).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { BenchError } from './exec.js';

export interface Registry {
  host: string;
  stop(): Promise<void>;
}

export function haveRegistry(): boolean {
  return spawnSync('sh', ['-c', 'command -v docker-registry'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function startRegistry(dir: string): Promise<Registry> {
  const root = join(dir, 'storage');
  await fsp.mkdir(root, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'registry.yml');
  await fsp.writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  // Only this config counts: REGISTRY_* variables would override it.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')),
  );
  const child = spawn('docker-registry', ['serve', config], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited(child, 5000);
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new BenchError(`docker-registry exited: ${stderr}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new BenchError(
        `docker-registry did not answer on 127.0.0.1:${port} within 20 s: ${stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: `127.0.0.1:${port}`, stop };
}
