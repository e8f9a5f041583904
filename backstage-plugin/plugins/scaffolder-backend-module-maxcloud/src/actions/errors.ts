import {
  ConflictError,
  InputError,
  NotAllowedError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import { MaxcloudApiError } from '@maxcloud/backstage-plugin-maxcloud-common';

/**
 * Turns an error of the order service into the Backstage error a template author understands: invalid input
 * becomes an InputError whose message starts with the offending field (`parameters.scaling.maxScale: …`), a
 * refused API key a NotAllowedError naming the tenant, and so on.
 */
export function toBackstageError(error: unknown, tenant: string): Error {
  if (!(error instanceof MaxcloudApiError)) {
    const reason = (error as { cause?: { code?: string } } | undefined)?.cause
      ?.code;
    return new ServiceUnavailableError(
      `cannot reach the max-cloud order service${reason ? ` (${reason})` : ''}`,
      error,
    );
  }
  const message = withField(error);
  switch (error.status) {
    case 400:
    case 422:
      return new InputError(message);
    case 401:
    case 403:
      return new NotAllowedError(
        `the max-cloud order service refused the request for tenant ${tenant} (${error.code}): ${message}`,
      );
    case 404:
      return new NotFoundError(message);
    case 409:
      return new ConflictError(message);
    default:
      return new ServiceUnavailableError(
        `the max-cloud order service failed (${error.status} ${error.code}): ${message}`,
      );
  }
}

/**
 * The error's message, prefixed with its field unless the message already names it. The order service's
 * message of invalid parameters already lists every invalid field (`parameters.image: is required;
 * parameters.port: …`).
 */
function withField(error: MaxcloudApiError): string {
  if (!error.field || error.message.startsWith(`${error.field}:`))
    return error.message;
  return `${error.field}: ${error.message}`;
}
