/**
 * A small client of the OCI distribution API: blobs and manifests (HEAD,
 * GET, PUT, DELETE), monolithic and chunked uploads, tag lists, the
 * referrers API. Blobs go up as file streams and come down into files
 * while they are hashed (resuming an interrupted download), so no image is
 * ever held in memory; every byte received is checked against the digest
 * and size it was asked for.
 */
import { createReadStream } from 'node:fs';
import { SquashtreeError } from '../errors.js';
import { RegistryApi, digestOf, type BlobSource, type BodyFactory } from './api.js';
import { digestMismatch, protocolError } from './client-errors.js';
import { downloadToFile, type DownloadOptions, type DownloadResult } from './download.js';
import { discardBody, type HttpResponse } from './http.js';
import {
  MEDIA_DOCKER_MANIFEST,
  MEDIA_OCI_INDEX,
  MEDIA_OCI_MANIFEST,
  indexSchema,
  type ImageIndex,
} from './types.js';

export {
  digestOf,
  sha256Hex,
  type BlobSource,
  type ClientOptions,
  type FetchedManifest,
  type ManifestHead,
  type TransferStats,
} from './api.js';
import type { FetchedManifest, ManifestHead } from './api.js';

const ACCEPT_MANIFEST = [MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST].join(', ');

export class RegistryClient extends RegistryApi {
  // ---- blobs -------------------------------------------------------------

  blobUrl(digest: string): string {
    return this.url(`blobs/${digest}`);
  }

  /** Size of the blob if the registry has it, else null. */
  async headBlob(digest: string): Promise<number | null> {
    const res = await this.send('HEAD', this.blobUrl(digest));
    await discardBody(res);
    if (res.status === 404) return null;
    if (!res.ok) throw await this.failed(res, `HEAD blob ${digest}`);
    const len = Number(res.headers.get('content-length') ?? NaN);
    return Number.isFinite(len) ? len : -1;
  }

