import { useRef, useState } from 'react';
import { Link as RouterLink, useNavigate, useParams } from 'react-router-dom';
import {
  CodeSnippet,
  InfoCard,
  Link,
  Progress,
  ResponseErrorPanel,
  StatusAborted,
  StatusError,
  StatusOK,
  StatusPending,
  StructuredMetadataTable,
} from '@backstage/core-components';
import Box from '@material-ui/core/Box';
import Button from '@material-ui/core/Button';
import CircularProgress from '@material-ui/core/CircularProgress';
import Dialog from '@material-ui/core/Dialog';
import DialogActions from '@material-ui/core/DialogActions';
import DialogContent from '@material-ui/core/DialogContent';
import DialogContentText from '@material-ui/core/DialogContentText';
import DialogTitle from '@material-ui/core/DialogTitle';
import Grid from '@material-ui/core/Grid';
import List from '@material-ui/core/List';
import ListItem from '@material-ui/core/ListItem';
import ListItemText from '@material-ui/core/ListItemText';
import Typography from '@material-ui/core/Typography';
import Alert from '@material-ui/lab/Alert';
import {
  MaxcloudApiError,
  Resource,
  ResourceNode,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import {
  errorText,
  formatTime,
  LiveIndicator,
  OrderState,
  PullRequestLink,
  ResourceStatus,
  ReviewState,
} from './common';
import { LogsCard, RevisionsCard } from './AppPanels';
import { useMaxcloudLinks } from './links';
import { useLiveData, useMaxcloud } from './MaxcloudProvider';
import { newIdempotencyKey } from './orderForm';

/**
 * `services/:kind/:name`: one resource, its orders and its resource tree in the cluster; for an App also its
 * revisions with the traffic split and its container logs.
 */
export function ServiceDetailPage() {
  const { kind = '', name = '' } = useParams();
  const links = useMaxcloudLinks();
  const mine = (e: { kind: string; name: string }) =>
    e.kind.toLowerCase() === kind.toLowerCase() && e.name === name;
  const resource = useLiveData(
    async client => (await client.resources()).find(mine) ?? null,
    [kind, name],
    event => event.type !== 'lagged' && mine(event.data),
  );
  const orders = useLiveData(
    async client => (await client.orders()).filter(mine),
    [kind, name],
    event => event.type === 'order' && mine(event.data),
  );

  if (resource.error && resource.value === undefined) return <ResponseErrorPanel error={resource.error} />;
  if (resource.value === undefined) return <Progress />;
  if (resource.value === null) {
    return (
      <Alert severity="info" data-testid="service-missing">
        Your organisation has no {kind} called {name}.{' '}
        <Link to={links.services()}>All your services</Link>
      </Alert>
    );
  }
  const r = resource.value;
  return (
    <Grid container spacing={3} data-testid="service-detail">
      <Grid item xs={12} md={6}>
        <InfoCard
          title={
            <Box display="flex" alignItems="center" style={{ gap: 12 }}>
              <span>
                {r.kind} <em>{r.name}</em>
              </span>
              <ResourceStatus status={r.status} />
              <LiveIndicator />
            </Box>
          }
          subheader={`${r.path} in the Git repository of ${r.tenant}`}
        >
          <StructuredMetadataTable
            metadata={{
              URL: r.url ? <Link to={r.url}>{r.url}</Link> : 'not yet served',
              Created: formatTime(r.created_at),
              Updated: formatTime(r.updated_at),
            }}
          />
          <Box mt={2}>
            <Typography variant="subtitle2">Parameters</Typography>
            <CodeSnippet language="json" text={JSON.stringify(r.spec, null, 2)} />
          </Box>
          <ResourceActions resource={r} />
        </InfoCard>
      </Grid>
      <Grid item xs={12} md={6}>
        <ResourceTreeCard kind={r.kind} name={r.name} />
        <Box mt={3}>
          <InfoCard title="Orders">
            {orders.value?.length ? (
              <List dense data-testid="service-orders">
                {orders.value.map(order => (
                  <ListItem key={order.id} divider>
                    <ListItemText
                      primary={
                        <Box display="flex" alignItems="center" style={{ gap: 12 }}>
                          <Link to={links.order(order.id)}>
                            {order.action} · {formatTime(order.created_at)}
                          </Link>
                          <OrderState state={order.state} />
                        </Box>
                      }
                      secondary={
                        <span>
                          <PullRequestLink order={order} /> · <ReviewState pr={order.pull_request} />
                          {order.error ? ` · ${order.error}` : ''}
                        </span>
                      }
                    />
                  </ListItem>
                ))}
              </List>
            ) : (
              <Typography variant="body2" color="textSecondary">
                {orders.loading ? 'Loading…' : 'No orders of this resource are recorded.'}
              </Typography>
            )}
          </InfoCard>
        </Box>
      </Grid>
      {r.kind === 'App' ? (
        <>
          <Grid item xs={12}>
            <RevisionsCard id={r.id} name={r.name} />
          </Grid>
          <Grid item xs={12}>
            <LogsCard id={r.id} name={r.name} />
          </Grid>
        </>
      ) : null}
    </Grid>
  );
}

/** The resource in the cluster: the XR and what its composition made, with their conditions. */
export function ResourceTreeCard(props: { kind: string; name: string }) {
  const { kind, name } = props;
  const tree = useLiveData(
    client => client.resourceTree(kind, name),
    [kind, name],
    event => event.type === 'service' && event.data.kind === kind && event.data.name === name,
  );
  let body;
  if (tree.value) {
    body = (
      <List dense disablePadding data-testid="resource-tree">
        <TreeNode node={tree.value} depth={0} />
      </List>
    );
  } else if (tree.error) {
    const unavailable = tree.error instanceof MaxcloudApiError && tree.error.status === 503;
    body = unavailable ? (
      <Alert severity="info" data-testid="resource-tree-unavailable">
        No resource tree yet ({tree.error.message}). The {kind} is in your organisation's Git repository; what
        it is made of in the cluster, and how each part is doing, appears here once max-cloud watches that
        cluster.
      </Alert>
    ) : (
      <ResponseErrorPanel error={tree.error} />
    );
  } else {
    body = <Progress />;
  }
  return <InfoCard title="In the cluster">{body}</InfoCard>;
}

function ReadyLight({ node }: { node: ResourceNode }) {
  if (!node.observed) return <StatusAborted>not seen yet</StatusAborted>;
  if (node.ready === true) return <StatusOK>Ready</StatusOK>;
  if (node.ready === false) return <StatusError>Not ready</StatusError>;
  return <StatusPending>no Ready condition</StatusPending>;
}

function TreeNode({ node, depth }: { node: ResourceNode; depth: number }) {
  return (
    <>
      <ListItem
        style={{ paddingLeft: 16 + depth * 24 }}
        data-testid="resource-node"
        data-kind={node.kind}
        data-name={node.name}
      >
        <ListItemText
          primary={
            <Box display="flex" alignItems="center" style={{ gap: 12 }}>
              <span>
                <strong>{node.kind}</strong> {node.name}
              </span>
              <ReadyLight node={node} />
              {node.synced === false ? <StatusError>not synced</StatusError> : null}
            </Box>
          }
          secondary={
            <span>
              {node.api_version}
              {node.namespace ? ` · ${node.namespace}` : ''}
              {node.message ? ` · ${node.message}` : ''}
            </span>
          }
        />
      </ListItem>
      {node.children.map(child => (
        <TreeNode key={`${child.api_version}/${child.kind}/${child.namespace}/${child.name}`} node={child} depth={depth + 1} />
      ))}
    </>
  );
}

/**
 * Change (the order form, prefilled) and delete (after a confirmation) a resource; neither while it is being
 * deleted. The order service's refusals (409: another order of the resource is about to be merged, or it is
 * already being deleted) show as an alert.
 */
function ResourceActions({ resource }: { resource: Resource }) {
  const { client } = useMaxcloud();
  const links = useMaxcloudLinks();
  const navigate = useNavigate();
  const entry = useLiveData(c => c.catalogEntry(resource.kind), [resource.kind], () => false);
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string>();
  // One key per attempt; kept when the answer got lost, so retrying cannot order twice.
  const attempt = useRef<string | undefined>(undefined);

  if (resource.status === 'deleting') {
    return (
      <Box mt={2}>
        <Alert severity="info" data-testid="service-being-deleted">
          A pull request removes this {resource.kind} from your organisation's Git repository; Flux prunes it
          from the cluster once it is merged. It cannot be changed meanwhile.
        </Alert>
      </Box>
    );
  }

  const reviewed = entry.value?.merge_policy?.delete === 'review';
  const remove = async () => {
    setDeleting(true);
    setError(undefined);
    attempt.current ??= newIdempotencyKey();
    try {
      const order = await client.createOrder(
        { kind: resource.kind, name: resource.name, action: 'delete' },
        { idempotencyKey: attempt.current },
      );
      setConfirming(false);
      navigate(links.order(order.id));
    } catch (e) {
      // The order service answered: the next attempt is a new order.
      if (e instanceof MaxcloudApiError) attempt.current = undefined;
      setConfirming(false);
      const conflict = e instanceof MaxcloudApiError && e.status === 409;
      setError(
        conflict
          ? `${resource.kind} ${resource.name} cannot be deleted now: ${errorText(e)}`
          : `The delete order could not be placed: ${errorText(e)}`,
      );
    } finally {
      setDeleting(false);
    }
  };

  return (
    <Box mt={2}>
      <Box display="flex" style={{ gap: 8 }}>
        <Button
          variant="contained"
          color="primary"
          component={RouterLink}
          to={links.serviceEdit(resource.kind, resource.name)}
          data-testid="service-change"
        >
          Change
        </Button>
        <Button
          variant="outlined"
          disabled={deleting}
          onClick={() => {
            setError(undefined);
            setConfirming(true);
          }}
          data-testid="service-delete"
        >
          Delete…
        </Button>
      </Box>
      {error ? (
        <Box mt={2}>
          <Alert severity="error" data-testid="service-action-error">
            {error}
          </Alert>
        </Box>
      ) : null}
      <Dialog
        open={confirming}
        onClose={() => !deleting && setConfirming(false)}
        aria-labelledby="maxcloud-delete-title"
        data-testid="delete-dialog"
      >
        <DialogTitle id="maxcloud-delete-title">
          Delete {resource.kind} {resource.name}?
        </DialogTitle>
        <DialogContent>
          <DialogContentText data-testid="delete-explanation">
            A pull request removes the file of {resource.kind} <strong>{resource.name}</strong> (
            <code>{resource.path}</code>) from your organisation's Git repository; once it is merged, Flux prunes
            the {resource.kind} and everything it is made of from the cluster.{' '}
            {entry.value && reviewed
              ? `Deleting a ${resource.kind} needs review: nothing is deleted until a reviewer approves the pull request.`
              : null}
            {entry.value && !reviewed
              ? `Deleting a ${resource.kind} needs no review: the pull request is merged at once.`
              : null}
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)} disabled={deleting}>
            Cancel
          </Button>
          {deleting ? <CircularProgress size={24} /> : null}
          <Button
            color="secondary"
            variant="contained"
            onClick={remove}
            disabled={deleting}
            data-testid="delete-confirm"
          >
            Delete {resource.name}
          </Button>
        </DialogActions>
      </Dialog>
    </Box>
  );
}
