import { useEffect, useState } from 'react';
import { useLocation, useParams } from 'react-router-dom';
import {
  CodeSnippet,
  InfoCard,
  Link,
  MarkdownContent,
  Progress,
  ResponseErrorPanel,
} from '@backstage/core-components';
import Box from '@material-ui/core/Box';
import Button from '@material-ui/core/Button';
import Grid from '@material-ui/core/Grid';
import Step from '@material-ui/core/Step';
import StepLabel from '@material-ui/core/StepLabel';
import Stepper from '@material-ui/core/Stepper';
import Table from '@material-ui/core/Table';
import TableBody from '@material-ui/core/TableBody';
import TableCell from '@material-ui/core/TableCell';
import TableHead from '@material-ui/core/TableHead';
import TableRow from '@material-ui/core/TableRow';
import TextField from '@material-ui/core/TextField';
import Typography from '@material-ui/core/Typography';
import Alert from '@material-ui/lab/Alert';
import { Order, PullRequest } from '@maxcloud/backstage-plugin-maxcloud-common';
import {
  errorText,
  formatTime,
  LiveIndicator,
  OrderState,
  orderStateLabel,
  ReviewState,
} from './common';
import { useMaxcloudLinks } from './links';
import { useLiveData, useMaxcloud } from './MaxcloudProvider';

/** The way of a good order. */
export const ORDER_STEPS = ['accepted', 'pr_open', 'merged', 'applied', 'ready'];
const FAILED_STATES = new Set(['failed', 'rejected', 'superseded']);

/** `orders/:id`: an order, its pull request and its progress, live. */
export function OrderPage() {
  const { id = '' } = useParams();
  const order = useLiveData(
    client => client.order(id),
    [id],
    event => event.type === 'order' && event.data.order_id === id,
  );
  if (order.error && !order.value) return <ResponseErrorPanel error={order.error} />;
  if (!order.value) return <Progress />;
  return <OrderView order={order.value} onChange={order.reload} />;
}

