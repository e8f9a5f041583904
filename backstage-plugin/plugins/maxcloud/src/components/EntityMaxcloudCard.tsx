import { InfoCard, Link, Progress, ResponseErrorPanel, StructuredMetadataTable } from '@backstage/core-components';
import { MissingAnnotationEmptyState, useEntity } from '@backstage/plugin-catalog-react';
import Typography from '@material-ui/core/Typography';
import {
  MAXCLOUD_ANNOTATIONS,
  parseResourceRef,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { LiveIndicator, OrderState, PullRequestLink, ResourceStatus, ReviewState } from './common';
import { MaxcloudLinksProvider, useMaxcloudLinks } from './links';
import { MaxcloudProvider, useLiveData } from './MaxcloudProvider';

/**
 * The max-cloud resource of the current catalog entity: status, URL, last order, its pull request and review
 * state, live. `rootPath` is where the max-cloud page is mounted (for links to the resource's page).
 */
export function MaxcloudEntityCard(props: { rootPath?: string }) {
  const { entity } = useEntity();
  const annotations = entity.metadata.annotations ?? {};
  const ref = parseResourceRef(annotations[MAXCLOUD_ANNOTATIONS.resource]);
  if (!ref) return <MissingAnnotationEmptyState annotation={MAXCLOUD_ANNOTATIONS.resource} />;
  const tenant = annotations[MAXCLOUD_ANNOTATIONS.tenant] || undefined;
  return (
    <MaxcloudProvider tenant={tenant}>
      <MaxcloudLinksProvider base={props.rootPath ?? '/maxcloud'} tenant={tenant}>
        <CardBody kind={ref.kind} name={ref.name} tenant={tenant} />
      </MaxcloudLinksProvider>
    </MaxcloudProvider>
  );
}

function CardBody(props: { kind: string; name: string; tenant?: string }) {
  const { kind, name, tenant } = props;
  const links = useMaxcloudLinks();
  const mine = (e: { kind: string; name: string }) => e.kind === kind && e.name === name;
  const data = useLiveData(
    async client => {
      const resource = (await client.resources()).find(mine);
      const order = resource ? await client.order(resource.order_id) : undefined;
      return { resource, order };
    },
    [kind, name],
    event => event.type !== 'lagged' && mine(event.data),
  );
  let body;
  if (data.error && !data.value) {
    body = <ResponseErrorPanel error={data.error} />;
  } else if (!data.value) {
    body = <Progress />;
  } else if (!data.value.resource) {
    body = (
      <Typography variant="body2" data-testid="maxcloud-card-missing">
        max-cloud has no {kind} called {name}
        {tenant ? ` in ${tenant}` : ''}: it may have been deleted.
      </Typography>
    );
  } else {
    const { resource, order } = data.value;
    body = (
      <StructuredMetadataTable
        metadata={{
          Resource: `${resource.kind} ${resource.name}${tenant ? ` (${tenant})` : ''}`,
          Status: <ResourceStatus status={resource.status} />,
          URL: resource.url ? <Link to={resource.url}>{resource.url}</Link> : 'not yet served',
          'Last order': order ? (
            <Link to={links.order(order.id)}>
              <OrderState state={order.state} /> ({order.action})
            </Link>
          ) : (
            '—'
          ),
          'Pull request': order ? <PullRequestLink order={order} /> : '—',
          Review: <ReviewState pr={order?.pull_request} />,
        }}
      />
    );
  }
  return (
    <div data-testid="maxcloud-entity-card">
      <InfoCard
        title={
          <span>
            max-cloud <LiveIndicator />
          </span>
        }
        deepLink={{ title: 'Open in max-cloud', link: links.service(kind, name) }}
      >
        {body}
      </InfoCard>
    </div>
  );
}
