/**
 * A worker thread of the packer (pack-pool.ts): it makes the encoder once,
 * then runs the jobs it is sent (pack-jobs.ts) and sends back their
 * results, or the error that stopped one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { dataCompressor, prepareEncoders } from './compress.js';
import { PackInputError, runJob, type EncoderSpec, type PackJob } from './pack-jobs.js';

const spec = workerData as EncoderSpec;
const port = parentPort;

async function main(): Promise<void> {
  if (!port) return;
  await prepareEncoders(spec.name);
  const encode = dataCompressor(spec.name, spec.options);
  if (!encode) throw new Error(`no encoder for ${spec.name}`);
  port.on('message', ({ id, job }: { id: number; job: PackJob }) => {
    try {
      const r = runJob(job, spec, encode);
      port.postMessage({ id, result: r }, [r.data.buffer as ArrayBuffer]);
    } catch (e) {
      const err = e as Error;
      port.postMessage({
        id,
        error: { input: e instanceof PackInputError ? err.message : null, message: err.message },
      });
    }
  });
  port.postMessage({ ready: true });
}

void main().catch((e: unknown) => {
  port?.postMessage({ fatal: (e as Error).message });
});
