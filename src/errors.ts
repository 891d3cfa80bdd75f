/**
 * Every failure the tool reports is a SquashtreeError: a stable code that
 * scripts and tests match on, a message that names the problem, a hint that
 * names the fix, and, when an external command failed, that command and its
 * stderr.
 */

export type ErrorCode =
  | 'E_USAGE'
  | 'E_CONFIG'
  | 'E_CONFIG_SYNTAX'
  | 'E_CONFIG_KEY'
  | 'E_CONFIG_VALUE'
  | 'E_CONFIG_OVERLAP'
  | 'E_NO_TREE'
  | 'E_TREE_EXISTS'
  | 'E_NOT_ROOT'
  | 'E_UNSAFE_PATH'
  | 'E_LOCKED'
  | 'E_COMMAND'
  | 'E_COMMAND_MISSING'
  | 'E_NOT_INITIALIZED'
  | 'E_STORE_EXISTS'
  | 'E_MANIFEST'
  | 'E_IMAGE_MISSING'
  | 'E_IMAGE_CORRUPT'
  | 'E_IMAGE_UNSAFE'
  | 'E_PACK'
  | 'E_VERIFY'
  | 'E_SOURCE'
  | 'E_CAPTURE'
  | 'E_MOUNT'
  | 'E_MOUNTED_ELSEWHERE'
  | 'E_NOT_MOUNTED'
  | 'E_MOUNTED'
  | 'E_BUSY'
  | 'E_PENDING'
  | 'E_NO_GENERATION'
  | 'E_CONFIRM'
  | 'E_NO_SPACE'
  | 'E_INTERRUPTED'
  | 'E_FOREIGN_FILE'
  | 'E_SYSTEM'
  | 'E_OCI'
  | 'E_OCI_AUTH'
  | 'E_OCI_NOT_FOUND'
  | 'E_OCI_DIGEST'
  | 'E_OCI_MANIFEST'
  | 'E_OCI_TAG'
  | 'E_OCI_DOWNGRADE'
  | 'E_OCI_SIGNATURE'
  | 'E_OCI_TIMEOUT'
  | 'E_OCI_CONNECT'
  | 'E_OCI_DELETE'
  | 'E_OCI_PUBLISH'
  | 'E_KEY'
  | 'E_ENGINE'
  | 'E_READONLY'
  | 'E_INTERNAL';

export interface ErrorDetails {
  hint?: string;
  /** The external command that failed, as the user could retype it. */
  command?: string;
  stderr?: string;
  path?: string;
  cause?: unknown;
  /** Process exit status for the CLI: 2 for command-line usage errors, 1 otherwise (config problems included). */
  exitCode?: 1 | 2;
}

export class SquashtreeError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly command: string | undefined;
  readonly stderr: string | undefined;
  readonly path: string | undefined;
  readonly exitCode: 1 | 2;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'SquashtreeError';
    this.code = code;
    this.hint = details.hint;
    this.command = details.command;
    this.stderr = details.stderr;
    this.path = details.path;
    this.exitCode = details.exitCode ?? (code === 'E_USAGE' ? 2 : 1);
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      command: this.command,
      stderr: this.stderr,
      path: this.path,
    };
  }
}

export function isSquashtreeError(e: unknown): e is SquashtreeError {
  return e instanceof SquashtreeError;
}

/** Node errno errors carry `code`; this narrows them without a cast at every call site. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = e.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const ERRNO_HINTS: Record<string, string> = {
  EACCES: 'permission denied: run squashtree as root (sudo)',
  EPERM: 'operation not permitted: run squashtree as root (sudo)',
  ENOSPC: 'no space left on that filesystem: free space, then try again (nothing was published)',
  EROFS: 'that filesystem is read-only',
  ENOENT: 'a path squashtree expected is missing; squashtree doctor checks the setup',
  EBUSY: 'the target is in use',
  EIO: 'an I/O error: the disk or an image may be damaged (squashtree verify checks the images)',
};

/**
 * A Node system error (errno code, syscall, path) that escaped the lifecycle
 * becomes a SquashtreeError that says what failed and where, not a stack.
 */
export function fromSystemError(e: unknown): SquashtreeError | undefined {
  const code = errnoCode(e);
  if (!code || !/^E[A-Z]+$/.test(code) || !(e instanceof Error)) return undefined;
  const info = e as Error & { syscall?: string; path?: string };
  const where = info.path ? ` ${info.path}` : '';
  return new SquashtreeError(
    'E_SYSTEM',
    `${info.syscall ?? 'system call'}${where} failed: ${code}`,
    {
      ...(info.path ? { path: info.path } : {}),
      hint: ERRNO_HINTS[code] ?? 'see the message above; squashtree doctor checks the setup',
      cause: e,
    },
  );
}
