import { ReactNode } from 'react';
import {
  Link,
  StatusAborted,
  StatusError,
  StatusOK,
  StatusPending,
  StatusRunning,
  StatusWarning,
} from '@backstage/core-components';
import Chip from '@material-ui/core/Chip';
import Tooltip from '@material-ui/core/Tooltip';
import {
  CatalogEntry,
  MaxcloudApiError,
  Order,
  PriceEstimate,
  PullRequest,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { useMaxcloudLinks } from './links';
import { useLive } from './MaxcloudProvider';

/** Human words for order states. */
export const ORDER_STATE_LABELS: Record<string, string> = {
  accepted: 'Accepted',
  pr_open: 'Pull request open',
  merged: 'Merged',
  applied: 'Applied',
  ready: 'Ready',
  failed: 'Failed',
  rejected: 'Rejected',
  superseded: 'Superseded',
};

export function orderStateLabel(state: string): string {
  return ORDER_STATE_LABELS[state] ?? state;
}

/** An order's state with a status light. */
export function OrderState(props: { state: string; testId?: string }) {
  const { state } = props;
  const label = orderStateLabel(state);
  const body = (
    <span data-testid={props.testId ?? 'order-state'} data-state={state}>
      {label}
    </span>
  );
  switch (state) {
    case 'ready':
      return <StatusOK>{body}</StatusOK>;
    case 'failed':
      return <StatusError>{body}</StatusError>;
    case 'rejected':
    case 'superseded':
      return <StatusAborted>{body}</StatusAborted>;
    case 'accepted':
      return <StatusPending>{body}</StatusPending>;
    default:
      return <StatusRunning>{body}</StatusRunning>;
  }
}

/** A resource's status (`pending`, `ready`, `failed`, `deleting`) with a status light. */
export function ResourceStatus(props: { status: string; testId?: string }) {
  const { status } = props;
  const body = (
    <span data-testid={props.testId ?? 'resource-status'} data-status={status}>
      {status}
    </span>
  );
  switch (status) {
    case 'ready':
      return <StatusOK>{body}</StatusOK>;
    case 'failed':
      return <StatusError>{body}</StatusError>;
    case 'deleting':
      return <StatusWarning>{body}</StatusWarning>;
    default:
      return <StatusPending>{body}</StatusPending>;
  }
}

/**
 * The order's pull request: a link to the Git host's page, or, for the embedded local provider which has no
 * web page, to the pull request shown inline on the order's page.
 */
export function PullRequestLink(props: { order: Order; children?: ReactNode }) {
  const { order } = props;
  const links = useMaxcloudLinks();
  const pr = order.pull_request;
  if (!pr) return <span>—</span>;
  const label = props.children ?? `Pull request #${pr.number}`;
  if (pr.url) {
    return (
      <Link to={pr.url} data-testid="pull-request-link">
        {label}
      </Link>
    );
  }
  return (
    <Link to={`${links.order(order.id)}#pull-request`} data-testid="pull-request-link">
      {label}
    </Link>
  );
}

/** Review state of a pull request that needs review; `merges at once` for auto-merged ones. */
export function ReviewState(props: { pr?: PullRequest | null }) {
  const { pr } = props;
  if (!pr) return <span data-testid="review-state">—</span>;
  if (pr.merge_policy !== 'review') {
    return (
      <span data-testid="review-state" data-review="auto">
        no review needed
      </span>
    );
  }
  const state = pr.review_state ?? 'pending';
  const who = pr.reviewed_by?.length ? ` by ${pr.reviewed_by.join(', ')}` : '';
  let label = 'review pending';
  if (state === 'approved') label = `approved${who}`;
  else if (state === 'changes_requested') label = `changes requested${who}`;
  return (
    <span data-testid="review-state" data-review={state}>
      {label}
    </span>
  );
}

/** `merges at once` or `needs review` for a catalog merge policy value. */
export function mergePolicyLabel(policy: string | undefined): string {
  return policy === 'review' ? 'needs review' : 'merges at once';
}

/** A short text for an error of the order service or the network. */
export function errorText(error: unknown): string {
  if (error instanceof MaxcloudApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Whether the live event stream is open, as a small chip. */
export function LiveIndicator() {
  const live = useLive();
  return (
    <Tooltip
      title={
        live
          ? 'Changes appear here as they happen'
          : 'Connecting to the live event stream of max-cloud…'
      }
    >
      <Chip
        size="small"
        variant="outlined"
        color={live ? 'primary' : 'default'}
        label={live ? 'live' : 'connecting'}
        data-testid="live-indicator"
        data-live={live ? 'true' : 'false'}
      />
    </Tooltip>
  );
}

/** Formats an ISO timestamp for people. */
export function formatTime(iso: string | undefined | null): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString();
}

/** The monthly price estimate of a catalog entry at its defaults, when the catalog tells it. */
export function priceOf(entry: CatalogEntry): PriceEstimate | undefined {
  const price = entry.price;
  return price && typeof price === 'object' && price.currency ? price : undefined;
}

/** `EUR 0.00–663.57 per month`, or one amount when both ends are equal. */
export function formatPrice(price: PriceEstimate): string {
  const amount = (v: number | string | null | undefined) => {
    if (v === null || v === undefined || v === '') return undefined;
    const n = typeof v === 'number' ? v : Number(v);
    return Number.isFinite(n) ? n.toFixed(2) : String(v);
  };
  const min = amount(price.monthly_min);
  const max = amount(price.monthly_max);
  let range: string;
  if (min !== undefined && max !== undefined && min !== max) range = `${min}–${max}`;
  else range = min ?? max ?? '';
  return range ? `${price.currency} ${range} per month` : price.summary;
}

/** What the summary adds to the amounts: `0–10 instances of 1 vCPU, 512 MiB; …`. */
export function priceDetails(price: PriceEstimate): string {
  const match = /\((.*)\)\s*$/.exec(price.summary ?? '');
  return match ? match[1] : price.summary ?? '';
}