export function OrderView(props: { order: Order; onChange(): void }) {
  const { order, onChange } = props;
  const links = useMaxcloudLinks();
  const location = useLocation();
  useEffect(() => {
    if (location.hash === '#pull-request') {
      document.getElementById('pull-request')?.scrollIntoView?.();
    }
  }, [location.hash]);

  const failed = FAILED_STATES.has(order.state);
  // Where a failed order left the way: the last good state it reached.
  const reached = failed
    ? Math.max(...order.history.map(h => ORDER_STEPS.indexOf(h.state)), 0)
    : ORDER_STEPS.indexOf(order.state);

  return (
    <Grid container spacing={3} data-testid="order-view" data-order-id={order.id}>
      <Grid item xs={12}>
        <InfoCard
          title={
            <Box display="flex" alignItems="center" style={{ gap: 12 }}>
              <span>
                {order.action} {order.kind} <em data-testid="order-resource-name">{order.name}</em>
              </span>
              <OrderState state={order.state} />
              <LiveIndicator />
            </Box>
          }
          subheader={`Order ${order.id} by ${order.requester}, ${formatTime(order.created_at)}`}
        >
          <Stepper activeStep={reached + 1} alternativeLabel data-testid="order-stepper">
            {ORDER_STEPS.map((state, i) => {
              const failedHere = failed && i === reached + 1;
              return (
                <Step key={state}>
                  <StepLabel error={failedHere}>
                    {orderStateLabel(failedHere ? order.state : state)}
                  </StepLabel>
                </Step>
              );
            })}
          </Stepper>
          {order.error ? (
            <Alert severity={order.state === 'superseded' ? 'info' : 'error'} data-testid="order-failure">
              {order.error}
            </Alert>
          ) : null}
          {order.state === 'merged' ? (
            <Typography variant="body2" color="textSecondary">
              Merged: Flux applies the change to the cluster next; this page shows when it is applied and
              ready.
            </Typography>
          ) : null}
          <Box mt={2}>
            <Link to={links.service(order.kind, order.name)} data-testid="order-service-link">
              {order.kind} {order.name} in My services
            </Link>
          </Box>
        </InfoCard>
      </Grid>
      <Grid item xs={12} md={7}>
        <PullRequestCard order={order} onChange={onChange} />
      </Grid>
      <Grid item xs={12} md={5}>
        <InfoCard title="History">
          <Table size="small" data-testid="order-history">
            <TableHead>
              <TableRow>
                <TableCell>State</TableCell>
                <TableCell>At</TableCell>
                <TableCell>Message</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {order.history.map((h, i) => (
                <TableRow key={`${h.state}-${i}`}>
                  <TableCell>{orderStateLabel(h.state)}</TableCell>
                  <TableCell>{formatTime(h.at)}</TableCell>
                  <TableCell>{h.message ?? ''}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </InfoCard>
        <Box mt={3}>
          <InfoCard title="Parameters">
            <CodeSnippet language="json" text={JSON.stringify(order.parameters, null, 2)} />
          </InfoCard>
        </Box>
      </Grid>
    </Grid>
  );
}

function PullRequestCard(props: { order: Order; onChange(): void }) {
  const { order, onChange } = props;
  const pr = order.pull_request;
  if (!pr) {
    return (
      <div id="pull-request">
        <InfoCard title="Pull request">
          <Typography variant="body2" data-testid="pull-request-pending">
            {order.state === 'accepted'
              ? 'The pull request is being opened…'
              : 'This order has no pull request.'}
          </Typography>
        </InfoCard>
      </div>
    );
  }
  return (
    <div id="pull-request" data-testid="pull-request" data-pr-state={pr.state}>
      <InfoCard
        title={
          pr.url ? (
            <Link to={pr.url} data-testid="pull-request-title">
              Pull request #{pr.number}
            </Link>
          ) : (
            <span data-testid="pull-request-title">Pull request #{pr.number}</span>
          )
        }
        subheader={`${pr.title} — ${pr.state}, branch ${pr.branch}`}
      >
        <Box mb={2}>
          <Typography variant="body2" component="div">
            Review: <ReviewState pr={pr} />
          </Typography>
          <Reviewers pr={pr} />
        </Box>
        <ReviewActions order={order} pr={pr} onChange={onChange} />
        {pr.url ? null : (
          <Box mt={2}>
            <Typography variant="caption" color="textSecondary" paragraph>
              Your organisation's repository is hosted by max-cloud itself; its pull requests have no web page,
              so here it is:
            </Typography>
            <Typography variant="h6">{pr.title}</Typography>
            <Box data-testid="pull-request-body">
              <MarkdownContent content={pr.body} />
            </Box>
          </Box>
        )}
      </InfoCard>
    </div>
  );
}

function Reviewers({ pr }: { pr: PullRequest }) {
  if (pr.merge_policy !== 'review') return null;
  const parts: string[] = [];
  if (pr.required_approvals) {
    parts.push(`${pr.required_approvals} approval${pr.required_approvals === 1 ? '' : 's'} required`);
  }
  if (pr.required_reviewers?.length) parts.push(`reviewers: ${pr.required_reviewers.join(', ')}`);
  if (!parts.length) return null;
  return (
    <Typography variant="body2" color="textSecondary" data-testid="required-reviewers">
      {parts.join('; ')}
    </Typography>
  );
}

/** Approve or reject an order that waits for review (the order service decides who may). */
function ReviewActions(props: { order: Order; pr: PullRequest; onChange(): void }) {
  const { order, pr, onChange } = props;
  const { client, identity, tenant } = useMaxcloud();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState('');
  const waiting =
    pr.merge_policy === 'review' && pr.state === 'open' && order.state === 'pr_open' && pr.review_state !== 'approved';
  const role = identity?.tenants.find(t => t.slug === tenant)?.role;
  if (!waiting || role === 'member') return null;

  const act = async (what: () => Promise<Order>) => {
    setBusy(true);
    setError(undefined);
    try {
      await what();
      setRejecting(false);
      onChange();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Box mb={2}>
      <Box display="flex" style={{ gap: 8 }}>
        <Button
          color="primary"
          variant="contained"
          disabled={busy}
          onClick={() => act(() => client.approveOrder(order.id))}
          data-testid="approve-order"
        >
          Approve and merge
        </Button>
        <Button variant="outlined" disabled={busy} onClick={() => setRejecting(r => !r)}>
          Reject…
        </Button>
      </Box>
      {rejecting ? (
        <Box mt={2} display="flex" alignItems="flex-start" style={{ gap: 8 }}>
          <TextField
            id="maxcloud-reject-reason"
            label="Why is this change refused?"
            size="small"
            variant="outlined"
            value={reason}
            onChange={e => setReason(e.target.value)}
            style={{ flexGrow: 1 }}
          />
          <Button
            color="secondary"
            variant="contained"
            disabled={busy || !reason.trim()}
            onClick={() => act(() => client.rejectOrder(order.id, reason.trim()))}
            data-testid="reject-order"
          >
            Reject
          </Button>
        </Box>
      ) : null}
      {error ? (
        <Box mt={1}>
          <Alert severity="error">{error}</Alert>
        </Box>
      ) : null}
    </Box>
  );
}
