// A minimal OCI image archive written by the test itself, for runtimes that
// import images (`ctr images import`): one uncompressed layer (a ustar archive
// made here, no `tar` process), the image config, the manifest and the index,
// every blob named by its sha256, all in an OCI image layout packed as a tar.
// Nothing is fetched: the layer holds files the machine already has (e.g. a
// static busybox) and the symlinks that name its applets.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** One member of a tar archive; paths are relative ("bin/sh"), directories end without a slash. */
export type TarEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string };

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, opts: { mode: number; size: number; type: string; link?: string }): Buffer {
  if (Buffer.byteLength(name) > 100 || Buffer.byteLength(opts.link ?? '') > 100) throw new Error(`tar: name too long: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(opts.mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii'); // uid
  h.write(octal(0, 8), 116, 8, 'ascii'); // gid
  h.write(octal(opts.size, 12), 124, 12, 'ascii');
  h.write(octal(0, 12), 136, 12, 'ascii'); // mtime: reproducible digests
  h.write('        ', 148, 8, 'ascii'); // checksum placeholder
  h.write(opts.type, 156, 1, 'ascii');
  if (opts.link) h.write(opts.link, 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 8, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** A ustar archive of the entries, in the given order, owned by root, mtime 0. */
export function tarArchive(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.type === 'dir') {
      parts.push(header(`${e.path}/`, { mode: e.mode ?? 0o755, size: 0, type: '5' }));
    } else if (e.type === 'symlink') {
      parts.push(header(e.path, { mode: 0o777, size: 0, type: '2', link: e.target }));
    } else {
      parts.push(header(e.path, { mode: e.mode ?? 0o644, size: e.data.length, type: '0' }), e.data);
      const pad = (512 - (e.data.length % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(1024)); // two zero blocks end the archive
  return Buffer.concat(parts);
}

export interface OciImageOptions {
  /** Full image name, e.g. "localhost/cattle-cni-test-busybox:123" (the io.containerd.image.name annotation). */
  name: string;
  /** The one layer's contents. */
  layer: TarEntry[];
  /** Image config: default command and environment. */
  cmd?: string[];
  env?: string[];
}

export interface OciImage {
  /** The OCI image layout as a tar archive, for `ctr images import`. */
  archive: Buffer;
  /** sha256:… of the manifest (what `ctr images ls` shows as the digest). */
  manifestDigest: string;
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The Go/OCI names of this machine's architecture. */
export function ociArch(arch: string = process.arch): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/** An OCI image (layout in a tar) with one uncompressed layer, for the machine's platform. */
export function ociImage(opts: OciImageOptions): OciImage {
  const platform = { architecture: ociArch(), os: 'linux' };
  const layer = tarArchive(opts.layer);
  const layerDigest = sha256(layer);
  const config = Buffer.from(JSON.stringify({
    ...platform,
    config: { Env: opts.env ?? ['PATH=/bin'], Cmd: opts.cmd ?? ['sh'] },
    // Uncompressed layer: its diff ID is its digest.
    rootfs: { type: 'layers', diff_ids: [layerDigest] },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  }));
  const manifestDigest = sha256(manifest);
  const tag = opts.name.slice(opts.name.lastIndexOf(':') + 1);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: manifestDigest,
      size: manifest.length,
      platform,
      annotations: { 'io.containerd.image.name': opts.name, 'org.opencontainers.image.ref.name': tag },
    }],
  }));
  const blob = (b: Buffer): TarEntry => ({ type: 'file', path: `blobs/sha256/${sha256(b).slice('sha256:'.length)}`, data: b });
  const archive = tarArchive([
    { type: 'file', path: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { type: 'file', path: 'index.json', data: index },
    { type: 'dir', path: 'blobs' },
    { type: 'dir', path: 'blobs/sha256' },
    blob(layer),
    blob(config),
    blob(manifest),
  ]);
  return { archive, manifestDigest };
}

/** A layer with a static busybox as /bin/busybox and a symlink per applet in /bin. */
export function busyboxLayer(busybox: string, applets: string[]): TarEntry[] {
  return [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', data: fs.readFileSync(busybox), mode: 0o755 },
    ...applets.map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    // Mount points the runtime would otherwise create in the snapshot.
    ...['dev', 'proc', 'sys', 'etc', 'tmp'].map((d): TarEntry => ({ type: 'dir', path: d, mode: d === 'tmp' ? 0o1777 : 0o755 })),
  ];
}
