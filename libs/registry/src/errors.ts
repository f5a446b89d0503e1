import { BerthError } from '@berth/cli-kit';

/**
 * Registry failures, mapped the way containers/image maps them: the HTTP
 * status says what kind of failure it is (401 credentials, 404 unknown name,
 * 429 slow down, 5xx try again), and the distribution-spec error body
 * (`{"errors":[{"code","message","detail"}]}`, spec section "Error Codes")
 * says what the registry thought, so both go into the message.
 */
export interface DistributionError {
  code: string;
  message?: string;
  detail?: unknown;
}

export class RegistryError extends BerthError {
  readonly status: number | undefined;
  readonly errors: DistributionError[];
  constructor(code: string, message: string, opts: { status?: number; errors?: DistributionError[]; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.name = 'RegistryError';
    this.status = opts.status;
    this.errors = opts.errors ?? [];
  }
}

/** Decode a distribution-spec error body; anything else becomes a short excerpt. */
export function decodeErrorBody(body: string): { errors: DistributionError[]; summary: string } {
  const text = body.trim();
  if (text === '') return { errors: [], summary: '' };
  try {
    const doc = JSON.parse(text) as { errors?: unknown; details?: unknown };
    if (doc && Array.isArray(doc.errors)) {
      const errors = doc.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map((e) => ({ code: String(e.code ?? 'UNKNOWN'), message: typeof e.message === 'string' ? e.message : undefined, detail: e.detail }));
      const summary = errors.map((e) => `${e.code}${e.message ? `: ${e.message}` : ''}${formatDetail(e.detail)}`).join('; ');
      return { errors, summary };
    }
  } catch {
    /* not JSON: fall through to the excerpt */
  }
  const oneLine = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return { errors: [], summary: oneLine.length > 160 ? `${oneLine.slice(0, 160)}...` : oneLine };
}

function formatDetail(detail: unknown): string {
  if (detail === undefined || detail === null) return '';
  if (typeof detail === 'string') return ` (${detail})`;
  if (Array.isArray(detail) && detail.length === 0) return '';
  const json = JSON.stringify(detail);
  return json.length > 200 ? '' : ` (${json})`;
}

/** The stable code for an HTTP status. */
export function codeForStatus(status: number): string {
  if (status === 401 || status === 403) return 'E_REGISTRY_AUTH';
  if (status === 404) return 'E_REGISTRY_NOT_FOUND';
  if (status === 429) return 'E_REGISTRY_TOO_MANY_REQUESTS';
  return 'E_REGISTRY';
}

/** Errors worth another try: the connection broke, or the server was briefly unwell. */
export function isTransientNetworkError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code !== undefined && [
    'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN',
    'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
    'UND_ERR_BODY_TIMEOUT', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  ].includes(code);
}

export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** A network error in words a user can act on. */
export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  switch (code) {
    case 'ENOTFOUND': return 'no such host (DNS lookup failed)';
    case 'EAI_AGAIN': return 'DNS lookup failed (temporary failure in name resolution)';
    case 'ECONNREFUSED': return 'connection refused (is a registry listening there?)';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENETUNREACH': return 'network unreachable';
    default:
      if (code?.startsWith('ERR_SSL') || code === 'EPROTO' || code?.startsWith('ERR_TLS')) {
        return `TLS handshake failed (${code}${/wrong version number/.test(e?.message ?? '') ? ': the server does not speak TLS' : ''})`;
      }
      if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'CERT_HAS_EXPIRED' || code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
        return `certificate not trusted (${code})`;
      }
      return `${code ? `${code}: ` : ''}${e?.message ?? String(err)}`;
  }
}
