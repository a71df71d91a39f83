// Bounded reads of answers from the outside world (Nova, Keystone, Consul): a hostile or broken
// server must not make hm9k buffer an unbounded body or follow an endless chain of pages. Limits are
// process configuration; every rejection is a typed error and is counted by the caller's hook
// (hm9k_nodes_api_rejected_total{api,reason}).

export type LimitedApi = 'nova' | 'keystone' | 'consul';
export type RejectReason = 'body_too_large' | 'too_many_pages' | 'bad_paging' | 'malformed';

export interface ApiLimits {
  /** Largest response body accepted, in bytes (default 16 MiB). */
  maxBodyBytes: number;
  /** Most pages followed in one paged list (default 1000: 1000 pages of Nova's max_limit 1000). */
  maxPages: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = { maxBodyBytes: 16 * 1024 * 1024, maxPages: 1000 };

/** Called once per rejected answer, for the metric. */
export type RejectHook = (api: LimitedApi, reason: RejectReason) => void;

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limit: number, readonly declared?: number) {
    super(`response body larger than the limit of ${limit} bytes${declared !== undefined ? ` (Content-Length ${declared})` : ''}`);
  }
}

/**
 * The body of `res` as text, at most `max` bytes: refused from Content-Length before reading when it
 * declares more, otherwise cancelled as soon as the bytes read pass the limit (chunked answers).
 */
export async function readBodyBounded(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new BodyTooLargeError(max, declared);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLargeError(max);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}
