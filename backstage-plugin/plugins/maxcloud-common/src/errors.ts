import type { ErrorBody, FieldProblem } from './types';

const CODES: Record<number, string> = {
  400: 'malformed_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
};

/**
 * An error answer of the order service (`{"error": {"code", "message", "field"?}}`), or of the Backstage
 * plugin in front of it, which answers in the same shape.
 */
export class MaxcloudApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The offending field as a dotted path, e.g. `parameters.scaling.maxScale`. */
  readonly field?: string;
  /** Every invalid field with its reason (`invalid_parameters`); `field` is the first. */
  readonly fields: FieldProblem[];

  constructor(
    status: number,
    code: string,
    message: string,
    field?: string | null,
    fields?: FieldProblem[] | null,
  ) {
    super(message);
    this.name = 'MaxcloudApiError';
    this.status = status;
    this.code = code;
    this.field = field ?? undefined;
    this.fields = fields ?? (field ? [{ field, message }] : []);
  }

  /** Reads an error answer; an answer that is not the JSON error shape becomes `http_<status>`. */
  static async fromResponse(response: Response): Promise<MaxcloudApiError> {
    const text = await response.text();
    try {
      // The order service's shape, or Backstage's own (`{"error": {"name", "message"}}`, e.g. from its auth layer).
      const body = JSON.parse(text) as ErrorBody & { error: { name?: string } };
      if (body?.error?.message) {
        return new MaxcloudApiError(
          response.status,
          body.error.code ?? CODES[response.status] ?? `http_${response.status}`,
          body.error.message,
          body.error.field,
          body.error.fields,
        );
      }
    } catch {
      // not JSON: fall through
    }
    const reason = text.trim().slice(0, 300) || response.statusText;
    return new MaxcloudApiError(
      response.status,
      `http_${response.status}`,
      `the order service answered ${response.status}${reason ? `: ${reason}` : ''}`,
    );
  }
}