  /** Upload a blob unless the registry has it; returns whether bytes were sent. */
  async pushBlob(src: BlobSource): Promise<boolean> {
    const have = await this.headBlob(src.digest);
    if (have !== null && (have === src.size || have === -1)) return false;
    const start = await this.send('POST', this.url('blobs/uploads/'), {
      headers: { 'content-length': '0' },
    });
    await discardBody(start);
    if (start.status !== 202) throw await this.failed(start, 'starting an upload');
    let location = this.location(start, 'starting an upload');
    const body = (from: number, to: number): BodyFactory =>
      src.bytes
        ? () => {
            const slice = (src.bytes ?? new Uint8Array()).subarray(from, to);
            this.stats.sent += slice.byteLength;
            return slice;
          }
        : () =>
            this.counted(
              createReadStream(src.path ?? '', {
                start: from,
                end: to - 1,
                highWaterMark: 1 << 20,
              }),
            );
    if (src.size <= this.chunkSize) {
      const put = await this.send('PUT', withDigest(location, src.digest), {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(src.size) },
        ...(src.size > 0 ? { body: body(0, src.size) } : {}),
      });
      await discardBody(put);
      if (put.status !== 201) throw await this.failed(put, `uploading blob ${src.digest}`);
      return true;
    }
    for (let from = 0; from < src.size; from += this.chunkSize) {
      const to = Math.min(src.size, from + this.chunkSize);
      const patch = await this.send('PATCH', location, {
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(to - from),
          'content-range': `${from}-${to - 1}`,
        },
        body: body(from, to),
      });
      await discardBody(patch);
      if (patch.status !== 202)
        throw await this.failed(patch, `uploading bytes ${from}-${to - 1} of ${src.digest}`);
      const range = patch.headers.get('range');
      if (range && range !== `0-${to - 1}`)
        throw protocolError(
          `the registry holds ${range} of ${src.digest} after sending 0-${to - 1}`,
        );
      location = this.location(patch, 'a chunked upload');
    }
    const done = await this.send('PUT', withDigest(location, src.digest), {
      headers: { 'content-length': '0' },
    });
    await discardBody(done);
    if (done.status !== 201) throw await this.failed(done, `finishing blob ${src.digest}`);
    return true;
  }

  private async *counted(stream: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream) {
      this.stats.sent += chunk.byteLength;
      yield chunk;
    }
  }

  /** A small blob (config, signature), checked against its digest and size. */
  async getBlobBytes(digest: string, size: number, limit = 1 << 20): Promise<Buffer> {
    if (size > limit)
      throw protocolError(`blob ${digest} claims ${size} bytes, more than ${limit}`);
    const res = await this.send('GET', this.blobUrl(digest));
    if (!res.ok) throw await this.failed(res, `GET blob ${digest}`);
    const bytes = await this.readDocument(res, size);
    if (bytes.byteLength !== size || digestOf(bytes) !== digest) {
      throw digestMismatch(`blob ${digest}`, this.where);
    }
    return bytes;
  }

  /**
   * GET a blob from byte `from` on: the response (200: the server sent all
   * of it, 206: the rest), or an error for anything else.
   */
  async openBlob(digest: string, from: number): Promise<HttpResponse> {
    const res = await this.send('GET', this.blobUrl(digest), {
      ...(from > 0 ? { headers: { range: `bytes=${from}-` } } : {}),
    });
    if (res.status !== 200 && res.status !== 206) {
      throw await this.failed(res, `GET blob ${digest}`);
    }
    return res;
  }

  /** Count received blob bytes (the download loop reads the body itself). */
  countBlobBytes(n: number): void {
    this.stats.received += n;
    this.stats.blobReceived += n;
  }

  /**
   * Stream a blob into `dest`, hashing as it arrives; refuses more bytes
   * than `size` and a wrong digest. With `resume`, a partial `dest` left by
   * an interrupted download is re-hashed and the rest asked for with a
   * range request; otherwise `dest` must not exist.
   */
  downloadBlob(
    digest: string,
    size: number,
    dest: string,
    opts: DownloadOptions = {},
  ): Promise<DownloadResult> {
    return downloadToFile(this, digest, size, dest, opts);
  }

  // ---- manifests ---------------------------------------------------------

  async headManifest(reference: string): Promise<ManifestHead | null> {
    const res = await this.send('HEAD', this.url(`manifests/${reference}`), {
      headers: { accept: ACCEPT_MANIFEST },
    });
    await discardBody(res);
    if (res.status === 404) return null;
    if (!res.ok) throw await this.failed(res, `HEAD manifest ${reference}`);
    const digest = res.headers.get('docker-content-digest');
    if (!digest) {
      // Some registries leave the header off a HEAD: fetch the manifest to learn it.
      const m = await this.getManifest(reference);
      return { digest: m.digest, size: m.size, mediaType: m.mediaType };
    }
    return {
      digest,
      size: Number(res.headers.get('content-length') ?? 0),
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0] ?? '',
    };
  }

  /** GET a manifest; by digest, its bytes must hash to that digest. */
  async getManifest(reference: string): Promise<FetchedManifest> {
    const res = await this.send('GET', this.url(`manifests/${reference}`), {
      headers: { accept: ACCEPT_MANIFEST },
    });
    if (!res.ok) throw await this.failed(res, `GET manifest ${reference}`);
    const bytes = await this.readDocument(res);
    const digest = digestOf(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if (
      (reference.startsWith('sha256:') && digest !== reference) ||
      (claimed && claimed !== digest)
    ) {
      throw digestMismatch(`manifest ${reference}`, this.where);
    }
    return {
      digest,
      size: bytes.byteLength,
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0] ?? '',
      bytes,
    };
  }

  /** PUT a manifest under a tag or its digest; returns its digest and the OCI-Subject header. */
  async putManifest(
    reference: string,
    bytes: Buffer,
    mediaType = MEDIA_OCI_MANIFEST,
  ): Promise<{ digest: string; subject: string | null }> {
    const res = await this.send('PUT', this.url(`manifests/${reference}`), {
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
      body: () => {
        this.stats.sent += bytes.byteLength;
        return bytes;
      },
    });
    await discardBody(res);
    if (res.status !== 201) throw await this.failed(res, `PUT manifest ${reference}`);
    const digest = digestOf(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if (claimed && claimed !== digest)
      throw protocolError(`the registry stored manifest ${reference} as ${claimed}, not ${digest}`);
    return { digest, subject: res.headers.get('oci-subject') };
  }

  /**
   * DELETE a manifest by digest (with every tag that names it). False when
   * it was gone already; E_OCI_DELETE where the registry does not allow it.
   */
  async deleteManifest(digest: string): Promise<boolean> {
    const res = await this.send('DELETE', this.url(`manifests/${digest}`));
    if (res.status === 404) {
      await discardBody(res);
      return false;
    }
    if (res.status === 202 || res.status === 200) {
      await discardBody(res);
      return true;
    }
    const err = await this.failed(res, `DELETE manifest ${digest}`);
    if (res.status === 405 || /UNSUPPORTED/.test(err.message)) {
      throw new SquashtreeError(
        'E_OCI_DELETE',
        `${this.where} does not allow deleting manifests (HTTP ${res.status})`,
        {
          stderr: err.stderr ?? '',
          hint: 'the distribution registry deletes only with storage.delete.enabled: true in its config (REGISTRY_STORAGE_DELETE_ENABLED=true); other registries need a retention policy or a user with delete rights',
        },
      );
    }
    throw err;
  }

  /** Every tag of the repository (following the Link header of paginated answers). */
  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let url: string | null = `${this.url('tags/list')}?n=1000`;
    for (let page = 0; url && page < 1000; page++) {
      const res = await this.send('GET', url);
      if (res.status === 404) {
        await discardBody(res);
        return tags;
      }
      if (!res.ok) throw await this.failed(res, 'listing tags');
      const bytes = await this.readDocument(res);
      let data: { tags?: unknown };
      try {
        data = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
      } catch {
        throw protocolError(`the tag list of ${this.where} is not JSON`);
      }
      if (Array.isArray(data.tags))
        for (const t of data.tags) if (typeof t === 'string') tags.push(t);
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '');
      url = link?.[1] ? new URL(link[1], this.base).toString() : null;
    }
    return tags;
  }

  /** The referrers of a manifest, or null where the registry has no referrers API. */
  async referrers(digest: string, artifactType?: string): Promise<ImageIndex | null> {
    const url = new URL(this.url(`referrers/${digest}`));
    if (artifactType) url.searchParams.set('artifactType', artifactType);
    const res = await this.send('GET', url.toString(), {
      headers: { accept: MEDIA_OCI_INDEX },
    });
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim();
    if (res.status !== 200 || type !== MEDIA_OCI_INDEX) {
      await discardBody(res);
      return null;
    }
    const bytes = await this.readDocument(res);
    let data: unknown;
    try {
      data = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw protocolError(`the referrers of ${digest} are not JSON`);
    }
    const parsed = indexSchema.safeParse(data);
    if (!parsed.success) throw protocolError(`the referrers of ${digest} are not an OCI index`);
    return parsed.data;
  }
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}
