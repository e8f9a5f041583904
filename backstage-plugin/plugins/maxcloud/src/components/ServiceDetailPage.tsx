import { useParams } from 'react-router-dom';
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
import Grid from '@material-ui/core/Grid';
import List from '@material-ui/core/List';
import ListItem from '@material-ui/core/ListItem';
import ListItemText from '@material-ui/core/ListItemText';
import Typography from '@material-ui/core/Typography';
import Alert from '@material-ui/lab/Alert';
import {
  MaxcloudApiError,
  ResourceNode,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { formatTime, LiveIndicator, OrderState, PullRequestLink, ResourceStatus, ReviewState } from './common';
import { useMaxcloudLinks } from './links';
import { useLiveData } from './MaxcloudProvider';

/** `services/:kind/:name`: one resource, its orders and its resource tree in the cluster. */
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
